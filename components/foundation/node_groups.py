"""One EKS managed node-group shape; system, GPU and spot pools are presets of it
(``components/foundation/node_presets.py``). One component, one file (Args, validator,
the node group): a little past 300 lines."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components._aws import (
    INSTANCE_TYPE,
    account_context,
    is_arm,
    is_nvidia,
    service_role,
    spot_diversity_problems,
)
from components._k8s import NodeTaint
from components._tokens import type_token, with_aliases
from components._validate import Problem, raise_for

CapacityType = Literal["ON_DEMAND", "SPOT"]

AMI_TYPES = frozenset(
    {
        "AL2023_x86_64_STANDARD",
        "AL2023_ARM_64_STANDARD",
        "AL2023_x86_64_NVIDIA",
        "AL2023_ARM_64_NVIDIA",
        "AL2023_x86_64_NEURON",
        "BOTTLEROCKET_x86_64",
        "BOTTLEROCKET_ARM_64",
        "BOTTLEROCKET_x86_64_NVIDIA",
        "BOTTLEROCKET_ARM_64_NVIDIA",
    }
)
# AWS managed policies a node needs and nothing more: join the cluster and pull images.
# The VPC CNI's permissions sit on its own IRSA role (ClusterArgs), not on every node.
NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "ecr-pull": "AmazonEC2ContainerRegistryPullOnly",
}
_EKS_EFFECT = {
    "NoSchedule": "NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}
_LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class NodeGroupArgs:
    """Inputs of :class:`NodeGroup`."""

    cluster_name: pulumi.Input[str]
    """Name of the EKS cluster the nodes join. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets the nodes run in. Required."""
    instance_types: Sequence[str]
    """EC2 instance types, e.g. ``("m7i.large",)``. Required, at least one; at least
    three for SPOT so one reclaimed type does not empty the pool; Arm types only with an
    Arm AMI type, NVIDIA types only (and only them) with an NVIDIA AMI type."""
    min_size: int = 1
    """Fewest nodes (0 allowed, e.g. for GPU pools that scale to zero). Default 1."""
    max_size: int = 3
    """Most nodes, at least ``min_size`` and at least 1. Default 3."""
    desired_size: int | None = None
    """Nodes to run. Default ``min_size``. Pulumi keeps it unless ``autoscaled``."""
    autoscaled: bool = False
    """An autoscaler owns the desired size: Pulumi sets it at creation only and ignores
    its drift afterwards. Default False: Pulumi keeps it, so raising ``min_size`` raises
    it too instead of failing the update."""
    capacity_type: CapacityType = "ON_DEMAND"
    """``ON_DEMAND`` or ``SPOT``. Default ``ON_DEMAND``."""
    ami_type: str = "AL2023_x86_64_STANDARD"
    """EKS AMI type (one of ``AMI_TYPES``). Default ``AL2023_x86_64_STANDARD``."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Kubernetes labels on every node. Default none."""
    taints: Sequence[NodeTaint] = ()
    """Kubernetes taints on every node (Kubernetes spelling, ``NoSchedule``). Default none."""
    disk_size_gib: int = 50
    """Node volume size (gp3, encrypted), 20 to 16384 GiB: the root volume on AL2023, the
    data volume (``/dev/xvdb``, images and pods) on Bottlerocket, whose small OS volume
    keeps its default. Default 50."""
    disk_kms_key_arn: pulumi.Input[str] | None = None
    """KMS key for the node volume. Default: the account's EBS default key."""
    max_unavailable_percentage: int = 33
    """Share of nodes replaced at once during an update, 1 to 100. Default 33."""
    detailed_monitoring: bool = False
    """One-minute EC2 metrics (billed per instance). Default False: five-minute metrics."""
    kubernetes_version: pulumi.Input[str] | None = None
    """Kubelet version. Default: the cluster's version."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the node group, its role, launch template, instances and volumes."""


def is_bottlerocket(ami_type: str) -> bool:
    """True for the Bottlerocket AMI types (two volumes: OS on xvda, data on xvdb)."""
    return ami_type.startswith("BOTTLEROCKET_")


def _architecture_problems(args: NodeGroupArgs, types: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    arm_ami = "_ARM_64" in args.ami_type
    nvidia_ami = args.ami_type.endswith("_NVIDIA")
    for t in types:
        if not INSTANCE_TYPE.match(t):
            continue
        if is_arm(t) and not arm_ami:
            problems.append(
                Problem(
                    "instance_types",
                    f"is an Arm (Graviton) type; ami_type {args.ami_type} is x86_64 "
                    "(choose an *_ARM_64* AMI type, or an x86_64 instance type)",
                    t,
                )
            )
        elif arm_ami and not is_arm(t):
            problems.append(
                Problem("instance_types", f"is x86_64; ami_type {args.ami_type} is Arm", t)
            )
        if nvidia_ami and not is_nvidia(t):
            problems.append(
                Problem(
                    "instance_types",
                    f"has no NVIDIA GPU; ami_type {args.ami_type} needs an NVIDIA family "
                    "(g4dn, g5, g6, g6e, p4d, p5, p6...)",
                    t,
                )
            )
        elif is_nvidia(t) and not nvidia_ami:
            problems.append(
                Problem(
                    "instance_types", f"has NVIDIA GPUs; ami_type {args.ami_type} has no driver", t
                )
            )
    return problems


def validate_node_group_args(args: NodeGroupArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    types = list(args.instance_types) if not isinstance(args.instance_types, str) else []
    if not types:
        problems.append(Problem("instance_types", "must list at least one EC2 instance type"))
    for t in types:
        if not INSTANCE_TYPE.match(t):
            problems.append(
                Problem("instance_types", "is not an EC2 instance type (e.g. m7i.large)", t)
            )
    if len(set(types)) != len(types):
        problems.append(Problem("instance_types", "must not repeat an instance type"))
    if args.capacity_type not in ("ON_DEMAND", "SPOT"):
        problems.append(
            Problem("capacity_type", "must be 'ON_DEMAND' or 'SPOT'", args.capacity_type)
        )
    elif args.capacity_type == "SPOT":
        problems += spot_diversity_problems(types, "instance_types")
    if args.ami_type not in AMI_TYPES:
        problems.append(Problem("ami_type", f"must be one of {sorted(AMI_TYPES)}", args.ami_type))
    else:
        problems += _architecture_problems(args, types)
    if args.min_size < 0:
        problems.append(Problem("min_size", "must be 0 or more", args.min_size))
    if args.max_size < max(1, args.min_size):
        problems.append(
            Problem(
                "max_size",
                f"must be at least 1 and at least the minimum size ({args.min_size})",
                args.max_size,
            )
        )
    if args.desired_size is not None and not args.min_size <= args.desired_size <= args.max_size:
        problems.append(
            Problem("desired_size", "must be between min_size and max_size", args.desired_size)
        )
    for key in args.labels:
        if not _LABEL_KEY.match(key):
            problems.append(Problem("labels", "is not a Kubernetes label key", key))
    for taint in args.taints:
        if not _LABEL_KEY.match(taint.key):
            problems.append(Problem("taints", "is not a Kubernetes taint key", taint.key))
        if taint.effect not in _EKS_EFFECT:
            problems.append(
                Problem("taints", f"must be one of {sorted(_EKS_EFFECT)}", taint.effect)
            )
    if not 20 <= args.disk_size_gib <= 16384:
        problems.append(Problem("disk_size_gib", "must be from 20 to 16384", args.disk_size_gib))
    if not 1 <= args.max_unavailable_percentage <= 100:
        problems.append(
            Problem(
                "max_unavailable_percentage", "must be 1 to 100", args.max_unavailable_percentage
            )
        )
    return problems


def _block_devices(args: NodeGroupArgs) -> list[aws.ec2.LaunchTemplateBlockDeviceMappingArgs]:
    ebs = aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
        volume_size=args.disk_size_gib,
        volume_type="gp3",
        encrypted="true",
        delete_on_termination="true",
        kms_key_id=args.disk_kms_key_arn,
    )
    # Bottlerocket boots from a small OS volume (xvda, left at the AMI's default) and
    # keeps images and pods on the data volume (xvdb): the size belongs there.
    device = "/dev/xvdb" if is_bottlerocket(args.ami_type) else "/dev/xvda"
    return [aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name=device, ebs=ebs)]


class NodeGroup(pulumi.ComponentResource):
    """An EKS managed node group with a hardened launch template and a minimal node role.

    Nodes require IMDSv2 with a hop limit of 1, keep their data on an encrypted gp3
    volume, have no SSH key and run in the given (private) subnets. Raises
    :class:`~components._validate.ValidationError` naming every bad field of ``args``.
    """

    node_group_name: pulumi.Output[str]
    node_group_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("NodeGroupArgs", validate_node_group_args(args))
        super().__init__(
            type_token("NodeGroup"), name, None, with_aliases(opts, "mlplatform:compute:NodeGroup")
        )
        child = pulumi.ResourceOptions(parent=self)
        context = account_context(self)
        tags = dict(args.tags)

        role, attachments = service_role(
            f"{name}-node-role",
            service="ec2.amazonaws.com",
            policies={f"{name}-{key}": policy for key, policy in NODE_POLICIES.items()},
            description=f"EKS node role of node group {name}",
            context=context,
            tags=tags,
            parent=self,
        )

        instance_tags = {**tags, "Name": name}
        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"Nodes of node group {name}",
            update_default_version=True,
            # Hop limit 1 keeps the instance metadata service out of reach of pods: pods get
            # AWS credentials through IRSA, never through the node's role.
            metadata_options={
                "http_tokens": "required",
                "http_endpoint": "enabled",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=_block_devices(args),
            monitoring={"enabled": args.detailed_monitoring},
            tag_specifications=[
                {"resource_type": "instance", "tags": instance_tags},
                {"resource_type": "volume", "tags": instance_tags},
            ],
            tags=tags,
            opts=child,
        )

        desired = args.desired_size if args.desired_size is not None else args.min_size
        group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=args.subnet_ids,
            instance_types=list(args.instance_types),
            capacity_type=args.capacity_type,
            ami_type=args.ami_type,
            version=args.kubernetes_version,
            scaling_config={
                "min_size": args.min_size,
                "max_size": args.max_size,
                "desired_size": desired,
            },
            update_config={"max_unavailable_percentage": args.max_unavailable_percentage},
            launch_template={
                "id": template.id,
                "version": template.latest_version.apply(str),
            },
            labels=dict(args.labels),
            taints=[
                {"key": t.key, "value": t.value, "effect": _EKS_EFFECT[t.effect]}
                for t in args.taints
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=attachments,
                # Only an autoscaler's pool may drift from its desired size; otherwise a
                # later `up` with a higher minSize must raise desiredSize with it.
                ignore_changes=["scalingConfig.desiredSize"] if args.autoscaled else None,
            ),
        )

        self.node_group_name = group.node_group_name
        self.node_group_arn = group.arn
        self.node_role_arn = role.arn
        self.launch_template_id = template.id
        self.register_outputs(
            {
                "node_group_name": self.node_group_name,
                "node_group_arn": self.node_group_arn,
                "node_role_arn": self.node_role_arn,
                "launch_template_id": self.launch_template_id,
            }
        )
