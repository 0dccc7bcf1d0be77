"""The MLflow server on both stacks, as the plan captures it: its image built into its
own ECR repository (or pinned by digest), and the read-only user the inference pods
authenticate as (made by a Job, handed over through Secrets only)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from components.services.ml_tenancy import SERVING_NAMESPACE
from infra.offline import CapturedResource
from infra.offline.report import PlanResult
from tests.components.support import alias_types, assert_valid
from tests.components.workloads.stacks import deployments, plan_file, plan_stack
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
        r for r in of(dev, "mlplatform:index:ContainerImage") if r.name == "mlplatform-dev-serving"
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


def reader_password(plan: PlanResult) -> str:
    (generated,) = [
        r
        for r in of(plan, "random:index/randomPassword:RandomPassword")
        if r.name == f"mlplatform-{plan.stack}-mlflow-reader"
    ]
    return generated.outputs["result"]


def test_each_service_reads_the_registry_as_the_reader_through_a_secret(dev, prod) -> None:
    for plan in (dev, prod):
        password = reader_password(plan)
        (job,) = of(plan, "kubernetes:batch/v1:Job")
        assert_valid({"apiVersion": "batch/v1", "kind": "Job", **job.inputs})
        (box,) = job.inputs["spec"]["template"]["spec"]["containers"]
        assert box["image"] == server_image(plan)  # the server's own image, by digest
        (secret,) = [
            s
            for s in of(plan, "kubernetes:core/v1:Secret")
            if s.inputs["metadata"].get("namespace") == SERVING_NAMESPACE
            and s.inputs["metadata"]["name"] == "anomaly-mlflow"
        ]
        assert_valid({"apiVersion": "v1", "kind": "Secret", **secret.inputs})
        assert "stringData" in secret.secret_inputs
        assert secret.inputs["stringData"] == {"username": "serving", "password": password}
        services = deployments(plan)
        assert services
        for deployment in services.values():
            (serving,) = deployment["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e for e in serving["env"]}
            for name, key in (
                ("MLFLOW_TRACKING_USERNAME", "username"),
                ("MLFLOW_TRACKING_PASSWORD", "password"),
            ):
                assert env[name] == {
                    "name": name,
                    "valueFrom": {"secretKeyRef": {"name": "anomaly-mlflow", "key": key}},
                }
        # Every inference Deployment starts after the Job made its user.
        for resource in of(plan, "kubernetes:apps/v1:Deployment"):
            if resource.inputs["metadata"]["namespace"] == SERVING_NAMESPACE:
                assert job.urn in resource.dependencies, resource.name


def test_no_plaintext_reader_password_anywhere(dev, prod) -> None:
    for plan in (dev, prod):
        password = reader_password(plan)
        assert password not in json.dumps(plan.to_json())
        holders = set()
        for resource in plan.run.resources:
            if resource.type.startswith("random:"):
                continue
            for key, value in resource.inputs.items():
                if password in json.dumps(value):
                    assert key in resource.secret_inputs, (resource.name, key)
                    holders.add((resource.inputs["metadata"]["namespace"], resource.name))
        # The Job's Secret in mlflow and the service's in ml-serving, nothing else.
        assert holders == {
            ("mlflow", f"mlplatform-{plan.stack}-mlflow-reader"),
            (SERVING_NAMESPACE, "anomaly-mlflow"),
        }
