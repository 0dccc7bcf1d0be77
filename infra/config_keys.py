"""The stack's config keys and the typed settings they become.

``KEYS`` declares every project key once (its Pulumi schema type); ``Pulumi.yaml`` holds
the same keys with their descriptions and defaults, and a test keeps the two in step.
``infra.config`` reads and validates values into ``Settings``; import from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi

PROJECT = "mlplatform"
KeyType = Literal["string", "integer", "boolean", "array"]
NatStrategy = Literal["single", "per_az"]
CapacityType = Literal["ON_DEMAND", "SPOT"]

ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver")
NODE_GROUPS = ("system", "gpu", "spot")
NODE_GROUP_FIELDS: dict[str, KeyType] = {
    "instanceTypes": "array",
    "minSize": "integer",
    "maxSize": "integer",
    "capacityType": "string",
    "diskSizeGib": "integer",
}
SUPPORTED_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34")
MIN_SPOT_INSTANCE_TYPES = 3

KEYS: dict[str, KeyType] = {
    "clusterName": "string",
    "kubernetesVersion": "string",
    "vpcCidr": "string",
    "azCount": "integer",
    "natStrategy": "string",
    "endpointPublicAccess": "boolean",
    "publicAccessCidrs": "array",
    "privateAccessCidrs": "array",
    "adminRoleArns": "array",
    "logRetentionDays": "integer",
    "flowLogRetentionDays": "integer",
    "protect": "boolean",
    **{f"addonVersions.{addon}": "string" for addon in ADDONS},
    **{
        f"nodeGroups.{group}.{field}": kind
        for group in NODE_GROUPS
        for field, kind in NODE_GROUP_FIELDS.items()
    },
}
"""Every config key (project namespace) and its Pulumi schema type. Dotted keys are paths
into the structured objects ``addonVersions`` and ``nodeGroups``."""

OBJECT_ROOTS = ("addonVersions", "nodeGroups")


class ConfigError(ValueError, pulumi.RunError):
    """The stack configuration is invalid; ``problems`` lists one line per bad key.

    A ``pulumi.RunError``, so that ``pulumi preview``/``up`` print just the message (no
    stack trace), as the offline plan does.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid stack configuration: " + "; ".join(self.problems))


@dataclass(frozen=True)
class NodeGroupSettings:
    """One node pool's settings (``mlplatform:nodeGroups.<pool>.*``)."""

    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    capacity_type: CapacityType
    disk_size_gib: int


@dataclass(frozen=True)
class Settings:
    """The validated settings of one stack; see ``docs/configuration.md`` for each key."""

    cluster_name: str
    kubernetes_version: str
    vpc_cidr: str
    az_count: int
    nat_strategy: NatStrategy
    endpoint_public_access: bool
    public_access_cidrs: tuple[str, ...]
    private_access_cidrs: tuple[str, ...]
    admin_role_arns: tuple[str, ...]
    log_retention_days: int
    flow_log_retention_days: int
    protect: bool
    addon_versions: Mapping[str, str]
    system: NodeGroupSettings
    gpu: NodeGroupSettings
    spot: NodeGroupSettings


def full_key(key: str) -> str:
    """Return the namespaced name of a project key (``azCount`` -> ``mlplatform:azCount``)."""
    return f"{PROJECT}:{key}"
