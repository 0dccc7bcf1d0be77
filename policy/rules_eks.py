"""Rules for the EKS control plane and its KMS keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_bool,
    as_list,
    as_number,
    dig,
    is_unknown,
    iter_mappings,
    mandatory_rule,
)

CLUSTER = "aws:eks/cluster:Cluster"
KMS_KEY = "aws:kms/key:Key"

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def _secrets_kms(_: str, props: Mapping[str, Any]) -> list[str]:
    configs = dig(props, "encryptionConfig")
    if is_unknown(configs):
        return []
    # The SDK sends one object; older state and raw programs may send a list of one.
    for config in iter_mappings(configs):
        resources = dig(config, "resources")
        key_arn = dig(config, "provider", "keyArn")
        if is_unknown(resources) or is_unknown(key_arn):
            return []
        if "secrets" in as_list(resources) and isinstance(key_arn, str) and key_arn.strip():
            return []
    return [
        "encryptionConfig must encrypt the 'secrets' resource with a customer KMS key "
        "(encryptionConfig.resources includes 'secrets' and encryptionConfig.provider.keyArn "
        "is set)"
    ]


def _control_plane_logs(_: str, props: Mapping[str, Any]) -> list[str]:
    enabled = dig(props, "enabledClusterLogTypes")
    if is_unknown(enabled) or any(is_unknown(t) for t in as_list(enabled)):
        return []
    missing = [t for t in CONTROL_PLANE_LOG_TYPES if t not in as_list(enabled)]
    if not missing:
        return []
    return [
        f"enabledClusterLogTypes must include all of {', '.join(CONTROL_PLANE_LOG_TYPES)}; "
        f"missing: {', '.join(missing)}"
    ]


def _public_endpoint(props: Mapping[str, Any]) -> tuple[bool | None, list[str] | None]:
    """(endpoint is public, its CIDRs); None in either place means unknown.

    EKS defaults: the public endpoint is on, and open to 0.0.0.0/0 when no CIDRs are given.
    """
    public_raw = dig(props, "vpcConfig", "endpointPublicAccess")
    public = True if public_raw is MISSING else as_bool(public_raw)
    cidrs_raw = dig(props, "vpcConfig", "publicAccessCidrs")
    if is_unknown(cidrs_raw) or any(is_unknown(c) for c in as_list(cidrs_raw)):
        return public, None
    return public, [str(c).strip() for c in as_list(cidrs_raw)]


def _public_endpoint_open(_: str, props: Mapping[str, Any]) -> list[str]:
    public, cidrs = _public_endpoint(props)
    if public is not True or cidrs is None:
        return []
    if not cidrs:
        return [
            "vpcConfig.endpointPublicAccess is on (the EKS default) with no "
            "vpcConfig.publicAccessCidrs, so the API server is open to 0.0.0.0/0; turn the "
            "public endpoint off or list the CIDRs allowed to reach it"
        ]
    open_cidrs = sorted(OPEN_CIDRS.intersection(cidrs))
    if open_cidrs:
        return [
            f"vpcConfig.publicAccessCidrs opens the public API endpoint to "
            f"{', '.join(open_cidrs)}; list only the CIDRs that need it, or turn "
            "vpcConfig.endpointPublicAccess off"
        ]
    return []


def _public_endpoint_restricted(_: str, props: Mapping[str, Any]) -> list[str]:
    public, cidrs = _public_endpoint(props)
    if public is not True or not cidrs or OPEN_CIDRS.intersection(cidrs):
        return []
    return [
        f"vpcConfig.endpointPublicAccess is on, restricted to {', '.join(cidrs)}: the stack "
        "opted in to a public API endpoint; prefer a private endpoint"
    ]


def _authentication_mode(_: str, props: Mapping[str, Any]) -> list[str]:
    mode = dig(props, "accessConfig", "authenticationMode")
    if is_unknown(mode) or mode == "API":
        return []
    found = "not set (defaults to CONFIG_MAP)" if mode is MISSING else repr(mode)
    return [f"accessConfig.authenticationMode must be 'API' (access entries); found {found}"]


def _no_creator_admin(_: str, props: Mapping[str, Any]) -> list[str]:
    raw = dig(props, "accessConfig", "bootstrapClusterCreatorAdminPermissions")
    if raw is not MISSING and as_bool(raw) is not True:
        return []
    return [
        "accessConfig.bootstrapClusterCreatorAdminPermissions must be false (it defaults to "
        "true): grant cluster admins through explicit access entries"
    ]


def _support_type(_: str, props: Mapping[str, Any]) -> list[str]:
    support = dig(props, "upgradePolicy", "supportType")
    if is_unknown(support) or support in ("STANDARD", "EXTENDED"):
        return []
    found = "not set (EKS then defaults to EXTENDED)" if support is MISSING else repr(support)
    return [
        "upgradePolicy.supportType must be set explicitly (STANDARD, or EXTENDED asked for by "
        f"name: six times the hourly cluster price); found {found}"
    ]


def _deletion_protection(_: str, props: Mapping[str, Any]) -> list[str]:
    raw = dig(props, "deletionProtection")
    if is_unknown(raw) or as_bool(raw) is True:
        return []
    return ["deletionProtection is off: one `pulumi destroy` or console click deletes the cluster"]


def _kms_rotation(_: str, props: Mapping[str, Any]) -> list[str]:
    spec = dig(props, "customerMasterKeySpec")
    spec = dig(props, "keySpec") if spec is MISSING else spec
    if is_unknown(spec) or spec not in (MISSING, "SYMMETRIC_DEFAULT"):
        # AWS rotates only symmetric encryption keys; asymmetric and HMAC keys cannot.
        return []
    rotation = as_bool(dig(props, "enableKeyRotation"))
    if rotation is not False:
        return []
    return ["enableKeyRotation must be true (automatic yearly rotation of the key material)"]


def _kms_deletion_window(_: str, props: Mapping[str, Any]) -> list[str]:
    raw = dig(props, "deletionWindowInDays")
    if raw is MISSING or is_unknown(raw):
        return []  # the AWS default is 30 days
    days = as_number(raw)
    if days is not None and days >= 7:
        return []
    return [f"deletionWindowInDays must be at least 7 days (30 is the default); found {raw!r}"]


RULES: list[ResourceRule] = [
    mandatory_rule(
        "eks-secrets-kms",
        {CLUSTER},
        "Kubernetes secrets are envelope-encrypted with a customer KMS key.",
        "etcd backups and snapshots would otherwise hold secrets under AWS-owned keys only.",
        "EKS Best Practices (Data encryption); CIS EKS 5.3.1; Checkov CKV_AWS_58",
        _secrets_kms,
    ),
    mandatory_rule(
        "eks-control-plane-logging",
        {CLUSTER},
        "All five control plane log types are enabled.",
        "Audit and authenticator logs are the only record of who did what to the cluster.",
        "EKS Best Practices (Auditing and logging); CIS EKS 2.1.1; Checkov CKV_AWS_37",
        _control_plane_logs,
    ),
    mandatory_rule(
        "eks-public-endpoint",
        {CLUSTER},
        "The public API endpoint is off, or limited to CIDRs that exclude 0.0.0.0/0 and ::/0.",
        "An API server reachable from the whole internet is one credential leak from takeover.",
        "EKS Best Practices (Make the endpoint private); CIS EKS 5.4.1, 5.4.2; "
        "Checkov CKV_AWS_38, CKV_AWS_39",
        _public_endpoint_open,
    ),
    ResourceRule(
        "eks-public-endpoint-restricted",
        "advisory",
        frozenset({CLUSTER}),
        "Flags a public API endpoint that the stack opted in to with restricted CIDRs.",
        "Allowed (dev), but a private endpoint is the safer default.",
        "EKS Best Practices (Make the endpoint private); CIS EKS 5.4.2",
        _public_endpoint_restricted,
    ),
    mandatory_rule(
        "eks-auth-mode-api",
        {CLUSTER},
        "Cluster access is managed with access entries (authenticationMode API).",
        "The aws-auth ConfigMap is easy to break and invisible to IAM; access entries are "
        "auditable AWS resources.",
        "EKS Best Practices (Identity and access management: cluster access manager)",
        _authentication_mode,
    ),
    mandatory_rule(
        "eks-no-creator-admin",
        {CLUSTER},
        "The identity that creates the cluster gets no implicit cluster-admin.",
        "Implicit admin for the deploying role is invisible in code and hard to revoke.",
        "EKS Best Practices (Identity and access management: cluster access manager)",
        _no_creator_admin,
    ),
    mandatory_rule(
        "eks-support-type-explicit",
        {CLUSTER},
        "The cluster sets its upgrade policy's support type (STANDARD or EXTENDED) explicitly.",
        "Left out, EKS enrols the cluster in extended support, which costs six times the "
        "standard hourly price once standard support ends.",
        "Amazon EKS user guide (Cluster upgrade policy); EKS pricing",
        _support_type,
    ),
    ResourceRule(
        "eks-deletion-protection",
        "advisory",
        frozenset({CLUSTER}),
        "Flags a cluster without EKS deletion protection.",
        "Allowed (dev), but a production cluster should survive a mistaken delete.",
        "Amazon EKS user guide (Deletion protection)",
        _deletion_protection,
    ),
    mandatory_rule(
        "kms-key-rotation",
        {KMS_KEY},
        "Automatic key rotation is on (symmetric encryption keys).",
        "Limits the data exposed under one key version.",
        "AWS Security Hub KMS.4; Checkov CKV_AWS_7",
        _kms_rotation,
    ),
    mandatory_rule(
        "kms-deletion-window",
        {KMS_KEY},
        "The key deletion window is at least 7 days.",
        "A key scheduled for deletion by mistake can be recovered within the window; a "
        "deleted key makes every secret and volume encrypted with it unreadable.",
        "AWS KMS best practices (Deleting AWS KMS keys)",
        _kms_deletion_window,
    ),
]
