"""Capacity rules: GPU NodePool taint, hardened EC2NodeClass, interruption queue, device plugin."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policy.rules import check_resource, check_stack

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def gpu_pool(taints: Any = (GPU_TAINT,), labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "metadata": {"labels": labels or {"mlplatform.io/pool": "gpu"}},
                "spec": {
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": ["g5.xlarge"],
                        }
                    ],
                    "taints": list(taints) if isinstance(taints, tuple) else taints,
                },
            }
        }
    }


def fired(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    return {f.policy: f.level for f in check_resource(resource_type, props)}


def test_a_gpu_node_pool_needs_the_gpu_taint() -> None:
    assert fired(NODE_POOL, gpu_pool()) == {}
    assert fired(NODE_POOL, gpu_pool(taints=())) == {"karpenter-gpu-nodepool-taint": "mandatory"}
    by_label = gpu_pool(taints=(), labels={"nvidia.com/gpu.present": "true"})
    by_label["spec"]["template"]["spec"]["requirements"] = []
    assert fired(NODE_POOL, by_label) == {"karpenter-gpu-nodepool-taint": "mandatory"}
    cpu = gpu_pool(taints=())
    cpu["spec"]["template"]["spec"]["requirements"][0]["values"] = ["m7i.xlarge"]
    assert fired(NODE_POOL, cpu) == {}
    assert fired(NODE_POOL, gpu_pool(taints=UNKNOWN)) == {}


def node_class(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "spec": {
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": True}}],
        }
    }
    props["spec"].update(changes)
    return props


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (node_class(), {}),
        ({"spec": {}}, {}),  # Karpenter's defaults are IMDSv2-only, hop limit 1
        (
            node_class(metadataOptions={"httpTokens": "optional"}),
            {"karpenter-nodeclass-hardened": "mandatory"},
        ),
        (
            node_class(metadataOptions={"httpPutResponseHopLimit": 2.0}),
            {"karpenter-nodeclass-hardened": "mandatory"},
        ),
        (
            node_class(
                blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]
            ),
            {"karpenter-nodeclass-hardened": "mandatory"},
        ),
        (node_class(metadataOptions={"httpTokens": UNKNOWN}), {}),
    ],
)
def test_node_classes_keep_imdsv2_and_encryption(
    props: dict[str, Any], expected: dict[str, str]
) -> None:
    assert fired(NODE_CLASS, props) == expected


QUEUE_URN = "urn:pulumi:dev::mlplatform::aws:sqs/queue:Queue::q"
QUEUE_ARN = "arn:aws:sqs:us-west-2:123456789012:ml-dev"
EVENTS = [
    ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
    ("aws.health", "AWS Health Event"),
]


def karpenter_stack(
    events: list[tuple[str, str]] = EVENTS, queue: Any = "ml-dev"
) -> list[tuple[str, str, Any]]:
    resources: list[tuple[str, str, Any]] = [
        (QUEUE_URN, "aws:sqs/queue:Queue", {"name": "ml-dev", "arn": QUEUE_ARN}),
        (
            "urn:pulumi:dev::mlplatform::kubernetes:helm.sh/v3:Release::karpenter",
            "kubernetes:helm.sh/v3:Release",
            {
                "chart": "oci://public.ecr.aws/karpenter/karpenter",
                "values": {"settings": {"interruptionQueue": queue}},
            },
        ),
    ]
    for i, (source, detail) in enumerate(events):
        rule = f"rule-{i}"
        resources.append(
            (
                f"urn:pulumi:dev::mlplatform::aws:cloudwatch/eventRule:EventRule::{rule}",
                "aws:cloudwatch/eventRule:EventRule",
                {
                    "name": rule,
                    "eventPattern": json.dumps({"source": [source], "detail-type": [detail]}),
                },
            )
        )
        resources.append(
            (
                f"urn:pulumi:dev::mlplatform::aws:cloudwatch/eventTarget:EventTarget::{rule}",
                "aws:cloudwatch/eventTarget:EventTarget",
                {"rule": rule, "arn": QUEUE_ARN},
            )
        )
    return resources


def stack_findings(resources: list[tuple[str, str, Any]]) -> list[tuple[str, str]]:
    return [
        (urn, f.message)
        for urn, f in check_stack(resources)
        if f.policy == "karpenter-interruption-queue"
    ]


def test_karpenter_needs_its_queue_fed_by_the_four_rules() -> None:
    assert stack_findings(karpenter_stack()) == []
    (finding,) = stack_findings(karpenter_stack(events=EVENTS[:2]))
    assert "AWS Health Event" in finding[1] and "State-change" in finding[1]
    (unset,) = stack_findings(karpenter_stack(queue=""))
    assert "interruptionQueue is not set" in unset[1]
    (missing,) = stack_findings(karpenter_stack(queue="other"))
    assert "no SQS queue named 'other'" in missing[1]
    assert stack_findings(karpenter_stack(queue=UNKNOWN)) == []
    rewired = copy.deepcopy(karpenter_stack())
    for _, kind, props in rewired:
        if kind.endswith("EventTarget"):
            props["arn"] = "arn:aws:sqs:us-west-2:123456789012:elsewhere"
    (elsewhere,) = stack_findings(rewired)
    assert "gets no EventBridge rule" in elsewhere[1]


def device_findings(resources: list[tuple[str, str, Any]]) -> list[str]:
    return [urn for urn, f in check_stack(resources) if f.policy == "gpu-device-plugin"]


GPU_GROUP = (
    "urn:ng",
    "aws:eks/nodeGroup:NodeGroup",
    {"amiType": "AL2023_x86_64_NVIDIA", "instanceTypes": ["g5.xlarge"]},
)
PLUGIN = ("urn:rel", "kubernetes:helm.sh/v3:Release", {"chart": "nvidia-device-plugin"})


def test_gpu_capacity_needs_a_device_plugin() -> None:
    assert device_findings([GPU_GROUP]) == ["urn:ng"]
    assert device_findings([GPU_GROUP, PLUGIN]) == []
    assert device_findings([("urn:np", NODE_POOL, gpu_pool())]) == ["urn:np"]
    assert device_findings([("urn:np", NODE_POOL, gpu_pool()), PLUGIN]) == []
    bottlerocket = (
        "urn:br",
        "aws:eks/nodeGroup:NodeGroup",
        {"amiType": "BOTTLEROCKET_x86_64_NVIDIA"},
    )
    assert device_findings([bottlerocket]) == []
    br_pool = gpu_pool(
        labels={"mlplatform.io/os": "bottlerocket", "nvidia.com/gpu.present": "true"}
    )
    assert device_findings([("urn:np", NODE_POOL, br_pool)]) == []
    assert (
        device_findings(
            [("urn:cpu", "aws:eks/nodeGroup:NodeGroup", {"instanceTypes": ["m7i.large"]})]
        )
        == []
    )
