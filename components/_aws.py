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
# g5g is the one Arm family among them.
_NVIDIA_FAMILY = re.compile(r"^(g4dn|g5g?|g6[ef]?|gr6f?|g7e?|p3(dn)?|p4de?|p5e?n?|p6e?-[a-z0-9]+)$")

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


def log_group_key(
    name: str,
    *,
    context: AccountContext,
    log_group_names: Sequence[str],
    description: str,
    deletion_window_days: int,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.kms.Key:
    """Create a rotating customer KMS key that CloudWatch Logs may use for the named
    log groups only (scoped by ``kms:EncryptionContext:aws:logs:arn``)."""
    groups = [context.arn("logs", f"log-group:{group}") for group in log_group_names]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Without this the key becomes unmanageable by the account.
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": context.root},
                "Action": "kms:*",
                "Resource": "*",
            },
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
                "Condition": {
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": groups[0]
                        if len(groups) == 1
                        else groups
                    }
                },
            },
        ],
    }
    return aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=deletion_window_days,
        policy=json.dumps(policy),
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
