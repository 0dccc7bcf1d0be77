"""Rules for EKS worker nodes: launch templates and managed node groups."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_bool,
    as_list,
    dig,
    is_unknown,
    iter_mappings,
    mandatory_rule,
)

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"

# NVIDIA instance families (AWS "accelerated computing"); g4ad is AMD and inf/trn are
# Neuron, so they need no nvidia.com/gpu taint. A deliberate copy of the families in
# components/_aws.py (the pack is published on its own); a test keeps the two agreeing.
_NVIDIA_FAMILY = re.compile(r"^(g3s?|g4dn|g5g?|g6[ef]?|gr6f?|g7e?|p[2-6][a-z0-9-]*)$")


def _imdsv2(_: str, props: Mapping[str, Any]) -> list[str]:
    endpoint = dig(props, "metadataOptions", "httpEndpoint")
    tokens = dig(props, "metadataOptions", "httpTokens")
    if is_unknown(endpoint) or is_unknown(tokens) or tokens == "required":
        return []
    if isinstance(endpoint, str) and endpoint.lower() == "disabled":
        return []  # no metadata service at all is stricter still
    found = "not set (IMDSv1 allowed)" if tokens is MISSING else repr(tokens)
    return [f"metadataOptions.httpTokens must be 'required' (IMDSv2 only); found {found}"]


def _encrypted_volumes(_: str, props: Mapping[str, Any]) -> list[str]:
    mappings = dig(props, "blockDeviceMappings")
    if is_unknown(mappings):
        return []
    ebs_mappings = [m for m in iter_mappings(mappings) if dig(m, "ebs") is not MISSING]
    if not ebs_mappings:
        return [
            "blockDeviceMappings must declare the root EBS volume with ebs.encrypted true; "
            "without it the volume inherits the AMI's (possibly unencrypted) settings"
        ]
    problems: list[str] = []
    for mapping in ebs_mappings:
        encrypted = as_bool(dig(mapping, "ebs", "encrypted"))
        if encrypted is False:
            device = dig(mapping, "deviceName")
            name = device if isinstance(device, str) else "?"
            problems.append(f"blockDeviceMappings[{name}].ebs.encrypted must be true")
    return problems


def _no_public_ip(_: str, props: Mapping[str, Any]) -> list[str]:
    for index, nic in enumerate(iter_mappings(dig(props, "networkInterfaces"))):
        if as_bool(dig(nic, "associatePublicIpAddress")) is True:
            return [
                f"networkInterfaces[{index}].associatePublicIpAddress must not be true: "
                "nodes live in private subnets"
            ]
    return []


def _no_ssh(_: str, props: Mapping[str, Any]) -> list[str]:
    access = dig(props, "remoteAccess")
    if access is MISSING or is_unknown(access) or access == {}:
        return []
    return [
        "remoteAccess must not be set: SSH to nodes is off; use SSM Session Manager for "
        "break-glass access"
    ]


def is_nvidia_type(instance_type: str) -> bool:
    """True for an EC2 instance type with NVIDIA GPUs (``g5.xlarge``)."""
    return bool(_NVIDIA_FAMILY.match(instance_type.split(".", 1)[0].lower()))


def is_gpu_group(props: Mapping[str, Any]) -> bool | None:
    """True when a node group runs NVIDIA GPUs (by AMI type or instance family)."""
    ami = dig(props, "amiType")
    if isinstance(ami, str) and ("NVIDIA" in ami.upper() or "GPU" in ami.upper()):
        return True
    types = dig(props, "instanceTypes")
    known = [t for t in as_list(types) if isinstance(t, str)]
    if any(map(is_nvidia_type, known)):
        return True
    if is_unknown(ami) or is_unknown(types) or len(known) < len(as_list(types)):
        return None
    return False


def _gpu_taint(_: str, props: Mapping[str, Any]) -> list[str]:
    if is_gpu_group(props) is not True:
        return []
    taints = dig(props, "taints")
    if is_unknown(taints):
        return []
    for taint in iter_mappings(taints):
        key, effect = dig(taint, "key"), dig(taint, "effect")
        if is_unknown(key) or is_unknown(effect):
            return []
        if key == "nvidia.com/gpu" and effect == "NO_SCHEDULE":
            return []
    return [
        "a GPU node group must carry the taint nvidia.com/gpu with effect NO_SCHEDULE "
        "(taints[]) so that only pods tolerating it land on GPU nodes"
    ]


def _spot_types(props: Mapping[str, Any]) -> int | None:
    """Number of instance types of a SPOT node group; None if not spot or unknown."""
    capacity = dig(props, "capacityType")
    types = dig(props, "instanceTypes")
    if capacity != "SPOT" or is_unknown(types):
        return None
    return len({str(t) for t in as_list(types)})


def _spot_min_types(_: str, props: Mapping[str, Any]) -> list[str]:
    count = _spot_types(props)
    if count is None or count >= 2:
        return []
    return [
        f"a SPOT node group must list at least 2 instanceTypes (found {count}) so that one "
        "reclaimed spot pool does not empty it"
    ]


def _spot_diversity(_: str, props: Mapping[str, Any]) -> list[str]:
    count = _spot_types(props)
    if count != 2:
        return []  # fewer than 2 is the mandatory rule's finding
    return ["a SPOT node group should list 3 or more instanceTypes (found 2) for spot diversity"]


RULES: list[ResourceRule] = [
    mandatory_rule(
        "ec2-imdsv2-required",
        {LAUNCH_TEMPLATE},
        "Node launch templates require IMDSv2 session tokens.",
        "IMDSv1 lets SSRF in any pod read the node role's credentials.",
        "EKS Best Practices (Restrict access to the instance profile); Checkov CKV_AWS_79",
        _imdsv2,
    ),
    mandatory_rule(
        "ec2-encrypted-volumes",
        {LAUNCH_TEMPLATE},
        "Launch template EBS volumes (the root volume at least) are encrypted.",
        "Node disks hold container images, logs and emptyDir data.",
        "Checkov CKV_AWS_8",
        _encrypted_volumes,
    ),
    mandatory_rule(
        "ec2-no-public-ip",
        {LAUNCH_TEMPLATE},
        "Launch template network interfaces do not get a public IP.",
        "Worker nodes belong in private subnets behind NAT.",
        "EKS Best Practices (Network security); Checkov CKV_AWS_88",
        _no_public_ip,
    ),
    mandatory_rule(
        "eks-nodegroup-no-ssh",
        {NODE_GROUP},
        "Managed node groups have no SSH remote access.",
        "SSH keys on nodes are long-lived credentials; SSM gives audited access instead.",
        "EKS Best Practices (Infrastructure security); Checkov CKV_AWS_100",
        _no_ssh,
    ),
    mandatory_rule(
        "eks-gpu-nodegroup-taint",
        {NODE_GROUP},
        "GPU node groups carry the nvidia.com/gpu NoSchedule taint.",
        "Without it ordinary pods fill expensive GPU nodes.",
        "EKS Best Practices (AI/ML: compute and autoscaling)",
        _gpu_taint,
    ),
    mandatory_rule(
        "eks-spot-min-instance-types",
        {NODE_GROUP},
        "SPOT node groups list at least 2 instance types.",
        "A single spot pool can be reclaimed all at once.",
        "EKS Best Practices (Cost optimization: spot instance diversification)",
        _spot_min_types,
    ),
    ResourceRule(
        "eks-spot-instance-diversity",
        "advisory",
        frozenset({NODE_GROUP}),
        "SPOT node groups should list 3 or more instance types.",
        "More pools mean fewer simultaneous interruptions and better prices.",
        "EKS Best Practices (Cost optimization: spot instance diversification)",
        _spot_diversity,
    ),
]
