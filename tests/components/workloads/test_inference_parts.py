"""The parts of an inference deployment on their own: KEDA's release, the image and its
repository, and the component's own value rules."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from components._validate import ValidationError
from components.services.event_autoscaling import KEDA_CHART, EventAutoscaling, EventAutoscalingArgs
from components.workloads.container_image import (
    SERVING,
    ContainerImage,
    ContainerImageArgs,
    source_tag,
)
from components.workloads.inference import InferenceService
from components.workloads.inference_args import (
    InferenceServiceArgs,
    JwtAuth,
    Release,
    Resources,
    Rollout,
    route_timeout_ms,
    termination_grace_s,
    validate_inference_service_args,
)
from components.workloads.inference_pods import predict_processes
from tests.components.layout import values_problems
from tests.components.support import one, plan
from tests.components.workloads import inference_layout as documented

DIGEST = "123456789012.dkr.ecr.us-west-2.amazonaws.com/mlplatform-serving@sha256:" + "b" * 64
ARGS = InferenceServiceArgs(
    namespace="ml-serving",
    image=DIGEST,
    models={"anomaly-detector": "models:/anomaly-detector/2"},
    auth=JwtAuth("https://auth.example.com/", "https://auth.example.com/jwks", ["mlplatform"]),
    mlflow_tracking_uri="http://mlflow.mlflow.svc.cluster.local:5000",
    otlp_endpoint="http://otel:4318",
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example",
    oidc_issuer="https://oidc.example",
    pool="spot",
)


def test_keda_is_pinned_with_documented_values_on_the_system_pool() -> None:
    run = plan(lambda: EventAutoscaling("keda", EventAutoscalingArgs(system_pool="core")))
    release = one(run, "kubernetes:helm.sh/v3:Release")
    assert (KEDA_CHART.repository, KEDA_CHART.chart, KEDA_CHART.version) == documented.KEDA_CHART
    assert release.inputs["repositoryOpts"] == {"repo": KEDA_CHART.repository}
    values = release.inputs["values"]
    assert values_problems(values, documented.KEDA_VALUES, chart="keda 2.20.2") == []
    assert values["nodeSelector"] == {"mlplatform.io/pool": "core"}
    assert values["podDisruptionBudget"]["operator"] == {"minAvailable": 1}
    assert values_problems({"operator": {"replicas": 2}}, documented.KEDA_VALUES) == [
        "operator.replicas: not a key the chart documents"
    ]


def test_the_source_tag_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "app.py").write_text("a = 1\n")
    first = source_tag(str(tmp_path))
    assert first == source_tag(str(tmp_path)) and first.startswith("src-")
    (tmp_path / "serving" / "app.py").write_text("a = 2\n")
    assert source_tag(str(tmp_path)) != first


def test_a_built_image_is_pushed_with_a_secret_token_and_run_by_digest() -> None:
    run = plan(lambda: ContainerImage("img", ContainerImageArgs(SERVING)))
    build = one(run, "docker-build:index:Image")
    (tag,) = build.inputs["tags"]
    assert ":src-" in tag and tag.startswith("123456789012.dkr.ecr.us-west-2.amazonaws.com/")
    assert "registries" in build.secret_inputs
    with pytest.raises(
        ValidationError, match=re.escape("image: 'repo:latest' must be repository@sha256")
    ):
        ContainerImage("bad", ContainerImageArgs(SERVING, image="repo:latest"))


def test_the_timeouts_are_derived_from_the_services_own() -> None:
    assert termination_grace_s(prestop_s=10, drain_s=25) == 40
    assert termination_grace_s(prestop_s=5, drain_s=60) == 70
    assert route_timeout_ms(10_000) == 11_000


@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary", "shadow"])
@pytest.mark.parametrize("weight", [0, 1, 10, 50, 99, 100])
@pytest.mark.parametrize("active", ["blue", "green"])
def test_weights_always_sum_to_100(strategy: str, weight: int, active: str) -> None:
    rollout = Rollout(strategy=strategy, active=active, canary_weight=weight)  # type: ignore[arg-type]
    weights = rollout.weights()
    assert sum(weights.values()) == 100
    assert set(weights) == set(rollout.colours())
    if strategy == "canary":
        assert weights[rollout.idle] == weight


def test_the_component_refuses_bad_values_naming_every_field() -> None:
    bad = replace(
        ARGS,
        placement="gpu",
        rollout=Rollout(
            strategy="canary", canary_weight=140, green=Release(models={"m": "models:/m@x"})
        ),
    )
    problems = {p.field for p in validate_inference_service_args("anomaly", bad)}
    assert problems == {"resources.gpu", "rollout.canary_weight", "rollout.green.models.m"}
    with pytest.raises(
        ValidationError, match=re.escape("rollout.canary_weight: 140 is outside 0..100")
    ):
        plan(lambda: InferenceService("anomaly", bad))
    assert validate_inference_service_args("Bad_Name", ARGS)[0].field == "name"
    assert validate_inference_service_args("anomaly", ARGS) == []


def test_without_a_bucket_the_role_has_no_s3_access_and_with_one_it_reads_only() -> None:
    run = plan(lambda: InferenceService("anomaly", ARGS))
    assert run.by_type("aws:iam/rolePolicy:RolePolicy") == []
    bucket = "arn:aws:s3:::mlflow-artifacts"
    key = "arn:aws:kms:us-west-2:123456789012:key/abc"
    with_bucket = plan(
        lambda: InferenceService(
            "anomaly", replace(ARGS, artifact_bucket_arn=bucket, artifact_kms_key_arn=key)
        )
    )
    (policy,) = with_bucket.by_type("aws:iam/rolePolicy:RolePolicy")
    document = policy.inputs["policy"]
    for action in ('"s3:ListBucket"', '"s3:GetObject"', '"kms:Decrypt"'):
        assert action in document
    assert "s3:PutObject" not in document and '"*"' not in document


@pytest.mark.parametrize(
    ("placement", "limit", "expected"),
    [("spot", "4", 4), ("system", "1500m", 2), ("spot", "2.5", 3), ("spot", None, 0)],
)
def test_predict_processes_follow_the_cpu_limit(
    placement: str, limit: str | None, expected: int
) -> None:
    args = replace(
        ARGS,
        placement=placement,  # type: ignore[arg-type]
        resources=Resources(cpu="500m", cpu_limit=limit),
    )
    assert predict_processes(args) == expected
    assert predict_processes(replace(args, placement="gpu", resources=Resources(gpu=1))) == 1
