"""Pulumi's own types: provider resources, and the answer for every other token.

A provider resource (``pulumi:providers:aws``, ``pulumi:providers:kubernetes``) needs an
id: resources that use it reference it as ``<provider urn>::<id>``. The same answer
covers components (the engine records no id for them) and packages without fakes.
"""

from __future__ import annotations

from typing import Any

from infra.offline.fakes.registry import FakeResource, Registry, ResourceFake

RESOURCES: Registry[ResourceFake] = Registry("infra/offline/fakes/providers.py")


@RESOURCES.fallback("pulumi:providers:")
@RESOURCES.fallback("")
def any_resource(r: FakeResource) -> dict[str, Any]:
    """A provider instance or any other token: an id derived from type and name."""
    return {"id": f"{r.name}-{r.digest[:8]}"}
