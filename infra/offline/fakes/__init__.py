"""The offline engine's answers: fakes per provider, as ``{type token: function}`` registries.

``aws``, ``kubernetes``, ``random`` and ``providers`` hold resource fakes, ``calls`` the
data sources; ``registry`` is the decorator-based table they share. ``PlatformMocks``
looks a token up in them. To answer a new type, add a function to its provider's module
with ``@RESOURCES.register("<type token>")``; nothing else changes.
"""

from __future__ import annotations

from infra.offline.fakes.aws import pem_certificate
from infra.offline.fakes.calls import render_policy_document
from infra.offline.fakes.platform import PlatformMocks
from infra.offline.fakes.registry import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    FakeCall,
    FakeResource,
    Registry,
    hex_digest,
)

__all__ = [
    "ACCOUNT_ID",
    "DEFAULT_REGION",
    "FakeCall",
    "FakeResource",
    "PlatformMocks",
    "Registry",
    "hex_digest",
    "pem_certificate",
    "render_policy_document",
]
