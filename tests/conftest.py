"""Shared fixtures: the mock engine that runs Pulumi programs offline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from infra.offline import ProgramRun, run_program

RunProgram = Callable[..., ProgramRun]


@pytest.fixture
def run_mocked() -> RunProgram:
    """Return ``run(program, config=..., stack=..., secret_keys=..., preview=...)``.

    Runs ``program`` on a fresh mock engine (project ``mlplatform``, stack ``dev`` and
    region ``us-west-2`` unless given) and returns the captured ``ProgramRun``.
    """

    def run(
        program: Callable[[], object],
        *,
        config: Mapping[str, str] | None = None,
        stack: str = "dev",
        secret_keys: Sequence[str] = (),
        preview: bool = False,
    ) -> ProgramRun:
        merged = {"aws:region": "us-west-2", **(config or {})}
        return run_program(
            program,
            project="mlplatform",
            stack=stack,
            config=merged,
            secret_keys=secret_keys,
            preview=preview,
        )

    return run
