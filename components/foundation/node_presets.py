"""Node-group presets: system, GPU and spot pools as values of one ``NodeGroupArgs`` shape.

A preset fixes what makes the pool what it is (AMI type, the node contract's labels and
taints) and gives defaults for the rest, including who provides the nodes (a managed
node group, or Karpenter for gpu and spot) and a Karpenter pool's limits; every default
can be overridden, including the capacity type. Pools are a map keyed by name, so a
second GPU pool is config only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi

from components._k8s import node_labels, node_taints
from components.foundation.node_groups import CapacityType, NodeGroupArgs, is_bottlerocket

PresetName = Literal["system", "gpu", "spot"]
Provisioner = Literal["managed", "karpenter"]


@dataclass(frozen=True)
class Preset:
    """What one kind of pool is, and its defaults."""

    description: str
    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    capacity_type: CapacityType
    disk_size_gib: int
    ami_type: str
    gpu: bool = False
    provisioner: Provisioner = "managed"
    """Who provides the nodes by default: a managed node group or Karpenter."""
    cpu_limit: int = 64
    """Karpenter pools: most vCPUs in total."""
    memory_limit_gib: int = 256
    """Karpenter pools: most memory in total, GiB."""
    gpu_limit: int = 0
    """Karpenter pools: most GPUs in total (0: no limit)."""
    consolidation: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmptyOrUnderutilized"
    """Karpenter pools: when nodes may be removed."""
    consolidate_after: str = "1m"
    """Karpenter pools: how long a node must qualify first."""


PRESETS: Mapping[str, Preset] = {
    "system": Preset(
        "on-demand nodes for the cluster's own add-ons (CoreDNS, mesh, Vault, monitoring); "
        "two by default so a node loss does not take CoreDNS down",
        instance_types=("m7i.large",),
        min_size=2,
        max_size=4,
        capacity_type="ON_DEMAND",
        disk_size_gib=50,
        ami_type="AL2023_x86_64_STANDARD",
    ),
    "gpu": Preset(
        "NVIDIA nodes only GPU workloads land on (tainted nvidia.com/gpu=true:NoSchedule); "
        "a larger volume because CUDA images are big",
        instance_types=("g5.xlarge", "g6.xlarge"),
        min_size=0,
        max_size=2,
        capacity_type="ON_DEMAND",
        disk_size_gib=100,
        ami_type="AL2023_x86_64_NVIDIA",
        gpu=True,
        provisioner="karpenter",
        gpu_limit=8,
        # GPU nodes are slow to start and their images are large: remove only empty ones,
        # and only after ten minutes, so a burst that ends does not pay for a cold start.
        consolidation="WhenEmpty",
        consolidate_after="10m",
    ),
    "spot": Preset(
        "spot nodes across several same-size types for interruption-tolerant replicas",
        instance_types=("m7i.xlarge", "m6i.xlarge", "m7a.xlarge", "m6a.xlarge"),
        min_size=0,
        max_size=6,
        capacity_type="SPOT",
        disk_size_gib=50,
        ami_type="AL2023_x86_64_STANDARD",
        provisioner="karpenter",
        cpu_limit=96,
        memory_limit_gib=384,
    ),
}


def preset_args(
    preset: str,
    *,
    pool: str,
    cluster_name: pulumi.Input[str],
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    instance_types: Sequence[str] | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    capacity_type: CapacityType | None = None,
    disk_size_gib: int | None = None,
    ami_type: str | None = None,
    critical_addons_only: bool = False,
    kubernetes_version: pulumi.Input[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> NodeGroupArgs:
    """Return ``NodeGroupArgs`` for pool ``pool`` built from ``preset``.

    Every ``None`` takes the preset's default. Nodes carry the node contract's labels
    (``mlplatform.io/pool=<pool>``, ``mlplatform.io/capacity`` from the capacity type,
    ``nvidia.com/gpu.present`` on GPU pools) and taints (the GPU taint on GPU pools;
    ``CriticalAddonsOnly`` when ``critical_addons_only``). Raises ``KeyError`` naming the
    presets for an unknown ``preset``.
    """
    if preset not in PRESETS:
        raise KeyError(f"unknown node-group preset {preset!r}; allowed: {', '.join(PRESETS)}")
    base = PRESETS[preset]
    capacity = capacity_type or base.capacity_type
    ami = ami_type or base.ami_type
    return NodeGroupArgs(
        cluster_name=cluster_name,
        subnet_ids=subnet_ids,
        instance_types=tuple(instance_types if instance_types is not None else base.instance_types),
        min_size=base.min_size if min_size is None else min_size,
        max_size=base.max_size if max_size is None else max_size,
        capacity_type=capacity,
        ami_type=ami,
        labels=node_labels(
            pool,
            "spot" if capacity == "SPOT" else "on-demand",
            gpu=base.gpu,
            os="bottlerocket" if is_bottlerocket(ami) else "al2023",
        ),
        taints=tuple(node_taints(gpu=base.gpu, critical_addons_only=critical_addons_only)),
        disk_size_gib=base.disk_size_gib if disk_size_gib is None else disk_size_gib,
        kubernetes_version=kubernetes_version,
        tags=dict(tags or {}),
    )
