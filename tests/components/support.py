"""Helpers shared by the component tests: run a program offline, read what it recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate

from components._aws import EKS_RELEASES
from infra.offline import CapturedResource, ProgramRun, run_program


def plan(program: Callable[[], object], *, region: str = "us-west-2") -> ProgramRun:
    """Run ``program`` on a fresh mock engine (project ``mlplatform``, stack ``t``)."""
    return run_program(program, project="mlplatform", stack="t", config={"aws:region": region})


def alias_types(resource: CapturedResource) -> set[str]:
    """The former type tokens a resource lists as aliases."""
    return {a["spec"]["type"] for a in resource.aliases if a.get("spec", {}).get("type")}


def one(run: ProgramRun, type_token: str) -> CapturedResource:
    """The single resource of ``type_token``; fails when there are none or several."""
    found = run.by_type(type_token)
    assert len(found) == 1, f"{len(found)} resources of {type_token}"
    return found[0]


KUBERNETES = max(EKS_RELEASES, key=lambda v: int(v.split(".")[1]))
"""The newest Kubernetes version the platform runs: core objects are validated against it."""


def assert_valid(manifest: dict[str, Any]) -> None:
    """Validate a core Kubernetes object against the OpenAPI schema, strictly (an unknown
    or misspelt field fails)."""
    kubernetes_validate.validate(manifest, f"{KUBERNETES}.0", strict=True)
