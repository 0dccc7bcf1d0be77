"""The MLflow server on both stacks: its image built into its own ECR repository (or
pinned by digest), as the plan captures it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.offline import CapturedResource
from infra.offline.report import PlanResult
from tests.components.support import alias_types
from tests.components.workloads.stacks import plan_file, plan_stack
from tests.offline_support import ROOT, plan_subprocess

PINNED = "123456789012.dkr.ecr.us-west-2.amazonaws.com/mlplatform-mlflow-server@sha256:" + (
    "c" * 64
)


@pytest.fixture(scope="module")
def dev() -> PlanResult:
    return plan_stack("dev")


@pytest.fixture(scope="module")
def prod() -> PlanResult:
    return plan_stack("prod")


def mlflow_copy(tmp: Path, name: str, image: str) -> Path:
    """Write ``Pulumi.<name>.yaml`` in ``tmp``: prod with ``mlflow.image`` set to ``image``."""
    yaml = YAML()
    document = yaml.load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["mlplatform:mlflow"]["image"] = image
    out = io.StringIO()
    yaml.dump(document, out)
    path = tmp / f"Pulumi.{name}.yaml"
    path.write_text(out.getvalue())
    return path


def of(plan: PlanResult, token: str) -> list[CapturedResource]:
    return plan.run.by_type(token)


def server_image(plan: PlanResult) -> str:
    (server,) = [
        d.inputs
        for d in of(plan, "kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["namespace"] == "mlflow"
    ]
    (container,) = server["spec"]["template"]["spec"]["containers"]
    return container["image"]


def mlflow_builds(plan: PlanResult) -> list[CapturedResource]:
    return [
        b
        for b in of(plan, "docker-build:index:Image")
        if b.inputs["dockerfile"]["location"].endswith("mlflow_server/Dockerfile")
    ]


def repository(plan: PlanResult, name: str) -> dict[str, Any]:
    (repo,) = [r for r in of(plan, "aws:ecr/repository:Repository") if r.inputs["name"] == name]
    return {**repo.inputs, **repo.outputs}


def test_both_stacks_build_the_server_image_into_its_own_repository(dev, prod) -> None:
    for plan in (dev, prod):
        repo = repository(plan, "mlplatform-mlflow-server")
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["encryptionConfigurations"][0]["encryptionType"] == "KMS"
        (build,) = mlflow_builds(plan)
        (tag,) = build.inputs["tags"]
        assert tag.startswith(repo["repositoryUrl"] + ":src-")
        assert build.inputs["push"] is True and "registries" in build.secret_inputs
        # The Deployment runs what the push returned, by digest.
        assert server_image(plan) == f"{repo['repositoryUrl']}@{build.outputs['digest']}"
    # The serving image keeps its own repository.
    assert repository(dev, "mlplatform-serving")["imageTagMutability"] == "IMMUTABLE"


def test_the_serving_image_keeps_its_former_type_as_an_alias(dev) -> None:
    (serving,) = [
        r
        for r in of(dev, "mlplatform:index:ContainerImage")
        if r.name == "mlplatform-dev-serving"
    ]
    assert alias_types(serving) == {"mlplatform:index:ServingImage"}
    assert {r.name for r in of(dev, "mlplatform:index:ContainerImage")} == {
        "mlplatform-dev-serving",
        "mlplatform-dev-mlflow-image",
    }


def test_a_pinned_server_image_is_run_as_given(tmp_path: Path) -> None:
    plan = plan_file(mlflow_copy(tmp_path, "pinned", PINNED))
    assert mlflow_builds(plan) == []
    assert server_image(plan) == PINNED
    assert not [v for v in plan.violations if v.level == "mandatory"]


def test_a_tagged_server_image_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = mlflow_copy(tmp_path, "tagged", "ghcr.io/mlplatform/mlflow-server:latest")
    result = plan_subprocess("--config-file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert (
        "mlplatform:mlflow.image: 'ghcr.io/mlplatform/mlflow-server:latest' must be "
        "repository@sha256:<64 hex> or 'build'" in lines[0]
    )
