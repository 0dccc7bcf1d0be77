"""The EKS control plane: KMS envelope encryption, logs, access entries, OIDC, add-ons.

Add-on ordering: vpc-cni, kube-proxy and eks-pod-identity-agent are created with the
cluster (nodes need the CNI to become Ready). CoreDNS and the EBS CSI driver run as
Deployments and only become healthy once nodes exist, so they are created by
:meth:`Cluster.add_node_addons`, which the program calls after its node groups with
``depends_on=[those node groups]``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from components.network import LOG_RETENTION_DAYS

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
BOOTSTRAP_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
NODE_ADDONS = ("coredns", "aws-ebs-csi-driver")
REQUIRED_ADDONS = BOOTSTRAP_ADDONS + NODE_ADDONS
EKS_OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
_VERSION = re.compile(r"^1\.\d{2}$")
_ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class ClusterArgs:
    """Inputs of :class:`Cluster`."""

    vpc_id: pulumi.Input[str]
    """VPC the control plane's network interfaces live in. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets (two or more zones) for the control plane interfaces. Required."""
    kubernetes_version: str
    """Kubernetes minor version, e.g. ``"1.33"``. Required."""
    addon_versions: Mapping[str, str]
    """Pinned EKS add-on versions (``v1.19.5-eksbuild.1``) for all of vpc-cni, kube-proxy,
    eks-pod-identity-agent, coredns and aws-ebs-csi-driver. Required."""
    cluster_name: str | None = None
    """Physical EKS cluster name. Default: the component name."""
    admin_role_arns: Sequence[str] = ()
    """IAM roles given cluster-admin through access entries (include the role that runs
    ``pulumi up``: the cluster creator gets no implicit admin). Default none."""
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
    """Waiting period before the secrets key is deleted, 7 to 30 days. Default 30."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable resource. Default none."""


def access_entry_key(role_arn: str) -> str:
    """Return the stable key of an admin role ARN: its role name plus a short ARN hash."""
    match = _ROLE_ARN.match(role_arn)
    role = (match.group(1) if match else "role").lower()
    role = re.sub(r"[^a-z0-9-]", "-", role)[:40]
    return f"{role}-{hashlib.sha256(role_arn.encode()).hexdigest()[:6]}"


def _cidr_problems(label: str, cidrs: Sequence[str], *, allow_world: bool = False) -> list[str]:
    problems: list[str] = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            problems.append(f"{label}: {cidr!r} is not a CIDR (e.g. 203.0.113.0/24)")
            continue
        if net.prefixlen == 0 and not allow_world:
            problems.append(f"{label}: {cidr!r} opens the endpoint to the whole internet")
    return problems


def validate_cluster_args(args: ClusterArgs) -> list[str]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[str] = []
    if args.cluster_name is not None and not _CLUSTER_NAME.match(args.cluster_name):
        problems.append(f"cluster_name: {args.cluster_name!r} must match [0-9A-Za-z][A-Za-z0-9_-]")
    if not isinstance(args.kubernetes_version, str) or not _VERSION.match(args.kubernetes_version):
        problems.append(f"kubernetes_version: {args.kubernetes_version!r} must look like '1.33'")
    missing = [a for a in REQUIRED_ADDONS if a not in args.addon_versions]
    if missing:
        problems.append(f"addon_versions: missing {missing}; all of {list(REQUIRED_ADDONS)} needed")
    unknown = sorted(set(args.addon_versions) - set(REQUIRED_ADDONS))
    if unknown:
        problems.append(
            f"addon_versions: unknown add-ons {unknown}; allowed {list(REQUIRED_ADDONS)}"
        )
    for addon, version in sorted(args.addon_versions.items()):
        if not isinstance(version, str) or not _ADDON_VERSION.match(version):
            problems.append(
                f"addon_versions: {addon} version {version!r} must be pinned like "
                "'v1.19.5-eksbuild.1'"
            )
    for arn in args.admin_role_arns:
        if not _ROLE_ARN.match(arn):
            problems.append(f"admin_role_arns: {arn!r} is not an IAM role ARN")
    if len(set(args.admin_role_arns)) != len(args.admin_role_arns):
        problems.append("admin_role_arns: must not repeat a role")
    if args.endpoint_public_access and not args.public_access_cidrs:
        problems.append(
            "public_access_cidrs: required (non-empty) when endpoint_public_access is True"
        )
    if not args.endpoint_public_access and args.public_access_cidrs:
        problems.append("public_access_cidrs: only allowed with endpoint_public_access=True")
    problems += _cidr_problems("public_access_cidrs", args.public_access_cidrs, allow_world=True)
    problems += _cidr_problems("private_access_cidrs", args.private_access_cidrs)
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            f"log_retention_days: {args.log_retention_days!r} must be one of "
            f"{sorted(LOG_RETENTION_DAYS)}"
        )
    if not 7 <= args.kms_deletion_window_days <= 30:
        problems.append(
            f"kms_deletion_window_days: {args.kms_deletion_window_days} must be from 7 to 30"
        )
    return problems


def _service_trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    )


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
    Raises ``ValueError`` naming every bad field of ``args``.
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

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = validate_cluster_args(args)
        if problems:
            raise ValueError("invalid ClusterArgs: " + "; ".join(problems))
        super().__init__("mlplatform:cluster:Cluster", name, None, opts)
        self._name = name
        self._args = args
        self._node_addons: dict[str, aws.eks.Addon] | None = None
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition(opts=invoke).partition
        account = aws.get_caller_identity(opts=invoke).account_id
        region = aws.get_region(opts=invoke).region
        physical = args.cluster_name or name
        tags = dict(args.tags)
        self._partition = partition

        role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=_service_trust("eks.amazonaws.com"),
            description=f"EKS control plane role of {physical}",
            tags=tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonEKSClusterPolicy",
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
                        {
                            # Without this the key becomes unmanageable by the account.
                            "Sid": "AccountAdministration",
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                            "Action": "kms:*",
                            "Resource": "*",
                        },
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
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            # EKS writes to exactly this name; creating it first lets us set retention.
            name=f"/aws/eks/{physical}/cluster",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child,
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
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, role_policy]),
        )

        admin_access: list[pulumi.Resource] = []
        for arn in args.admin_role_arns:
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
                policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
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
        self._cluster = cluster
        self._oidc = oidc
        self._issuer = issuer
        self._tags = tags
        self.bootstrap_addons = {addon: self._addon(addon) for addon in BOOTSTRAP_ADDONS}

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
                                    region,
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

    def _addon(
        self,
        addon: str,
        *,
        role_arn: pulumi.Input[str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{self._name}-{addon}",
            cluster_name=self._cluster.name,
            addon_name=addon,
            addon_version=self._args.addon_versions[addon],
            service_account_role_arn=role_arn,
            # Stack config owns these add-ons: drift is overwritten, not merged.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def add_node_addons(self, depends_on: Sequence[pulumi.Resource]) -> dict[str, aws.eks.Addon]:
        """Create the add-ons that need running nodes: coredns and aws-ebs-csi-driver.

        Call once, after the node groups, passing them as ``depends_on`` (EKS waits for
        these add-ons to become healthy, which they cannot without nodes). The EBS CSI
        driver gets its own IRSA role (``kube-system:ebs-csi-controller-sa``, only
        AmazonEBSCSIDriverPolicy). Returns the add-ons by name; raises ``RuntimeError``
        when called twice.
        """
        if self._node_addons is not None:
            raise RuntimeError(f"add_node_addons was already called for cluster {self._name}")
        ebs_role = ServiceAccountRole(
            f"{self._name}-ebs-csi",
            ServiceAccountRoleArgs(
                oidc_provider_arn=self._oidc.arn,
                oidc_issuer=self._issuer,
                namespace="kube-system",
                service_account="ebs-csi-controller-sa",
                policy_arns={
                    "ebs-csi": f"arn:{self._partition}:iam::aws:policy/service-role/"
                    "AmazonEBSCSIDriverPolicy"
                },
                tags=self._tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._node_addons = {
            "coredns": self._addon("coredns", depends_on=depends_on),
            "aws-ebs-csi-driver": self._addon(
                "aws-ebs-csi-driver", role_arn=ebs_role.role_arn, depends_on=depends_on
            ),
        }
        return self._node_addons
