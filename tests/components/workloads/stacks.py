"""Stack files for the inference tests: the real ones, and copies of prod with one
service's settings changed (ruamel.yaml, so the copy is the prod file but for the edit)."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from components.services.ml_tenancy import SERVING_NAMESPACE
from infra.offline.report import PlanResult, run_plan
from tests.offline_support import ROOT

INFERENCE = "mlplatform:inference"


def prod_copy(tmp: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Write ``Pulumi.<name>.yaml`` in ``tmp``: prod with ``edit`` applied to its
    ``mlplatform:inference`` object."""
    yaml = YAML()
    document = yaml.load((ROOT / "Pulumi.prod.yaml").read_text())
    edit(document["config"][INFERENCE])
    out = io.StringIO()
    yaml.dump(document, out)
    path = tmp / f"Pulumi.{name}.yaml"
    path.write_text(out.getvalue())
    return path


def plan_file(path: Path) -> PlanResult:
    return run_plan(config_file=path, root=ROOT)


@cache
def plan_stack(stack: str) -> PlanResult:
    """The real stack planned offline (once per session)."""
    return run_plan(stack, root=ROOT)


def rollout(**fields: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting the prod service's ``rollout`` fields."""

    def edit(inference: dict[str, Any]) -> None:
        inference["services"]["anomaly"]["rollout"].update(fields)

    return edit


def deployments(plan: PlanResult) -> dict[str, dict[str, Any]]:
    """The inference Deployments' inputs (those in ``ml-serving``), by name."""
    return {
        d.inputs["metadata"]["name"]: d.inputs
        for d in plan.run.by_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["namespace"] == SERVING_NAMESPACE
    }
