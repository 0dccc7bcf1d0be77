"""Helpers shared by the component tests: run a program offline, read what it recorded."""

from __future__ import annotations

from collections.abc import Callable

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
