"""Rules for capacity that Karpenter provides, and for GPUs pods can use."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    Aliases,
    ResourceRule,
    Resources,
    StackRule,
    as_bool,
    as_list,
    as_number,
    chart_name,
    dig,
    is_unknown,
    iter_mappings,
    link_targets,
    mandatory_rule,
)
from policy.rules_nodes import NODE_GROUP, is_gpu_group, is_nvidia_type

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RELEASE = "kubernetes:helm.sh/v3:Release"
QUEUE = "aws:sqs/queue:Queue"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
# The events Karpenter's interruption handling needs (its reference template); the
# capacity-reservation warning is new in 1.14 and only matters with reservations, so it
# is not required here.
REQUIRED_EVENTS = frozenset(
    {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.health", "AWS Health Event"),
    }
)
DEVICE_PLUGIN_CHARTS = frozenset({"nvidia-device-plugin", "gpu-operator"})


def is_gpu_node_pool(props: Mapping[str, Any]) -> bool | None:
    """True when a NodePool launches NVIDIA GPU nodes (GPU label or instance types)."""
    labels = dig(props, "spec", "template", "metadata", "labels")
    if isinstance(labels, Mapping) and labels.get("nvidia.com/gpu.present") == "true":
        return True
    requirements = dig(props, "spec", "template", "spec", "requirements")
    if is_unknown(requirements):
        return None
    for requirement in iter_mappings(requirements):
        key = dig(requirement, "key")
        values = [v for v in as_list(dig(requirement, "values")) if isinstance(v, str)]
        if key == "node.kubernetes.io/instance-type" and any(map(is_nvidia_type, values)):
            return True
        if key == "karpenter.k8s.aws/instance-gpu-manufacturer" and "nvidia" in values:
            return True
    return False


def _node_pool_taint(_: str, props: Mapping[str, Any]) -> list[str]:
    if is_gpu_node_pool(props) is not True:
        return []
    taints = dig(props, "spec", "template", "spec", "taints")
    if is_unknown(taints):
        return []
    for taint in iter_mappings(taints):
        if dig(taint, "key") == "nvidia.com/gpu" and dig(taint, "effect") == "NoSchedule":
            return []
    return [
        "a GPU NodePool must carry the taint nvidia.com/gpu with effect NoSchedule "
        "(spec.template.spec.taints[]) so that only pods tolerating it land on GPU nodes"
    ]


def _node_class_hardened(_: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    options = dig(props, "spec", "metadataOptions")
    tokens = dig(options, "httpTokens")
    hops = as_number(dig(options, "httpPutResponseHopLimit"))
    # Karpenter's defaults are IMDSv2-only with a hop limit of 1: absent is compliant.
    if tokens not in (MISSING, "required") and not is_unknown(tokens):
        problems.append(f"spec.metadataOptions.httpTokens must be 'required'; found {tokens!r}")
    if hops is not None and hops > 1:
        problems.append(
            f"spec.metadataOptions.httpPutResponseHopLimit must be 1 (pods must not reach the "
            f"node's credentials); found {hops:g}"
        )
    for mapping in iter_mappings(dig(props, "spec", "blockDeviceMappings")):
        if as_bool(dig(mapping, "ebs", "encrypted")) is False:
            device = dig(mapping, "deviceName")
            problems.append(f"spec.blockDeviceMappings[{device}].ebs.encrypted must be true")
    return problems


def _event(props: Mapping[str, Any]) -> tuple[str, str] | None:
    pattern = dig(props, "eventPattern")
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError:
            return None
    sources = [s for s in as_list(dig(pattern, "source")) if isinstance(s, str)]
    details = [d for d in as_list(dig(pattern, "detail-type")) if isinstance(d, str)]
    return (sources[0], details[0]) if len(sources) == 1 and len(details) == 1 else None


def _interruption_queue(resources: Resources, aliases: Aliases) -> list[tuple[str, str]]:
    findings: list[tuple[str, str]] = []
    queues = [(urn, props) for urn, t, props in resources if t == QUEUE]
    rules = {urn: props for urn, t, props in resources if t == EVENT_RULE}
    targets = [props for _, t, props in resources if t == EVENT_TARGET]
    for urn, kind, props in resources:
        if kind != RELEASE or chart_name(props) != "karpenter":
            continue
        queue_name = dig(props, "values", "settings", "interruptionQueue")
        if is_unknown(queue_name):
            continue
        if not isinstance(queue_name, str) or not queue_name:
            message = (
                "values.settings.interruptionQueue is not set: spot reclaims and health "
                "events would kill nodes without draining them"
            )
            findings.append((urn, message))
            continue
        queue = [(q, p) for q, p in queues if dig(p, "name") == queue_name]
        if not queue:
            findings.append((urn, f"no SQS queue named {queue_name!r} in the stack"))
            continue
        fed: set[tuple[str, str]] = set()
        for target in targets:
            if link_targets(queue, [target.get("arn")], aliases) != {queue[0][0]}:
                continue
            for rule_urn, rule in rules.items():
                names = {rule_urn, dig(rule, "name"), *aliases.get(rule_urn, ())}
                event = _event(rule)
                if event and dig(target, "rule") in names:
                    fed.add(event)
        missing = sorted(d for _, d in REQUIRED_EVENTS - fed)
        if missing:
            message = (
                f"the interruption queue {queue_name!r} gets no EventBridge rule for: "
                f"{', '.join(missing)}"
            )
            findings.append((urn, message))
    return findings


def _gpu_capacity(resources: Resources) -> tuple[list[str], bool | None]:
    """(urns of GPU capacity, whether all of it is Bottlerocket with a built-in plugin)."""
    gpu: list[str] = []
    bottlerocket = True
    for urn, kind, props in resources:
        if kind == NODE_GROUP and is_gpu_group(props) is True:
            gpu.append(urn)
            ami = dig(props, "amiType")
            bottlerocket &= isinstance(ami, str) and ami.startswith("BOTTLEROCKET_")
        elif kind == NODE_POOL and is_gpu_node_pool(props) is True:
            gpu.append(urn)
            labels = dig(props, "spec", "template", "metadata", "labels")
            os_label = labels.get("mlplatform.io/os") if isinstance(labels, Mapping) else None
            bottlerocket &= os_label == "bottlerocket"
    return gpu, bottlerocket


def _device_plugin(resources: Resources, aliases: Aliases) -> list[tuple[str, str]]:
    del aliases
    gpu, bottlerocket = _gpu_capacity(resources)
    if not gpu or bottlerocket:
        return []
    names = {chart_name(props) for _, kind, props in resources if kind == RELEASE}
    if names & DEVICE_PLUGIN_CHARTS:
        return []
    return [
        (
            urn,
            "GPU capacity without an NVIDIA device plugin (nvidia-device-plugin or gpu-operator "
            "release): no pod can request nvidia.com/gpu, so GPU pods stay Pending",
        )
        for urn in gpu
    ]


RULES: list[ResourceRule] = [
    mandatory_rule(
        "karpenter-gpu-nodepool-taint",
        {NODE_POOL},
        "GPU NodePools carry the nvidia.com/gpu NoSchedule taint.",
        "Without it ordinary pods fill expensive GPU nodes Karpenter launched for GPU pods.",
        "EKS Best Practices (AI/ML: compute and autoscaling); Karpenter docs (GPU workloads)",
        _node_pool_taint,
    ),
    mandatory_rule(
        "karpenter-nodeclass-hardened",
        {NODE_CLASS},
        "EC2NodeClasses keep IMDSv2 with a hop limit of 1 and encrypted volumes.",
        "IMDSv1 or a second hop lets any pod read the node role's credentials; node disks hold "
        "images, logs and emptyDir data.",
        "EKS Best Practices (Restrict access to the instance profile); Karpenter EC2NodeClass docs",
        _node_class_hardened,
    ),
]

STACK_RULES: list[StackRule] = [
    StackRule(
        "karpenter-interruption-queue",
        "mandatory",
        frozenset({RELEASE, QUEUE, EVENT_RULE, EVENT_TARGET}),
        "A Karpenter release names an interruption queue that EventBridge rules for spot "
        "interruptions, rebalance recommendations, state changes and health events feed.",
        "Without it a spot reclaim kills pods with no warning instead of draining the node in "
        "its two-minute notice.",
        "Karpenter docs (Interruption handling)",
        _interruption_queue,
    ),
    StackRule(
        "gpu-device-plugin",
        "mandatory",
        frozenset({NODE_GROUP, NODE_POOL, RELEASE}),
        "A stack with GPU capacity installs an NVIDIA device plugin (or runs only Bottlerocket "
        "NVIDIA nodes, whose plugin is built in).",
        "Nodes without the device plugin advertise no nvidia.com/gpu, so every GPU pod stays "
        "Pending.",
        "EKS user guide (NVIDIA device plugin for Kubernetes)",
        _device_plugin,
    ),
]
