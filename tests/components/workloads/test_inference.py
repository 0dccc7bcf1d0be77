"""The inference service as the real stacks plan it: placement, pods, termination,
routes per strategy, the edge, autoscaling, and the layouts of what it creates."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components._k8s import GPU_TAINT, POOL_LABEL
from components.workloads.inference_args import GRACE_MARGIN_S, PRESTOP_S
from infra.offline import CapturedResource
from infra.offline.report import PlanResult
from tests.components.layout import problems
from tests.components.services import observability_layout as observability
from tests.components.support import assert_valid
from tests.components.workloads import inference_layout as layout
from tests.components.workloads.stacks import (
    deployments,
    plan_file,
    plan_stack,
    prod_copy,
    rollout,
)

CORE = {
    "kubernetes:apps/v1:Deployment": ("apps/v1", "Deployment"),
    "kubernetes:core/v1:Service": ("v1", "Service"),
    "kubernetes:core/v1:ServiceAccount": ("v1", "ServiceAccount"),
    "kubernetes:policy/v1:PodDisruptionBudget": ("policy/v1", "PodDisruptionBudget"),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": ("networking.k8s.io/v1", "NetworkPolicy"),
    "kubernetes:core/v1:Namespace": ("v1", "Namespace"),
}


def of(plan: PlanResult, token: str) -> list[CapturedResource]:
    return plan.run.by_type(token)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def custom(plan: PlanResult, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    found = [
        r.inputs
        for r in plan.run.resources
        if r.type.endswith(f":{kind}") and r.inputs.get("kind") == kind
    ]
    return [f for f in found if name is None or f["metadata"]["name"] == name]


def routes(plan: PlanResult) -> dict[str, Any]:
    (vs,) = custom(plan, "VirtualService")
    return vs["spec"]


@pytest.fixture(scope="module")
def dev() -> PlanResult:
    return plan_stack("dev")


@pytest.fixture(scope="module")
def prod() -> PlanResult:
    return plan_stack("prod")


def test_both_stacks_plan_without_mandatory_findings(dev, prod) -> None:
    for plan in (dev, prod):
        assert [v for v in plan.violations if v.level == "mandatory"] == []


def test_dev_runs_the_demo_detector_on_the_spot_pool(dev) -> None:
    (deployment,) = deployments(dev).values()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {POOL_LABEL: "spot"}
    assert "tolerations" not in pod
    command = container(deployment)["command"]
    assert command[:3] == ["python", "-m", "serving"]
    assert flag(command, "--model") == "anomaly-detector=models:/anomaly-detector@champion"
    assert "nvidia.com/gpu" not in container(deployment)["resources"]["limits"]
    # No CPU limit: the pod's cores are unknown, so predict stays in the service's process.
    assert "--predict-processes" not in command


def test_prod_runs_a_gpu_placed_service_by_version(prod) -> None:
    for deployment in deployments(prod).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {POOL_LABEL: "gpu"}
        assert GPU_TAINT.toleration() in pod["tolerations"]
        assert container(deployment)["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert flag(container(deployment)["command"], "--model") == (
            "anomaly-detector=models:/anomaly-detector/2"
        )
        # One predict process on a GPU, whatever the CPU limit (4).
        assert flag(container(deployment)["command"], "--predict-processes") == "1"


def test_the_image_is_pinned_by_digest_or_built_into_an_immutable_scanned_repository(
    dev, prod
) -> None:
    digest = re.compile(r"@sha256:[0-9a-f]{64}$")
    for plan in (dev, prod):
        for deployment in deployments(plan).values():
            assert digest.search(container(deployment)["image"])
        (repo,) = [
            r
            for r in of(plan, "aws:ecr/repository:Repository")
            if r.inputs["name"] == "mlplatform-serving"
        ]
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
        (lifecycle,) = [
            p
            for p in of(plan, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
            if p.inputs["repository"] == "mlplatform-serving"
        ]
        assert '"tagStatus": "untagged"' in lifecycle.inputs["policy"]
    (build,) = serving_builds(dev)
    assert build.inputs["push"] is True
    assert build.inputs["registries"][0]["password"] not in str(dev.to_json())
    (image,) = {container(d)["image"] for d in deployments(dev).values()}
    assert image.split("@")[1] == build.outputs["digest"]
    assert serving_builds(prod) == []


def serving_builds(plan: PlanResult) -> list[CapturedResource]:
    """The builds of ``serving/Dockerfile`` (the MLflow server's image is built too)."""
    return [
        b
        for b in of(plan, "docker-build:index:Image")
        if b.inputs["dockerfile"]["location"].endswith("serving/Dockerfile")
    ]


def test_pods_are_restricted_probed_and_spread(prod) -> None:
    for deployment in deployments(prod).values():
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        box = container(deployment)
        assert box["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in box["volumeMounts"]
        assert box["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert box["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        startup = box["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
        (spread,) = pod["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in box["env"]}
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(".observability.svc:4318")


def test_the_grace_period_covers_prestop_and_the_services_drain(dev, prod) -> None:
    for plan in (dev, prod):
        for deployment in deployments(plan).values():
            box = container(deployment)
            prestop = box["lifecycle"]["preStop"]["sleep"]["seconds"]
            drain = float(flag(box["command"], "--drain-timeout-s"))
            grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            assert prestop == PRESTOP_S and prestop >= 5  # endpoints propagate in ~1-5 s
            assert grace == prestop + drain + GRACE_MARGIN_S > prestop + drain


def test_core_objects_are_valid_for_the_cluster_version(dev, prod) -> None:
    for plan in (dev, prod):
        for token, (api, kind) in CORE.items():
            for resource in of(plan, token):
                assert_valid({"apiVersion": api, "kind": kind, **resource.inputs})


def test_custom_resources_match_their_crd_layouts(dev, prod, tmp_path) -> None:
    plans = [
        dev,
        prod,
        plan_file(prod_copy(tmp_path, "shadow", rollout(strategy="shadow", mirrorPercent=5))),
    ]
    seen: set[tuple[str, str]] = set()
    for plan in plans:
        for resource in plan.run.resources:
            key = (resource.inputs.get("apiVersion"), resource.inputs.get("kind"))
            if key in layout.SPECS:
                seen.add(key)  # type: ignore[arg-type]
                assert problems(resource.inputs["spec"], layout.SPECS[key]) == [], key
            elif key == ("monitoring.coreos.com/v1", "ServiceMonitor"):
                assert problems(resource.inputs["spec"], observability.SERVICE_MONITOR_SPEC) == []
            elif key == ("monitoring.coreos.com/v1", "PrometheusRule"):
                assert problems(resource.inputs["spec"], observability.PROMETHEUS_RULE_SPEC) == []
    assert seen == set(layout.SPECS)
    for scaler in custom(prod, "ScaledObject"):
        by_type = {t["type"]: t for t in scaler["spec"]["triggers"]}
        assert set(by_type["prometheus"]["metadata"]) <= layout.PROMETHEUS_TRIGGER_KEYS
        assert set(by_type["cpu"]["metadata"]) <= layout.CPU_TRIGGER_KEYS


def test_a_misspelt_field_fails_the_layout(prod) -> None:
    spec = routes(prod)
    bad = {**spec, "http": [{**spec["http"][0], "mirrorPercentge": {"value": 5.0}}]}
    assert problems(bad, layout.VIRTUAL_SERVICE_SPEC) == ["http[0].mirrorPercentge: unknown field"]


def test_blue_green_sends_everything_to_active_and_flipping_moves_it(prod, tmp_path) -> None:
    weights = {r["destination"]["subset"]: r["weight"] for r in routes(prod)["http"][0]["route"]}
    assert weights == {"blue": 100, "green": 0}
    assert set(deployments(prod)) == {"anomaly-blue", "anomaly-green"}
    flipped = plan_file(prod_copy(tmp_path, "flipped", rollout(active="green")))
    for route in routes(flipped)["http"][:2]:
        assert {r["destination"]["subset"]: r["weight"] for r in route["route"]} == {
            "green": 100,
            "blue": 0,
        }
    (rule,) = custom(prod, "DestinationRule")
    assert [s["name"] for s in rule["spec"]["subsets"]] == ["blue", "green"]


def test_a_canary_copy_of_prod_splits_ninety_ten(tmp_path) -> None:
    plan = plan_file(prod_copy(tmp_path, "canary", rollout(strategy="canary", canaryWeight=10)))
    for route in routes(plan)["http"]:
        weights = {r["destination"]["subset"]: r["weight"] for r in route["route"]}
        assert weights == {"blue": 90, "green": 10}
        assert sum(weights.values()) == 100


def test_shadow_mirrors_a_share_to_the_other_release(tmp_path) -> None:
    plan = plan_file(prod_copy(tmp_path, "shadow", rollout(strategy="shadow", mirrorPercent=5)))
    inference = routes(plan)["http"][0]
    assert {r["destination"]["subset"]: r["weight"] for r in inference["route"]} == {
        "blue": 100,
        "green": 0,
    }
    assert inference["mirror"]["subset"] == "green"
    assert inference["mirrorPercentage"] == {"value": 5.0}


def test_rolling_runs_one_release_with_all_traffic(dev) -> None:
    assert set(deployments(dev)) == {"anomaly"}
    for route in routes(dev)["http"]:
        assert [(r["destination"]["subset"], r["weight"]) for r in route["route"]] == [
            ("blue", 100)
        ]


def test_retries_only_before_processing_and_the_route_outlasts_the_service(prod) -> None:
    (deployment, *_) = deployments(prod).values()
    request_ms = int(flag(container(deployment)["command"], "--request-timeout-ms"))
    for route in routes(prod)["http"][:2]:
        retry_on = route["retries"]["retryOn"].split(",")
        assert set(retry_on) == {"connect-failure", "refused-stream", "503"}
        assert "429" not in retry_on and "504" not in retry_on and "5xx" not in retry_on
        timeout_s = float(route["timeout"].rstrip("s"))
        assert request_ms / 1000 < timeout_s <= request_ms / 1000 + 2


def test_paths_route_each_model_invocations_and_health(prod) -> None:
    http = routes(prod)["http"]
    uris = [m["uri"] for route in http for m in route["match"]]
    assert {"exact": "/v2/models/anomaly-detector"} in uris
    assert {"prefix": "/v2/models/anomaly-detector/"} in uris
    assert http[1]["rewrite"] == {"uri": "/invocations"}
    assert http[2]["rewrite"] == {"uri": "/v2/health/"}
    assert routes(prod)["gateways"] == ["istio-ingress/ingress"]


def test_the_gateway_requires_a_token_with_an_allowed_audience_except_on_health(prod) -> None:
    (jwt,) = custom(prod, "RequestAuthentication")
    assert jwt["metadata"]["namespace"] == "istio-ingress"
    assert jwt["spec"]["jwtRules"][0]["issuer"] == "https://auth.example.com/"
    assert jwt["spec"]["jwtRules"][0]["audiences"] == ["mlplatform"]
    (deny,) = custom(prod, "AuthorizationPolicy", "anomaly-require-jwt")
    assert deny["spec"]["action"] == "DENY"
    paths = {p for rule in deny["spec"]["rules"] for p in rule["to"][0]["operation"]["paths"]}
    assert "/v2/models/anomaly-detector/*" in paths and "/anomaly/invocations" in paths
    assert not any("health" in p for p in paths)
    (allow,) = custom(prod, "AuthorizationPolicy", "anomaly-from-gateway")
    assert allow["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
    ]


def test_the_gateway_rate_limits_with_retry_after_and_caps_bodies_at_the_services_limit(
    prod,
) -> None:
    filters = {f["metadata"]["name"]: f["spec"] for f in custom(prod, "EnvoyFilter")}
    route = filters["anomaly-rate-limit"]["configPatches"][0]["patch"]["value"]
    limit = route["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
    assert limit["token_bucket"] == {
        "max_tokens": 400,
        "tokens_per_fill": 200,
        "fill_interval": "1s",
    }
    assert limit["response_headers_to_add"][0]["header"] == {"key": "retry-after", "value": "1"}
    (deployment, *_) = deployments(prod).values()
    body = int(flag(container(deployment)["command"], "--max-body-bytes"))
    edge = filters["inference-edge"]["configPatches"]
    assert [p["patch"]["value"]["typed_config"].get("max_request_bytes") for p in edge][1] == body


def test_autoscaling_reads_the_queue_per_pod_with_cpu_as_a_floor(prod) -> None:
    scalers = {s["metadata"]["name"]: s["spec"] for s in custom(prod, "ScaledObject")}
    assert set(scalers) == {"anomaly-blue", "anomaly-green"}
    spec = scalers["anomaly-blue"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 6)
    queue, cpu = spec["triggers"]
    assert queue["metricType"] == "AverageValue"
    assert (
        'serving_queue_depth{namespace="ml-serving", service="anomaly"'
        in queue["metadata"]["query"]
    )
    assert 'mlplatform_io_release="blue"' in queue["metadata"]["query"]
    assert cpu["metadata"]["containerName"] == "serving"
    (keda,) = [r for r in of(prod, "kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "keda"]
    assert (keda.inputs["chart"], keda.inputs["version"]) == ("keda", "2.20.2")
    for scaler in of(prod, "kubernetes:keda.sh/v1alpha1:ScaledObject"):
        assert keda.urn in scaler.dependencies


def test_only_the_gateway_and_prometheus_reach_the_pods(prod) -> None:
    policies = {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in of(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    ingress = policies["anomaly-ingress"]["ingress"]
    sources = {
        (
            r["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            r["ports"][0]["port"],
        )
        for r in ingress
    }
    assert sources == {("istio-ingress", 8080), ("monitoring", 15020)}


def test_changing_the_idle_release_leaves_the_active_one_untouched(prod, tmp_path) -> None:
    def promote_green(inference: dict[str, Any]) -> None:
        green = inference["services"]["anomaly"]["rollout"]["green"]
        green["models"] = {"anomaly-detector": "models:/anomaly-detector/3"}

    changed = plan_file(prod_copy(tmp_path, "promoted", promote_green))
    before, after = deployments(prod), deployments(changed)
    assert before["anomaly-blue"] == after["anomaly-blue"]
    assert before["anomaly-green"] != after["anomaly-green"]
    assert (
        "anomaly-detector=models:/anomaly-detector/3"
        in container(after["anomaly-green"])["command"]
    )


def test_a_second_service_leaves_the_first_untouched(prod, tmp_path) -> None:
    def add_service(inference: dict[str, Any]) -> None:
        inference["services"]["fraud"] = {
            "models": {"fraud-scorer": "models:/fraud-scorer/1"},
            "placement": "spot",
            "auth": dict(inference["services"]["anomaly"]["auth"]),
        }

    changed = plan_file(prod_copy(tmp_path, "two", add_service))
    before, after = deployments(prod), deployments(changed)
    assert {k: after[k] for k in before} == before
    assert after["fraud"]["spec"]["template"]["spec"]["nodeSelector"] == {POOL_LABEL: "spot"}
