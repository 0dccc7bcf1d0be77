"""The EKS control plane: KMS envelope encryption, logs, access entries, OIDC, network add-ons.

vpc-cni (with its own IRSA role), kube-proxy and eks-pod-identity-agent are created with
the cluster: nodes need the CNI to become Ready. CoreDNS and the EBS CSI driver run as
Deployments that only become healthy once nodes exist; they are :class:`ClusterAddons`
(``cluster_addons.py``), which the program creates after the system pool.

One file for one component (``Cluster`` and its Args, validator and kubeconfig), which is
why it runs past 300 lines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._aws import (
    ADDON_VERSION,
    CLUSTER_NAME,
    EKS_RELEASES,
    LOG_RETENTION_DAYS,
    ROLE_ARN,
    LogGroupSpec,
    SupportType,
    account_context,
    addon_pin_problems,
    encrypted_log_group,
    key_administration,
    managed_addon,
    service_trust_policy,
    supported_versions,
)
from components._tokens import type_token, with_aliases
from components._validate import Problem, raise_for
from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
BOOTSTRAP_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
EKS_OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"


@dataclass(frozen=True)
class ClusterArgs:
    """Inputs of :class:`Cluster`."""

    vpc_id: pulumi.Input[str]
    """VPC the control plane's network interfaces live in. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets (two or more zones) for the control plane interfaces. Required."""
    kubernetes_version: str
    """Kubernetes minor version, e.g. ``"1.35"``: one of the EKS calendar's versions
    (``components._aws.EKS_RELEASES``) in ``support_type`` support today. Required."""
    addon_versions: Mapping[str, str]
    """Pinned versions (``v1.19.5-eksbuild.1``) of vpc-cni, kube-proxy (same minor as the
    cluster) and eks-pod-identity-agent. Required."""
    cluster_name: str | None = None
    """Physical EKS cluster name: a letter, then up to 37 letters, digits or '-'.
    Default: the component name."""
    support_type: SupportType = "STANDARD"
    """``STANDARD``: at the end of standard support EKS upgrades the cluster.
    ``EXTENDED`` keeps an old version for 12 more months at six times the hourly cluster
    price, so it must be asked for by name. Default ``STANDARD``."""
    deletion_protection: bool = True
    """EKS refuses to delete the cluster until this is turned off. Default True."""
    admin_role_arns: Sequence[str] = ()
    """IAM roles given cluster-admin through access entries. Default none."""
    deploy_role_arn: str | None = None
    """The role that runs ``pulumi up``: given cluster-admin like ``admin_role_arns``
    (the cluster creator gets no implicit admin, and the Kubernetes provider acts as this
    role). Default none."""
    endpoint_public_access: bool = False
    """Expose the API endpoint publicly (then only to ``public_access_cidrs``). Default
    False: private endpoint only."""
    public_access_cidrs: Sequence[str] = ()
    """CIDRs allowed to reach a public endpoint; required and non-empty when
    ``endpoint_public_access`` is set. A world-open range is accepted here and stopped by
    the policy pack (rule ``eks-public-endpoint``), so the finding names the rule. Default
    none."""
    private_access_cidrs: Sequence[str] = ()
    """CIDRs inside the network (VPN, CI runners) allowed to reach the private endpoint
    on 443, beyond the nodes. Default none."""
    log_retention_days: int = 90
    """Retention of ``/aws/eks/<name>/cluster``, a CloudWatch-allowed value. Default 90."""
    kms_deletion_window_days: int = 30
    """Waiting period before the cluster's keys are deleted, 7 to 30 days. Default 30."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable resource. Default none."""


def access_entry_key(role_arn: str) -> str:
    """Return the stable key of an admin role ARN: its role name plus a short ARN hash."""
    match = ROLE_ARN.match(role_arn)
    role = (match.group(1) if match else "role").lower()
    role = re.sub(r"[^a-z0-9-]", "-", role)[:40]
    return f"{role}-{hashlib.sha256(role_arn.encode()).hexdigest()[:6]}"


def _cidr_problems(label: str, cidrs: Sequence[str], *, allow_world: bool = False) -> list[Problem]:
    problems: list[Problem] = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            problems.append(Problem(label, "is not a CIDR (e.g. 203.0.113.0/24)", cidr))
            continue
        if net.prefixlen == 0 and not allow_world:
            problems.append(
                Problem(
                    label, "would allow every address; list the networks that need access", cidr
                )
            )
    return problems


def _version_problems(args: ClusterArgs, today: dt.date) -> list[Problem]:
    version = args.kubernetes_version
    if args.support_type not in ("STANDARD", "EXTENDED"):
        return [Problem("support_type", "must be 'STANDARD' or 'EXTENDED'", args.support_type)]
    if version not in EKS_RELEASES:
        return [
            Problem(
                "kubernetes_version",
                f"is not in the EKS release calendar ({', '.join(EKS_RELEASES)}); a newer "
                "version needs a row in components/_aws.py EKS_RELEASES",
                version,
            )
        ]
    allowed = supported_versions(today, args.support_type)
    if version not in allowed:
        release = EKS_RELEASES[version]
        return [
            Problem(
                "kubernetes_version",
                f"is not in EKS {args.support_type.lower()} support on {today.isoformat()} "
                f"(standard support {release.released} to {release.standard_until}); "
                f"allowed: {', '.join(allowed) or 'none'}",
                version,
            )
        ]
    return []


def _addon_problems(args: ClusterArgs) -> list[Problem]:
    problems = addon_pin_problems(args.addon_versions, BOOTSTRAP_ADDONS)
    proxy = ADDON_VERSION.match(str(args.addon_versions.get("kube-proxy", "")))
    if proxy and f"{proxy.group(1)}.{proxy.group(2)}" != args.kubernetes_version:
        problems.append(
            Problem(
                "addon_versions.kube-proxy",
                f"does not match the cluster's Kubernetes version {args.kubernetes_version} ("
                "kube-proxy follows the cluster's minor version)",
                args.addon_versions["kube-proxy"],
            )
        )
    return problems


def validate_cluster_args(args: ClusterArgs, *, today: dt.date | None = None) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid); ``today`` (default: the
    current UTC date) decides which versions are in support."""
    problems: list[Problem] = []
    if args.cluster_name is not None and not CLUSTER_NAME.match(args.cluster_name):
        problems.append(
            Problem(
                "cluster_name",
                "must be a letter then up to 37 letters, digits or '-'",
                args.cluster_name,
            )
        )
    problems += _version_problems(args, today or dt.datetime.now(dt.UTC).date())
    problems += _addon_problems(args)
    for arn in (*args.admin_role_arns, *([args.deploy_role_arn] if args.deploy_role_arn else [])):
        if not ROLE_ARN.match(arn):
            field_name = "deploy_role_arn" if arn == args.deploy_role_arn else "admin_role_arns"
            problems.append(Problem(field_name, "is not an IAM role ARN", arn))
    if len(set(args.admin_role_arns)) != len(args.admin_role_arns):
        problems.append(Problem("admin_role_arns", "must not repeat a role"))
    if args.endpoint_public_access and not args.public_access_cidrs:
        problems.append(
            Problem("public_access_cidrs", "required (non-empty) when the API endpoint is public")
        )
    if not args.endpoint_public_access and args.public_access_cidrs:
        problems.append(
            Problem("public_access_cidrs", "only allowed when the API endpoint is public")
        )
    problems += _cidr_problems("public_access_cidrs", args.public_access_cidrs, allow_world=True)
    problems += _cidr_problems("private_access_cidrs", args.private_access_cidrs)
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            Problem(
                "log_retention_days",
                f"is not a CloudWatch retention; use one of {sorted(LOG_RETENTION_DAYS)}",
                args.log_retention_days,
            )
        )
    if not 7 <= args.kms_deletion_window_days <= 30:
        problems.append(
            Problem(
                "kms_deletion_window_days", "must be from 7 to 30", args.kms_deletion_window_days
            )
        )
    return problems


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    oidcs = identities[0].oidcs if identities else None
    return (oidcs[0].issuer if oidcs else None) or ""


class Cluster(pulumi.ComponentResource):
    """An EKS control plane with secure defaults and a Kubernetes provider for it.

    Secrets are envelope-encrypted with a rotating customer KMS key; all five control
    plane log types go to a pre-created log group with retention; the API endpoint is
    private unless ``endpoint_public_access`` is asked for; authentication is by access
    entries only (no aws-auth ConfigMap, no implicit creator admin). ``provider`` is a
    ``pulumi_kubernetes.Provider`` for the cluster (it waits for the admin access
    entries); ``kubeconfig`` is a secret output.
    Raises :class:`~components._validate.ValidationError` naming every bad field of ``args``.
    """

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority_data: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    bootstrap_addons: dict[str, aws.eks.Addon]
    """vpc-cni, kube-proxy and eks-pod-identity-agent: node groups list these in
    ``depends_on`` so nodes join a cluster whose network add-ons exist."""
    kubernetes_version: str
    """The cluster's Kubernetes minor version, for the node groups and add-ons."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("ClusterArgs", validate_cluster_args(args))
        super().__init__(
            type_token("Cluster"), name, None, with_aliases(opts, "mlplatform:cluster:Cluster")
        )
        child = pulumi.ResourceOptions(parent=self)
        context = account_context(self)
        physical = args.cluster_name or name
        tags = dict(args.tags)

        role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=service_trust_policy("eks.amazonaws.com", tag_session=True),
            description=f"EKS control plane role of {physical}",
            tags=tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=role.name,
            policy_arn=context.managed_policy("AmazonEKSClusterPolicy"),
            opts=child,
        )
        key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {physical}",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        key_administration(context),
                        {
                            "Sid": "ClusterEnvelopeEncryption",
                            "Effect": "Allow",
                            "Principal": {"AWS": role.arn},
                            "Action": [
                                "kms:Encrypt",
                                "kms:Decrypt",
                                "kms:DescribeKey",
                                "kms:ListGrants",
                                "kms:CreateGrant",
                            ],
                            "Resource": "*",
                        },
                    ],
                }
            ),
            tags=tags,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets-key",
            name=f"alias/{physical}-eks-secrets",
            target_key_id=key.key_id,
            opts=child,
        )
        log_group = encrypted_log_group(
            f"{name}-control-plane-logs",
            # EKS writes to exactly this name; creating it first sets retention and key.
            LogGroupSpec(
                group_name=f"/aws/eks/{physical}/cluster",
                retention_days=args.log_retention_days,
                description=f"the control plane logs of EKS cluster {physical}",
                deletion_window_days=args.kms_deletion_window_days,
                tags=tags,
            ),
            context=context,
            parent=self,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-cluster-sg",
            vpc_id=args.vpc_id,
            description=f"Extra rules for the EKS control plane of {physical}",
            ingress=[
                {
                    "description": "Kubernetes API from allowed in-network clients",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": list(args.private_access_cidrs),
                }
            ]
            if args.private_access_cidrs
            else [],
            egress=[],
            tags={**tags, "Name": f"{name}-cluster-sg"},
            opts=child,
        )

        vpc_config = aws.eks.ClusterVpcConfigArgs(
            subnet_ids=args.subnet_ids,
            security_group_ids=[security_group.id],
            endpoint_private_access=True,
            endpoint_public_access=args.endpoint_public_access,
            # Only sent when public: AWS would otherwise record 0.0.0.0/0 for a closed door.
            public_access_cidrs=list(args.public_access_cidrs)
            if args.endpoint_public_access
            else None,
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=physical,
            version=args.kubernetes_version,
            role_arn=role.arn,
            vpc_config=vpc_config,
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": False,
            },
            # The network add-ons come from managed add-ons below, pinned, not from EKS.
            bootstrap_self_managed_addons=False,
            upgrade_policy={"support_type": args.support_type},
            deletion_protection=args.deletion_protection,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, role_policy]),
        )

        admin_access: list[pulumi.Resource] = []
        admins = dict.fromkeys([*args.admin_role_arns, *filter(None, [args.deploy_role_arn])])
        for arn in admins:
            entry_key = access_entry_key(arn)
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{entry_key}",
                cluster_name=cluster.name,
                principal_arn=arn,
                type="STANDARD",
                tags=tags,
                opts=child,
            )
            association = aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{entry_key}",
                cluster_name=cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=f"arn:{context.partition}:eks::aws:cluster-access-policy/"
                "AmazonEKSClusterAdminPolicy",
                access_scope={"type": "cluster"},
                opts=child,
            )
            admin_access += [entry, association]

        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            thumbprint_lists=[EKS_OIDC_THUMBPRINT],
            tags=tags,
            opts=child,
        )
        # The CNI's permissions on its own role (kube-system:aws-node), not on every node.
        cni_role = ServiceAccountRole(
            f"{name}-vpc-cni",
            ServiceAccountRoleArgs(
                oidc_provider_arn=oidc.arn,
                oidc_issuer=issuer,
                namespace="kube-system",
                service_account="aws-node",
                policy_arns={"cni": context.managed_policy("AmazonEKS_CNI_Policy")},
                tags=tags,
            ),
            opts=child,
        )
        self.bootstrap_addons = {
            addon: managed_addon(
                f"{name}-{addon}",
                cluster_name=cluster.name,
                addon=addon,
                version=args.addon_versions[addon],
                role_arn=cni_role.role_arn if addon == "vpc-cni" else None,
                # The VPC CNI enforces NetworkPolicies only with its policy agent on: the
                # application namespaces' default-deny would otherwise be a no-op.
                configuration=VPC_CNI_CONFIGURATION if addon == "vpc-cni" else None,
                tags=tags,
                opts=child,
            )
            for addon in BOOTSTRAP_ADDONS
        }

        ca_data = cluster.certificate_authority.apply(lambda ca: ca.data or "")
        kubeconfig = pulumi.Output.json_dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": cluster.name,
                        "cluster": {
                            "server": cluster.endpoint,
                            "certificate-authority-data": ca_data,
                        },
                    }
                ],
                "contexts": [
                    {"name": cluster.name, "context": {"cluster": cluster.name, "user": "aws"}}
                ],
                "current-context": cluster.name,
                "users": [
                    {
                        "name": "aws",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": "aws",
                                "args": [
                                    "eks",
                                    "get-token",
                                    "--cluster-name",
                                    cluster.name,
                                    "--region",
                                    context.region,
                                ],
                                "interactiveMode": "Never",
                            }
                        },
                    }
                ],
            }
        )

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.endpoint = cluster.endpoint
        self.certificate_authority_data = ca_data
        self.cluster_security_group_id = cluster.vpc_config.apply(
            lambda v: v.cluster_security_group_id or ""
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer
        self.kms_key_arn = key.arn
        self.kubernetes_version = args.kubernetes_version
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        # Kubernetes calls through this provider authenticate as an admin role: they can
        # only succeed once that role's access entry and policy exist.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=admin_access),
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_arn": self.cluster_arn,
                "endpoint": self.endpoint,
                "certificate_authority_data": self.certificate_authority_data,
                "cluster_security_group_id": self.cluster_security_group_id,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "kms_key_arn": self.kms_key_arn,
                "kubeconfig": self.kubeconfig,
            }
        )
