"""The EKS add-ons that need running nodes: CoreDNS and the EBS CSI driver, with the
encrypted gp3 StorageClass every volume of the platform uses.

They run as Deployments, and EKS waits for a managed add-on to become healthy, so they
are created after the system pool, on the system pool: the program passes that pool in
``opts.depends_on`` (and no other: a spot or GPU pool must never hold DNS, and a GPU pool
at zero nodes must not delay the cluster). The EBS CSI driver gets its own IRSA role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._aws import account_context, addon_pin_problems, managed_addon
from components._k8s import system_placement
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs

NODE_ADDONS = ("coredns", "aws-ebs-csi-driver")
STORAGE_CLASS = "gp3-encrypted"
_POOL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterAddonsArgs:
    """Inputs of :class:`ClusterAddons`."""

    cluster_name: pulumi.Input[str]
    """The EKS cluster. Required."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, for the EBS CSI driver's role. Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    addon_versions: Mapping[str, str]
    """Pinned versions (``v1.12.1-eksbuild.2``) of coredns and aws-ebs-csi-driver. Required."""
    system_pool: str = "system"
    """Pool label (``mlplatform.io/pool``) of the nodes CoreDNS and the EBS CSI controller
    are pinned to. Default ``system``."""
    coredns_replicas: int = 2
    """CoreDNS replicas, at least 2 so DNS survives a node loss. Default 2."""
    former_parent_urn: str | None = None
    """URN of the component these add-ons and the EBS CSI role were children of before
    ``ClusterAddons`` existed (the Cluster under its former type token): given, a stack
    created then moves them here instead of creating them again. Default none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the add-ons and the role. Default none."""


def validate_cluster_addons_args(args: ClusterAddonsArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems = addon_pin_problems(args.addon_versions, NODE_ADDONS)
    if not _POOL.match(args.system_pool):
        problems.append(
            Problem("system_pool", "must be a pool name (a DNS label)", args.system_pool)
        )
    if args.coredns_replicas < 2:
        problems.append(Problem("coredns_replicas", "must be at least 2", args.coredns_replicas))
    return problems


class ClusterAddons(pulumi.ComponentResource):
    """CoreDNS and the EBS CSI driver, pinned to the system pool.

    CoreDNS's ``nodeSelector`` names the system pool and it tolerates
    ``CriticalAddonsOnly``; the EBS CSI controller likewise, while its node DaemonSet
    tolerates every taint so GPU and spot nodes get volumes too. The add-ons wait for
    what ``opts.depends_on`` names (the system pool). The ``gp3-encrypted`` StorageClass
    (the cluster's default) goes through ``opts.providers``' Kubernetes provider. Raises
    :class:`~components._validate.ValidationError` naming every bad field of ``args``.
    """

    addons: dict[str, aws.eks.Addon]
    ebs_csi_role_arn: pulumi.Output[str]
    storage_class: pulumi.Output[str]
    """The default StorageClass: gp3, encrypted, WaitForFirstConsumer."""

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("ClusterAddonsArgs", validate_cluster_addons_args(args))
        super().__init__(type_token("ClusterAddons"), name, None, opts)
        # These add-ons used to be children of the Cluster itself: their former URNs are
        # aliases, so an existing stack moves them instead of creating them again (EKS
        # refuses a second add-on of a name).
        former = [pulumi.Alias(parent=args.former_parent_urn)] if args.former_parent_urn else None
        # A component's depends_on does not reach its children: the add-ons themselves
        # must wait for the nodes, or EKS waits for a healthy CoreDNS that cannot start.
        after = depends_on_of(opts)
        on_nodes = pulumi.ResourceOptions(parent=self, aliases=former, depends_on=after)
        context = account_context(self)
        tags = dict(args.tags)
        placement = system_placement(args.system_pool)

        ebs_role = ServiceAccountRole(
            f"{name}-ebs-csi",
            ServiceAccountRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace="kube-system",
                service_account="ebs-csi-controller-sa",
                policy_arns={
                    "ebs-csi": context.managed_policy("service-role/AmazonEBSCSIDriverPolicy")
                },
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                aliases=[
                    pulumi.Alias(
                        type_="mlplatform:irsa:ServiceAccountRole", parent=args.former_parent_urn
                    )
                ]
                if args.former_parent_urn
                else None,
            ),
        )
        configuration = {
            "coredns": {**placement, "replicaCount": args.coredns_replicas},
            "aws-ebs-csi-driver": {"controller": placement, "node": {"tolerateAllTaints": True}},
        }
        self.addons = {
            addon: managed_addon(
                f"{name}-{addon}",
                cluster_name=args.cluster_name,
                addon=addon,
                version=args.addon_versions[addon],
                configuration=configuration[addon],
                role_arn=ebs_role.role_arn if addon == "aws-ebs-csi-driver" else None,
                tags=tags,
                opts=on_nodes,
            )
            for addon in NODE_ADDONS
        }
        # Volumes are bound in the zone their pod is scheduled to, encrypted at rest.
        storage = k8s.storage.v1.StorageClass(
            f"{name}-{STORAGE_CLASS}",
            metadata={
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            reclaim_policy="Delete",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.addons["aws-ebs-csi-driver"]]
            ),
        )
        self.ebs_csi_role_arn = ebs_role.role_arn
        self.storage_class = storage.metadata.apply(lambda m: m.name or STORAGE_CLASS)
        self.register_outputs(
            {"ebs_csi_role_arn": self.ebs_csi_role_arn, "storage_class": self.storage_class}
        )
