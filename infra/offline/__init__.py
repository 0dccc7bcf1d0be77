"""Offline tooling: the recording mock engine, its fakes and the stack-file reader.

``run_program`` runs a Pulumi program on Pulumi's mock engine with the answers of
``infra.offline.fakes`` and returns a ``ProgramRun``. The offline plan is built from
``infra.offline.stack_file`` (``load_stack_config``, ``PlanInputError``),
``infra.offline.report`` (``run_plan``, ``PlanResult``) and ``infra.offline.graph``
(``render_dot``); ``infra.plan`` is its command line.
"""

from __future__ import annotations

from infra.offline.engine import CapturedResource, ProgramRun, ensure_event_loop, run_program
from infra.offline.fakes import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    PlatformMocks,
    hex_digest,
    pem_certificate,
    render_policy_document,
)

__all__ = [
    "ACCOUNT_ID",
    "DEFAULT_REGION",
    "CapturedResource",
    "PlatformMocks",
    "ProgramRun",
    "ensure_event_loop",
    "hex_digest",
    "pem_certificate",
    "render_policy_document",
    "run_program",
]
