"""An IAM role that exactly one Kubernetes service account can assume (IRSA)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components._aws import web_identity_trust_policy
from components._tokens import type_token, with_aliases
from components._validate import Problem, raise_for

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KEY = re.compile(r"^[a-z0-9][-a-z0-9]{0,39}$")


@dataclass(frozen=True)
class ServiceAccountRoleArgs:
    """Inputs of :class:`ServiceAccountRole`."""

    oidc_provider_arn: pulumi.Input[str]
    """ARN of the cluster's IAM OIDC provider (the federated principal). Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL (``https://oidc.eks...``; the scheme is optional).
    Required."""
    namespace: str
    """Kubernetes namespace of the service account (a DNS label). Required."""
    service_account: str
    """Name of the service account (a DNS subdomain). Required."""
    policy_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Managed policies to attach, keyed by a stable short key (``[a-z0-9-]``) that names
    the attachment. Default none."""
    inline_policies: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Inline policy JSON documents keyed by policy name (``[a-z0-9-]``). Default none."""
    max_session_duration: int = 3600
    """Longest session in seconds (3600 to 43200). Default 3600."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the role. Default none."""


def validate_service_account_role_args(args: ServiceAccountRoleArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if not isinstance(args.namespace, str) or not _DNS_LABEL.match(args.namespace):
        problems.append(
            Problem("namespace", "must be a DNS label ([a-z0-9-], <=63)", args.namespace)
        )
    if not isinstance(args.service_account, str) or not _DNS_SUBDOMAIN.match(args.service_account):
        problems.append(
            Problem("service_account", "must be a DNS subdomain ([a-z0-9-.])", args.service_account)
        )
    for label, keys in (
        ("policy_arns", args.policy_arns),
        ("inline_policies", args.inline_policies),
    ):
        for key in keys:
            if not _KEY.match(key):
                problems.append(Problem(label, "must match [a-z0-9][-a-z0-9]{0,39} as a key", key))
    if not 3600 <= args.max_session_duration <= 43200:
        problems.append(
            Problem("max_session_duration", "must be from 3600 to 43200", args.max_session_duration)
        )
    return problems


class ServiceAccountRole(pulumi.ComponentResource):
    """An IAM role assumable only by ``system:serviceaccount:<namespace>:<name>``.

    The trust policy uses ``StringEquals`` on both ``:sub`` and ``:aud``, so neither a
    wildcard service account nor a token minted for another audience can assume it.
    ``role_arn`` resolves once the role's policies are attached (consumers of it wait).
    Raises :class:`~components._validate.ValidationError` naming every bad field of ``args``.
    """

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ServiceAccountRoleArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        raise_for("ServiceAccountRoleArgs", validate_service_account_role_args(args))
        super().__init__(
            type_token("ServiceAccountRole"),
            name,
            None,
            with_aliases(opts, "mlplatform:irsa:ServiceAccountRole"),
        )
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=web_identity_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer, args.namespace, args.service_account
            ),
            description=(f"IRSA role for service account {args.namespace}/{args.service_account}"),
            max_session_duration=args.max_session_duration,
            tags=dict(args.tags),
            opts=child,
        )
        grants: list[pulumi.CustomResource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{key}", role=role.name, policy_arn=policy_arn, opts=child
            )
            for key, policy_arn in sorted(args.policy_arns.items())
        ]
        grants += [
            aws.iam.RolePolicy(f"{name}-{key}", name=key, role=role.id, policy=document, opts=child)
            for key, document in sorted(args.inline_policies.items())
        ]

        # The ARN is handed out only once the role's policies are attached, so a workload
        # (or EKS add-on) given it never starts with a role that can do nothing yet.
        self.role_arn = pulumi.Output.all(role.arn, *[g.id for g in grants]).apply(
            lambda values: str(values[0])
        )
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name})


ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
"""The service account annotation through which a pod assumes its IRSA role."""


def inline_policy_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    service_account: tuple[str, str],
    policy: tuple[str, pulumi.Input[str]],
    parent: pulumi.Resource,
    tags: Mapping[str, str] | None = None,
) -> ServiceAccountRole:
    """The IRSA role of ``service_account`` (namespace, name) with one inline ``policy``
    (key, JSON document): what most controllers need. Raises ``ValidationError`` like
    :class:`ServiceAccountRole`."""
    namespace_name, account = service_account
    key, document = policy
    return ServiceAccountRole(
        name,
        ServiceAccountRoleArgs(
            oidc_provider_arn=oidc_provider_arn,
            oidc_issuer=oidc_issuer,
            namespace=namespace_name,
            service_account=account,
            inline_policies={key: document},
            tags=dict(tags or {}),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
