"""One EKS managed node-group shape; system, GPU and spot pools are presets of it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

TaintEffect = Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"]
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
MIN_SPOT_INSTANCE_TYPES = 3
# AWS managed policies a node needs and nothing more: join the cluster, pull images,
# let the VPC CNI manage pod addresses.
NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "ecr-pull": "AmazonEC2ContainerRegistryPullOnly",
    "cni": "AmazonEKS_CNI_Policy",
}
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Taint:
    """A Kubernetes node taint, in EKS API spelling (``effect`` is e.g. ``NO_SCHEDULE``)."""

    key: str
    value: str
    effect: TaintEffect = "NO_SCHEDULE"


@dataclass(frozen=True)
class NodeGroupArgs:
    """Inputs of :class:`NodeGroup`."""

    cluster_name: pulumi.Input[str]
    """Name of the EKS cluster the nodes join. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets the nodes run in. Required."""
    instance_types: Sequence[str]
    """EC2 instance types, e.g. ``("m7i.large",)``. Required, at least one; at least
    three for SPOT so one reclaimed type does not empty the pool."""
    min_size: int = 1
    """Fewest nodes (0 allowed, e.g. for GPU pools that scale to zero). Default 1."""
    max_size: int = 3
    """Most nodes, at least ``min_size`` and at least 1. Default 3."""
    desired_size: int | None = None
    """Nodes at creation; afterwards the autoscaler owns it. Default ``min_size``."""
    capacity_type: CapacityType = "ON_DEMAND"
    """``ON_DEMAND`` or ``SPOT``. Default ``ON_DEMAND``."""
    ami_type: str = "AL2023_x86_64_STANDARD"
    """EKS AMI type (one of ``AMI_TYPES``). Default ``AL2023_x86_64_STANDARD``."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Kubernetes labels on every node. Default none."""
    taints: Sequence[Taint] = ()
    """Kubernetes taints on every node. Default none."""
    disk_size_gib: int = 50
    """Root volume size (gp3, encrypted), 20 to 16384 GiB. Default 50."""
    disk_kms_key_arn: pulumi.Input[str] | None = None
    """KMS key for the root volume. Default: the account's EBS default key."""
    max_unavailable_percentage: int = 33
    """Share of nodes replaced at once during an update, 1 to 100. Default 33."""
    kubernetes_version: pulumi.Input[str] | None = None
    """Kubelet version. Default: the cluster's version."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the node group, its role, launch template, instances and volumes."""


def validate_node_group_args(args: NodeGroupArgs) -> list[str]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[str] = []
    types = list(args.instance_types) if not isinstance(args.instance_types, str) else []
    if not types:
        problems.append("instance_types: must list at least one EC2 instance type")
    for t in types:
        if not _INSTANCE_TYPE.match(t):
            problems.append(f"instance_types: {t!r} is not an EC2 instance type (e.g. m7i.large)")
    if len(set(types)) != len(types):
        problems.append("instance_types: must not repeat a type")
    if args.capacity_type not in ("ON_DEMAND", "SPOT"):
        problems.append(f"capacity_type: {args.capacity_type!r} must be 'ON_DEMAND' or 'SPOT'")
    elif args.capacity_type == "SPOT" and len(types) < MIN_SPOT_INSTANCE_TYPES:
        problems.append(
            f"instance_types: SPOT needs at least {MIN_SPOT_INSTANCE_TYPES} instance types "
            f"(got {len(types)}) so that one reclaimed type does not empty the pool"
        )
    if args.min_size < 0:
        problems.append(f"min_size: {args.min_size} must be 0 or more")
    if args.max_size < max(1, args.min_size):
        problems.append(f"max_size: {args.max_size} must be at least 1 and at least min_size")
    if args.desired_size is not None and not args.min_size <= args.desired_size <= args.max_size:
        problems.append(f"desired_size: {args.desired_size} must be between min_size and max_size")
    if args.ami_type not in AMI_TYPES:
        problems.append(f"ami_type: {args.ami_type!r} must be one of {sorted(AMI_TYPES)}")
    for key in args.labels:
        if not _LABEL_KEY.match(key):
            problems.append(f"labels: {key!r} is not a Kubernetes label key")
    for taint in args.taints:
        if not _LABEL_KEY.match(taint.key):
            problems.append(f"taints: {taint.key!r} is not a Kubernetes taint key")
        if taint.effect not in ("NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"):
            problems.append(
                f"taints: effect {taint.effect!r} must be NO_SCHEDULE, NO_EXECUTE or "
                "PREFER_NO_SCHEDULE"
            )
    if not 20 <= args.disk_size_gib <= 16384:
        problems.append(f"disk_size_gib: {args.disk_size_gib} must be from 20 to 16384")
    if not 1 <= args.max_unavailable_percentage <= 100:
        problems.append(
            f"max_unavailable_percentage: {args.max_unavailable_percentage} must be 1 to 100"
        )
    return problems


class NodeGroup(pulumi.ComponentResource):
    """An EKS managed node group with a hardened launch template and a minimal node role.

    Nodes require IMDSv2 with a hop limit of 1, boot from an encrypted gp3 volume, have no
    SSH key and run in the given (private) subnets. After creation the desired size is left
    to the autoscaler. Raises ``ValueError`` naming every bad field of ``args``.
    """

    node_group_name: pulumi.Output[str]
    node_group_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = validate_node_group_args(args)
        if problems:
            raise ValueError("invalid NodeGroupArgs: " + "; ".join(problems))
        super().__init__("mlplatform:compute:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition(opts=pulumi.InvokeOptions(parent=self)).partition
        tags = dict(args.tags)

        role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            description=f"EKS node role of node group {name}",
            tags=tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{key}",
                role=role.name,
                policy_arn=f"arn:{partition}:iam::aws:policy/{policy}",
                opts=child,
            )
            for key, policy in NODE_POLICIES.items()
        ]

        ebs = aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
            volume_size=args.disk_size_gib,
            volume_type="gp3",
            encrypted="true",
            delete_on_termination="true",
            kms_key_id=args.disk_kms_key_arn,
        )
        instance_tags = {**tags, "Name": name}
        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"Nodes of node group {name}",
            update_default_version=True,
            # Hop limit 1 keeps the instance metadata service out of reach of pods: pods get
            # AWS credentials through IRSA or Pod Identity, never through the node's role.
            metadata_options={
                "http_tokens": "required",
                "http_endpoint": "enabled",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name="/dev/xvda", ebs=ebs)
            ],
            monitoring={"enabled": True},
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
            taints=[{"key": t.key, "value": t.value, "effect": t.effect} for t in args.taints],
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=attachments,
                # The cluster autoscaler moves desiredSize; a later `up` must not undo it.
                ignore_changes=["scalingConfig.desiredSize"],
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


def system(
    *,
    cluster_name: pulumi.Input[str],
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    instance_types: Sequence[str] = ("m7i.large",),
    min_size: int = 2,
    max_size: int = 4,
    tags: Mapping[str, str] | None = None,
) -> NodeGroupArgs:
    """On-demand nodes for the cluster's own add-ons (CoreDNS, mesh, Vault, monitoring).

    Labelled ``mlplatform.io/pool=system``; defaults to two ``m7i.large`` so a node loss
    does not take CoreDNS down.
    """
    return NodeGroupArgs(
        cluster_name=cluster_name,
        subnet_ids=subnet_ids,
        instance_types=tuple(instance_types),
        min_size=min_size,
        max_size=max_size,
        capacity_type="ON_DEMAND",
        labels={"mlplatform.io/pool": "system", "mlplatform.io/capacity": "on-demand"},
        tags=dict(tags or {}),
    )


def gpu(
    *,
    cluster_name: pulumi.Input[str],
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    instance_types: Sequence[str],
    min_size: int = 0,
    max_size: int = 2,
    disk_size_gib: int = 100,
    tags: Mapping[str, str] | None = None,
) -> NodeGroupArgs:
    """On-demand NVIDIA nodes (``AL2023_x86_64_NVIDIA``) only GPU workloads land on.

    Tainted ``nvidia.com/gpu=true:NoSchedule`` and labelled
    ``nvidia.com/gpu.present=true``; may scale to zero (``min_size`` 0 by default); a
    larger root volume (100 GiB) because CUDA images are big.
    """
    return NodeGroupArgs(
        cluster_name=cluster_name,
        subnet_ids=subnet_ids,
        instance_types=tuple(instance_types),
        min_size=min_size,
        max_size=max_size,
        capacity_type="ON_DEMAND",
        ami_type="AL2023_x86_64_NVIDIA",
        labels={
            "mlplatform.io/pool": "gpu",
            "mlplatform.io/capacity": "on-demand",
            "nvidia.com/gpu.present": "true",
        },
        taints=(Taint(key="nvidia.com/gpu", value="true", effect="NO_SCHEDULE"),),
        disk_size_gib=disk_size_gib,
        tags=dict(tags or {}),
    )


def spot(
    *,
    cluster_name: pulumi.Input[str],
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    instance_types: Sequence[str] = ("m7i.xlarge", "m6i.xlarge", "m7a.xlarge", "m6a.xlarge"),
    min_size: int = 0,
    max_size: int = 6,
    tags: Mapping[str, str] | None = None,
) -> NodeGroupArgs:
    """Spot nodes for interruption-tolerant inference replicas.

    ``capacityType`` SPOT across several same-size instance types (at least three,
    enforced), labelled ``mlplatform.io/capacity=spot`` so workloads can opt in or out.
    """
    return NodeGroupArgs(
        cluster_name=cluster_name,
        subnet_ids=subnet_ids,
        instance_types=tuple(instance_types),
        min_size=min_size,
        max_size=max_size,
        capacity_type="SPOT",
        labels={"mlplatform.io/pool": "spot", "mlplatform.io/capacity": "spot"},
        tags=dict(tags or {}),
    )
