"""AWS plumbing shared by the components: account context, trust policies, AWS facts.

Functions, not components: a component calls them for its own children. The facts here
(retention values, name patterns, instance families, the EKS version calendar) are the
ones AWS defines; each is written once and read by the component that owns the rule.
The policy pack (published on its own) keeps copies of the few it needs, marked there.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components._validate import Problem

# The values CloudWatch Logs accepts for retentionInDays.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192}
    | {2557, 2922, 3288, 3653}
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
INSTANCE_TYPE = re.compile(r"^([a-z][a-z0-9-]*)\.[a-z0-9]+$")
ADDON_VERSION = re.compile(r"^v(\d+)\.(\d+)\.\d+-eksbuild\.\d+$")
# EKS allows 100 characters; 38 leaves room for the suffixes of the names derived from
# it (IAM role names are capped at 64, with Pulumi's 8-character random suffix).
CLUSTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,37}$")
KUBERNETES_VERSION = re.compile(r"^1\.(\d{2})$")

# Graviton families: the processor letter right after the generation is 'g' (m7g, c7gn,
# r6gd, t4g, im4gn, g5g), plus the first-generation a1.
_ARM_FAMILY = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)$")
# NVIDIA families (EC2 "accelerated computing"); g4ad is AMD and inf/trn are Neuron.
# g5g is the one Arm family among them. The policy pack keeps the same pattern (a copy:
# it is published alone); a test holds the two equal.
_NVIDIA_FAMILY = re.compile(r"^(g3s?|g4dn|g5g?|g6[ef]?|gr6f?|g7e?|p[2-6][a-z0-9-]*)$")

SupportType = Literal["STANDARD", "EXTENDED"]


@dataclass(frozen=True)
class EksRelease:
    """One Kubernetes minor version on EKS (dates from the EKS release calendar, UTC)."""

    released: dt.date
    standard_until: dt.date
    """Last day of standard support is the day before this date."""
    extended_until: dt.date


# The EKS Kubernetes release calendar. A version EKS releases later is refused until a
# row is added here (with its add-on pins re-checked in Pulumi.yaml).
EKS_RELEASES: Mapping[str, EksRelease] = {
    "1.33": EksRelease(dt.date(2025, 5, 29), dt.date(2026, 7, 29), dt.date(2027, 7, 29)),
    "1.34": EksRelease(dt.date(2025, 10, 2), dt.date(2026, 12, 2), dt.date(2027, 12, 2)),
    "1.35": EksRelease(dt.date(2026, 1, 27), dt.date(2027, 3, 27), dt.date(2028, 3, 27)),
    "1.36": EksRelease(dt.date(2026, 6, 2), dt.date(2027, 8, 2), dt.date(2028, 8, 2)),
}

# Zones the EKS control plane cannot use, by zone ID (zone names differ per account).
EKS_UNSUPPORTED_ZONE_IDS = frozenset({"use1-az3", "usw1-az2", "cac1-az3"})


MIN_SPOT_INSTANCE_TYPES = 3


def spot_diversity_problems(instance_types: Sequence[str], field: str) -> list[Problem]:
    """The problem with a spot pool of fewer than three instance types: one reclaimed
    type must not empty the pool."""
    count = len(set(instance_types))
    if count >= MIN_SPOT_INSTANCE_TYPES:
        return []
    return [
        Problem(
            field,
            f"SPOT needs at least {MIN_SPOT_INSTANCE_TYPES} instance types (got {count}) so "
            "that one reclaimed type does not empty the pool",
        )
    ]


def addon_pin_problems(versions: Mapping[str, str], addons: Sequence[str]) -> list[Problem]:
    """Problems with pinned EKS add-on ``versions``: each of ``addons`` present, nothing
    else, every version pinned exactly (``v1.19.5-eksbuild.1``)."""
    problems: list[Problem] = []
    missing = [a for a in addons if a not in versions]
    if missing:
        problems.append(
            Problem("addon_versions", f"missing {missing}; all of {list(addons)} needed")
        )
    for addon, version in sorted(versions.items()):
        if addon not in addons:
            problems.append(Problem("addon_versions", f"is not one of {list(addons)} here", addon))
        elif not isinstance(version, str) or not ADDON_VERSION.match(version):
            problems.append(
                Problem(
                    f"addon_versions.{addon}", "must be pinned like 'v1.19.5-eksbuild.1'", version
                )
            )
    return problems


def managed_addon(
    name: str,
    *,
    cluster_name: pulumi.Input[str],
    addon: str,
    version: str,
    opts: pulumi.ResourceOptions,
    role_arn: pulumi.Input[str] | None = None,
    configuration: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> aws.eks.Addon:
    """Create EKS add-on ``addon`` at ``version``, owned by the stack: drift made in the
    cluster is overwritten, not merged, on create and on update."""
    return aws.eks.Addon(
        name,
        cluster_name=cluster_name,
        addon_name=addon,
        addon_version=version,
        service_account_role_arn=role_arn,
        configuration_values=json.dumps(configuration, sort_keys=True) if configuration else None,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        tags=dict(tags or {}),
        opts=opts,
    )


def instance_family(instance_type: str) -> str:
    """Return the family of an EC2 instance type (``m7g.large`` -> ``m7g``)."""
    return instance_type.split(".", 1)[0]


def is_arm(instance_type: str) -> bool:
    """True for an Arm (Graviton) instance type."""
    return bool(_ARM_FAMILY.match(instance_family(instance_type)))


def is_nvidia(instance_type: str) -> bool:
    """True for an instance type with NVIDIA GPUs."""
    return bool(_NVIDIA_FAMILY.match(instance_family(instance_type)))


def supported_versions(today: dt.date, support_type: SupportType) -> list[str]:
    """Return the Kubernetes versions EKS supports on ``today`` under ``support_type``."""
    return [
        version
        for version, release in EKS_RELEASES.items()
        if release.released <= today
        and today
        < (release.standard_until if support_type == "STANDARD" else release.extended_until)
    ]


@dataclass(frozen=True)
class AccountContext:
    """Where a component's resources live: partition, account id and region."""

    partition: str
    account_id: str
    region: str

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        """Return an ARN in this account (``regional=False`` for IAM and other global
        services)."""
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"

    def managed_policy(self, name: str) -> str:
        """Return the ARN of an AWS managed IAM policy (``service-role/...`` allowed)."""
        return f"arn:{self.partition}:iam::aws:policy/{name}"

    @property
    def root(self) -> str:
        """The account's root principal, which key policies must keep."""
        return f"arn:{self.partition}:iam::{self.account_id}:root"


def account_context(parent: pulumi.Resource) -> AccountContext:
    """Look up the partition, account and region once, for ``parent``'s provider."""
    invoke = pulumi.InvokeOptions(parent=parent)
    return AccountContext(
        partition=aws.get_partition(opts=invoke).partition,
        account_id=aws.get_caller_identity(opts=invoke).account_id,
        region=aws.get_region(opts=invoke).region,
    )


def service_trust_policy(
    service: str,
    *,
    source_account: str | None = None,
    source_arn: str | None = None,
    tag_session: bool = False,
) -> str:
    """Return a trust policy letting AWS ``service`` assume a role.

    ``source_account``/``source_arn`` add the confused-deputy conditions (another
    account's use of the service cannot assume the role). ``tag_session`` adds
    ``sts:TagSession`` (EKS needs it).
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole",
    }
    condition: dict[str, dict[str, str]] = {}
    if source_account:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def service_role(
    name: str,
    *,
    service: str,
    policies: Mapping[str, str],
    description: str,
    context: AccountContext,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """Create role ``name`` that AWS ``service`` assumes, with AWS managed ``policies``
    ({attachment resource name: policy name}); return it and its attachments (a user of
    the role waits for them)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name,
        assume_role_policy=service_trust_policy(service),
        description=description,
        tags=dict(tags),
        opts=child,
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            attachment, role=role.name, policy_arn=context.managed_policy(policy), opts=child
        )
        for attachment, policy in policies.items()
    ]
    return role, attachments


def issuer_host_path(issuer: str) -> str:
    """Return an OIDC issuer without its scheme, as IAM condition keys spell it."""
    return issuer.removeprefix("https://").removeprefix("http://").rstrip("/")


def web_identity_trust_policy(
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Return a trust policy for exactly one Kubernetes service account (IRSA).

    ``StringEquals`` on both ``:sub`` and ``:aud``: neither a wildcard service account nor
    a token minted for another audience can assume the role. Built from Output
    combinators: the condition keys depend on the issuer, known once the cluster exists.
    """
    host = pulumi.Output.from_input(oidc_issuer).apply(issuer_host_path)

    def conditions(h: str) -> dict[str, str]:
        return {
            f"{h}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{h}:aud": "sts.amazonaws.com",
        }

    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": host.apply(conditions)},
                }
            ],
        }
    )


def key_administration(context: AccountContext) -> dict[str, Any]:
    """The key-policy statement that keeps a KMS key manageable by its account."""
    return {
        "Sid": "AccountAdministration",
        "Effect": "Allow",
        "Principal": {"AWS": context.root},
        "Action": "kms:*",
        "Resource": "*",
    }


@dataclass(frozen=True)
class LogGroupSpec:
    """An encrypted CloudWatch log group: its exact name, retention and key settings."""

    group_name: str
    retention_days: int
    description: str
    """What the group's key encrypts, for the key's description."""
    deletion_window_days: int = 30
    tags: Mapping[str, str] | None = None


def encrypted_log_group(
    name: str, spec: LogGroupSpec, *, context: AccountContext, parent: pulumi.Resource
) -> aws.cloudwatch.LogGroup:
    """Create log group ``spec.group_name`` encrypted with its own rotating customer KMS
    key (``<name>-key``), which CloudWatch Logs may use for that group only (scoped by
    ``kms:EncryptionContext:aws:logs:arn``)."""
    tags = dict(spec.tags or {})
    group_arn = context.arn("logs", f"log-group:{spec.group_name}")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            key_administration(context),
            {
                "Sid": "CloudWatchLogsForTheseGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{context.region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}},
            },
        ],
    }
    child = pulumi.ResourceOptions(parent=parent)
    key = aws.kms.Key(
        f"{name}-key",
        description=f"Encrypts {spec.description}",
        enable_key_rotation=True,
        deletion_window_in_days=spec.deletion_window_days,
        policy=json.dumps(policy),
        tags=tags,
        opts=child,
    )
    return aws.cloudwatch.LogGroup(
        name,
        name=spec.group_name,
        retention_in_days=spec.retention_days,
        kms_key_id=key.arn,
        tags=tags,
        opts=child,
    )
