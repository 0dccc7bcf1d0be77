"""Inference rules: digest, probes, grace period, GPU toleration, weights, model pins."""

from __future__ import annotations

from typing import Any

import pytest

from policy import rules_inference
from policy.rules import check_resource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
VS = "kubernetes:networking.istio.io/v1:VirtualService"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
DIGEST = "1234.dkr.ecr.us-west-2.amazonaws.com/mlplatform-serving@sha256:" + "a" * 64
PROBE = {"httpGet": {"path": "/v2/health/ready", "port": "http"}}


PINNED = ["python", "-m", "serving", "--model", "m=models:/m/2", "--drain-timeout-s", "25"]
ALIASED = ["python", "-m", "serving", "--model", "m=models:/m@champion"]
GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}


def deployment(
    *,
    image: str = DIGEST,
    command: list[str] = PINNED,
    grace: Any = 40,
    pins: str = "versions",
    limits: dict[str, str] | None = None,
    tolerations: list[dict[str, str]] | None = None,
    drop_probe: str | None = None,
    part_of: str = "mlplatform-inference",
) -> dict[str, Any]:
    box: dict[str, Any] = {
        "name": "serving",
        "image": image,
        "command": command,
        "lifecycle": {"preStop": {"sleep": {"seconds": 10}}},
        "startupProbe": PROBE,
        "readinessProbe": PROBE,
        "livenessProbe": PROBE,
        "resources": {"limits": limits or {"memory": "2Gi"}},
    }
    if drop_probe:
        del box[drop_probe]
    pod: dict[str, Any] = {"terminationGracePeriodSeconds": grace, "containers": [box]}
    if tolerations is not None:
        pod["tolerations"] = tolerations
    return {
        "metadata": {"labels": {"app.kubernetes.io/part-of": part_of}},
        "spec": {
            "template": {
                "metadata": {"annotations": {"mlplatform.io/model-pins": pins}},
                "spec": pod,
            }
        },
    }


OURS = {rule.name for rule in rules_inference.RULES}


def fired(resource_type: str, props: dict[str, Any]) -> set[str]:
    """The inference rules that fire (the pod-hardening rules judge these inputs too)."""
    return {f.policy for f in check_resource(resource_type, props)} & OURS


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (deployment(), set()),
        (deployment(image="mlplatform-serving:latest"), {"inference-image-digest"}),
        (deployment(image=UNKNOWN), set()),
        (deployment(drop_probe="livenessProbe"), {"inference-probes"}),
        (deployment(grace=30), {"inference-grace-period"}),
        (deployment(grace=UNKNOWN), set()),
        (deployment(command=ALIASED), {"inference-models-pinned"}),
        (deployment(command=ALIASED, pins="aliases-allowed"), set()),
        (deployment(limits={"nvidia.com/gpu": "1"}), {"gpu-pod-tolerates-gpu-taint"}),
        (deployment(limits={"nvidia.com/gpu": "1"}, tolerations=[GPU_TOLERATION]), set()),
    ],
)
def test_inference_deployments(props: dict[str, Any], expected: set[str]) -> None:
    assert fired(DEPLOYMENT, props) == expected


def test_other_deployments_are_not_judged_as_inference() -> None:
    props = deployment(image="nginx:latest", part_of="something-else")
    assert fired(DEPLOYMENT, props) == set()


def routes(*weights: Any) -> dict[str, Any]:
    dest = [
        {"destination": {"host": "a", "subset": f"s{i}"}, "weight": w}
        for i, w in enumerate(weights)
    ]
    return {"spec": {"http": [{"name": "r", "route": dest}]}}


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (routes(90, 10), set()),
        (routes(100, 0), set()),
        (routes(90, 20), {"virtualservice-weights-100"}),
        (routes(50, UNKNOWN), set()),
        ({"spec": {"http": [{"route": [{"destination": {"host": "a"}}]}]}}, set()),
    ],
)
def test_virtual_service_weights(props: dict[str, Any], expected: set[str]) -> None:
    assert fired(VS, props) == expected
