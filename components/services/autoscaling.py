"""Karpenter: nodes that appear when pods need them, and spot reclaims drained gracefully.

One component installs the controller and the capacity it manages:

- the controller's IRSA role (``kube-system:karpenter``) with a policy scoped to this
  cluster's tags (``karpenter_iam.py``), and the node role with its ``EC2_LINUX``
  access entry;
- the SQS interruption queue (SSE, only EventBridge and SQS of this account may send)
  fed by the EventBridge rules Karpenter reads: spot interruption warnings,
  rebalance recommendations, instance state changes, AWS Health events and
  capacity-reservation interruptions;
- the ``karpenter.sh/discovery`` tag on the cluster security group (the private subnets
  carry it from the network);
- the CRD chart and the controller chart, pinned, the controller on the system pool;
- one ``EC2NodeClass`` and one ``NodePool`` per Karpenter pool, created after the
  controller release: on ``pulumi destroy`` they are deleted first, while the controller
  still runs and terminates the nodes it launched, before its release, roles or queue go.

One component, one file (Args, validator, component): past 300 lines for that reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._aws import account_context, service_role, spot_diversity_problems
from components._k8s import (
    ChartPin,
    NodeTaint,
    helm_release,
    node_labels,
    node_taints,
    system_placement,
)
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.foundation.irsa import ROLE_ARN_ANNOTATION, inline_policy_role
from components.foundation.node_groups import is_bottlerocket
from components.foundation.node_presets import PRESETS
from components.services.karpenter_iam import controller_policy

CRD_CHART = ChartPin("oci://public.ecr.aws/karpenter", "karpenter-crd", "1.14.1")
CHART = ChartPin("oci://public.ecr.aws/karpenter", "karpenter", "1.14.1")
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
DISCOVERY_TAG = "karpenter.sh/discovery"
# The events Karpenter acts on (the rules of its reference CloudFormation template at
# 1.14): a spot reclaim gives a two-minute warning; rebalance recommendations, state
# changes, scheduled health events and capacity-reservation reclaims also drain.
INTERRUPTION_EVENTS: Mapping[str, tuple[str, str]] = {
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "health": ("aws.health", "AWS Health Event"),
    "reservation-interruption": (
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
    ),
}
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
_AMI_ALIAS = re.compile(r"^(al2023|bottlerocket)@v[0-9][0-9.]*$")
_DURATION = re.compile(r"^([0-9]+(s|m|h))+$|^Never$")
CapacityTypes = tuple[Literal["spot", "on-demand"], ...]
ConsolidationPolicy = Literal["WhenEmpty", "WhenEmptyOrUnderutilized"]


@dataclass(frozen=True)
class KarpenterPool:
    """One Karpenter-provisioned pool: its ``NodePool`` and ``EC2NodeClass``."""

    name: str
    """Pool name (``mlplatform.io/pool`` label, resource names). Required."""
    instance_types: Sequence[str]
    """Instance types the pool may launch. Required."""
    capacity_types: CapacityTypes
    """``karpenter.sh/capacity-type`` values (``spot`` first means spot is preferred)."""
    labels: Mapping[str, str]
    """Node labels (the node contract's). Required."""
    taints: Sequence[NodeTaint] = ()
    """Node taints (the GPU taint on GPU pools). Default none."""
    ami_alias: str = "al2023@v20260209"
    """EC2NodeClass AMI alias pinned to a release (``al2023@vYYYYMMDD``,
    ``bottlerocket@v1.x.y``); never ``@latest``. Default an AL2023 release."""
    disk_size_gib: int = 50
    """Encrypted gp3 volume (root on AL2023, data on Bottlerocket). Default 50."""
    cpu_limit: int = 64
    """Most vCPUs the pool may run in total. Default 64."""
    memory_limit_gib: int = 256
    """Most memory the pool may run in total, GiB. Default 256."""
    gpu_limit: int = 0
    """Most GPUs the pool may run in total (0: no GPU limit set). Default 0."""
    consolidation: ConsolidationPolicy = "WhenEmptyOrUnderutilized"
    """When Karpenter may remove nodes. Default ``WhenEmptyOrUnderutilized``."""
    consolidate_after: str = "1m"
    """How long a node must be empty or underused first. Default ``1m``."""
    expire_after: str = "720h"
    """Nodes are replaced after this age (patched AMIs). Default 30 days."""


@dataclass(frozen=True)
class KarpenterArgs:
    """Inputs of :class:`Karpenter`."""

    cluster_name: str
    """The EKS cluster's physical name. Required."""
    cluster_endpoint: pulumi.Input[str]
    """The cluster's API endpoint. Required."""
    cluster_security_group_id: pulumi.Input[str]
    """The EKS-created cluster security group, which nodes join. Required."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, for the controller's IRSA role. Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    pools: Sequence[KarpenterPool]
    """The pools Karpenter provisions. Required, at least one."""
    system_pool: str = "system"
    """Pool label of the managed nodes the controller runs on. Default ``system``."""
    replicas: int = 2
    """Controller replicas (a PodDisruptionBudget keeps one up). Default 2."""
    chart: ChartPin = CHART
    """The controller chart. Default ``CHART``."""
    crd_chart: ChartPin = CRD_CHART
    """The chart that installs and upgrades Karpenter's CRDs. Default ``CRD_CHART``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for AWS resources and launched nodes. Default none."""


def validate_karpenter_args(args: KarpenterArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if not args.pools:
        problems.append(Problem("pools", "must list at least one pool"))
    names = [p.name for p in args.pools]
    if len(set(names)) != len(names):
        problems.append(Problem("pools", "must not repeat a pool name"))
    if not 1 <= args.replicas <= 5:
        problems.append(Problem("replicas", "must be from 1 to 5", args.replicas))
    for pool in args.pools:
        where = f"pools.{pool.name}"
        if not _AMI_ALIAS.match(pool.ami_alias):
            problems.append(
                Problem(
                    f"{where}.ami_alias",
                    "must pin a release (al2023@vYYYYMMDD or bottlerocket@v1.x.y), not @latest",
                    pool.ami_alias,
                )
            )
        if not pool.instance_types:
            problems.append(Problem(f"{where}.instance_types", "must list at least one type"))
        if not pool.capacity_types or not set(pool.capacity_types) <= {"spot", "on-demand"}:
            problems.append(
                Problem(
                    f"{where}.capacity_types", "must be spot and/or on-demand", pool.capacity_types
                )
            )
        elif "spot" in pool.capacity_types:
            problems += spot_diversity_problems(pool.instance_types, f"{where}.instance_types")
        for label, value in (
            ("consolidate_after", pool.consolidate_after),
            ("expire_after", pool.expire_after),
        ):
            if not _DURATION.match(value):
                problems.append(
                    Problem(f"{where}.{label}", "must be a duration like 1m or 720h", value)
                )
        for label, limit in (
            ("cpu_limit", pool.cpu_limit),
            ("memory_limit_gib", pool.memory_limit_gib),
        ):
            if limit < 1:
                problems.append(Problem(f"{where}.{label}", "must be at least 1", limit))
        if pool.gpu_limit < 0:
            problems.append(Problem(f"{where}.gpu_limit", "must be 0 or more", pool.gpu_limit))
        if not 20 <= pool.disk_size_gib <= 16384:
            problems.append(
                Problem(f"{where}.disk_size_gib", "must be from 20 to 16384", pool.disk_size_gib)
            )
    return problems


def node_pool_spec(pool: KarpenterPool) -> dict[str, object]:
    """The ``spec`` of ``pool``'s NodePool (``karpenter.sh/v1``)."""
    limits: dict[str, str] = {"cpu": str(pool.cpu_limit), "memory": f"{pool.memory_limit_gib}Gi"}
    if pool.gpu_limit:
        limits["nvidia.com/gpu"] = str(pool.gpu_limit)
    return {
        "template": {
            "metadata": {"labels": dict(pool.labels)},
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": pool.name,
                },
                "requirements": [
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": list(pool.instance_types),
                    },
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": list(pool.capacity_types),
                    },
                ],
                "taints": [
                    {"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints
                ],
                "expireAfter": pool.expire_after,
            },
        },
        "disruption": {
            "consolidationPolicy": pool.consolidation,
            "consolidateAfter": pool.consolidate_after,
        },
        "limits": limits,
    }


def node_class_spec(
    pool: KarpenterPool, *, cluster_name: str, node_role: pulumi.Input[str], tags: Mapping[str, str]
) -> dict[str, object]:
    """The ``spec`` of ``pool``'s EC2NodeClass (``karpenter.k8s.aws/v1``): IMDSv2 with a
    hop limit of 1, an encrypted gp3 volume, subnets and security groups by discovery tag."""
    discovery = [{"tags": {DISCOVERY_TAG: cluster_name}}]
    device = "/dev/xvdb" if pool.ami_alias.startswith("bottlerocket@") else "/dev/xvda"
    return {
        "amiSelectorTerms": [{"alias": pool.ami_alias}],
        "role": node_role,
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": device,
                "ebs": {
                    "volumeSize": f"{pool.disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "detailedMonitoring": False,
        "tags": dict(tags),
    }


class Karpenter(pulumi.ComponentResource):
    """Karpenter with its interruption queue, and the node pools it provisions.

    ``opts.providers`` must carry the cluster's Kubernetes provider. ``release`` is the
    controller release (custom resources of other components that need nodes may depend
    on it). Raises :class:`~components._validate.ValidationError` naming every bad field.
    """

    queue_name: pulumi.Output[str]
    controller_role_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("KarpenterArgs", validate_karpenter_args(args))
        super().__init__(type_token("Karpenter"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        context = account_context(self)
        tags = dict(args.tags)
        cluster = args.cluster_name

        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=cluster,
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=child,
        )
        source = {"aws:SourceAccount": context.account_id}
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "EventBridgeAndSqsOfThisAccount",
                            "Effect": "Allow",
                            "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                            "Action": "sqs:SendMessage",
                            "Resource": queue.arn,
                            "Condition": {"StringEquals": source},
                        },
                        {
                            "Sid": "DenyHTTP",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:*",
                            "Resource": queue.arn,
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                }
            ),
            opts=child,
        )
        feeds: list[pulumi.Resource] = [queue_policy]
        for key, (event_source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{key}",
                description=f"{detail_type} events for Karpenter of {cluster}",
                event_pattern=json.dumps({"source": [event_source], "detail-type": [detail_type]}),
                tags=tags,
                opts=child,
            )
            feeds.append(
                aws.cloudwatch.EventTarget(
                    f"{name}-{key}",
                    rule=rule.name,
                    arn=queue.arn,
                    target_id="karpenter",
                    opts=child,
                )
            )

        node_role, node_policies = service_role(
            f"{name}-node",
            service="ec2.amazonaws.com",
            policies={f"{name}-node-{policy}": policy for policy in NODE_POLICIES},
            description=f"Nodes Karpenter launches for {cluster}",
            context=context,
            tags=tags,
            parent=self,
        )
        # The cluster is named by a plain string, so nothing orders the entry after it:
        # it waits for what the program names (the cluster's add-ons), like the release.
        node_access = aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=cluster,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on_of(opts)),
        )
        controller = inline_policy_role(
            f"{name}-controller",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            service_account=(NAMESPACE, SERVICE_ACCOUNT),
            policy=(
                "karpenter",
                controller_policy(
                    context, cluster_name=cluster, queue_arn=queue.arn, node_role_arn=node_role.arn
                ),
            ),
            tags=tags,
            parent=self,
        )
        discovery = aws.ec2.Tag(
            f"{name}-discovery",
            resource_id=args.cluster_security_group_id,
            key=DISCOVERY_TAG,
            value=cluster,
            opts=child,
        )

        crds = helm_release(
            f"{name}-crd",
            pin=args.crd_chart,
            namespace=NAMESPACE,
            values={},
            parent=self,
            release_name="karpenter-crd",
        )
        placement = system_placement(args.system_pool)
        self.release = helm_release(
            name,
            pin=args.chart,
            namespace=NAMESPACE,
            release_name="karpenter",
            skip_crds=True,
            values={
                "settings": {
                    "clusterName": cluster,
                    "clusterEndpoint": args.cluster_endpoint,
                    "interruptionQueue": queue.name,
                },
                "serviceAccount": {
                    "name": SERVICE_ACCOUNT,
                    "annotations": {ROLE_ARN_ANNOTATION: controller.role_arn},
                },
                "replicas": args.replicas,
                "podDisruptionBudget": {"name": "karpenter", "maxUnavailable": 1},
                "controller": {
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    }
                },
                **placement,
            },
            parent=self,
            # The controller runs on the system pool: wait for what the program names.
            depends_on=[crds, *feeds, discovery, *depends_on_of(opts)],
        )

        # After the release: created once the controller and its webhooks run, deleted
        # while it still runs, so it can drain and terminate its nodes first.
        after_controller = pulumi.ResourceOptions(
            parent=self, depends_on=[self.release, node_access, *node_policies]
        )
        for pool in args.pools:
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-class",
                api_version="karpenter.k8s.aws/v1",
                kind="EC2NodeClass",
                metadata={"name": pool.name},
                spec=node_class_spec(
                    pool, cluster_name=cluster, node_role=node_role.name, tags=tags
                ),
                opts=after_controller,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": pool.name},
                spec=node_pool_spec(pool),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, node_class]),
            )

        self.queue_name = queue.name
        self.controller_role_arn = controller.role_arn
        self.node_role_arn = node_role.arn
        self.register_outputs(
            {
                "queue_name": self.queue_name,
                "controller_role_arn": self.controller_role_arn,
                "node_role_arn": self.node_role_arn,
            }
        )


def karpenter_pool(
    preset: str,
    *,
    pool: str,
    ami_alias: str,
    instance_types: Sequence[str] | None = None,
    capacity: Literal["ON_DEMAND", "SPOT", "SPOT_OR_ON_DEMAND"] | None = None,
    disk_size_gib: int | None = None,
    ami_type: str | None = None,
    cpu_limit: int | None = None,
    memory_limit_gib: int | None = None,
    gpu_limit: int | None = None,
) -> KarpenterPool:
    """Return the Karpenter pool ``pool`` built from node-group ``preset`` (the same
    labels, taints and defaults as its managed node group would have).

    ``ami_alias`` names the AL2023 release (``al2023@v20260209``); a Bottlerocket
    ``ami_type`` uses the same version scheme with ``bottlerocket@``. Raises ``KeyError``
    for an unknown preset.
    """
    base = PRESETS[preset]
    chosen = capacity or base.capacity_type
    capacities: CapacityTypes = {
        "ON_DEMAND": ("on-demand",),
        "SPOT": ("spot",),
        "SPOT_OR_ON_DEMAND": ("spot", "on-demand"),
    }[chosen]
    ami = ami_type or base.ami_type
    bottlerocket = is_bottlerocket(ami)
    if bottlerocket:
        ami_alias = "bottlerocket@" + ami_alias.split("@", 1)[-1]
    single = None if len(capacities) != 1 else next(iter(capacities))
    return KarpenterPool(
        name=pool,
        instance_types=tuple(instance_types if instance_types is not None else base.instance_types),
        capacity_types=capacities,
        labels=node_labels(
            pool, single, gpu=base.gpu, os="bottlerocket" if bottlerocket else "al2023"
        ),
        taints=tuple(node_taints(gpu=base.gpu)),
        ami_alias=ami_alias,
        disk_size_gib=base.disk_size_gib if disk_size_gib is None else disk_size_gib,
        cpu_limit=base.cpu_limit if cpu_limit is None else cpu_limit,
        memory_limit_gib=base.memory_limit_gib if memory_limit_gib is None else memory_limit_gib,
        gpu_limit=base.gpu_limit if gpu_limit is None else gpu_limit,
        consolidation=base.consolidation,
        consolidate_after=base.consolidate_after,
    )
