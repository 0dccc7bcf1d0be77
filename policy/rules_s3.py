"""Stack-level rules for S3 buckets.

pulumi-aws 7 configures a bucket through separate resources (encryption, versioning,
public access block, policy, lifecycle) that name the bucket in their ``bucket``
prop, so a bucket is judged together with the resources pointing at it. Settings
made inline on the bucket (the older style) count too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from policy.rules_base import (
    MISSING,
    Aliases,
    Level,
    Resources,
    StackRule,
    as_bool,
    as_list,
    dig,
    is_unknown,
    iter_mappings,
    link_refs,
    parse_document,
    statements,
)

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
SSE_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
VERSIONING_TYPES = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
PUBLIC_ACCESS_BLOCK_TYPES = frozenset({"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"})
POLICY_TYPES = frozenset({"aws:s3/bucketPolicy:BucketPolicy"})
LIFECYCLE_TYPES = frozenset(
    {
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    }
)
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)

Verdict = bool | None
"""True compliant, False not (or not configured), None cannot judge."""


def _all_known(verdicts: list[Verdict]) -> Verdict:
    """True if any verdict is True; None if none is but one is unknown; else False."""
    if True in verdicts:
        return True
    return None if None in verdicts else False


def _sse_rules(rules: Any) -> Verdict:
    if is_unknown(rules):
        return None
    verdicts: list[Verdict] = []
    for rule in iter_mappings(rules):
        algorithm = dig(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        verdicts.append(None if is_unknown(algorithm) else algorithm in KMS_ALGORITHMS)
    return _all_known(verdicts)


def _sse_inline(props: Mapping[str, Any]) -> Verdict:
    return _sse_rules(dig(props, "serverSideEncryptionConfiguration", "rule"))


def _sse_split(props: Mapping[str, Any]) -> Verdict:
    return _sse_rules(dig(props, "rules"))


def _versioning_inline(props: Mapping[str, Any]) -> Verdict:
    return as_bool(dig(props, "versioning", "enabled"))


def _versioning_split(props: Mapping[str, Any]) -> Verdict:
    status = dig(props, "versioningConfiguration", "status")
    return None if is_unknown(status) else status == "Enabled"


def _public_access_split(props: Mapping[str, Any]) -> Verdict:
    flags = [as_bool(dig(props, flag)) for flag in PUBLIC_ACCESS_FLAGS]
    if False in flags:
        return False
    return None if None in flags else True


def _never_inline(_: Mapping[str, Any]) -> Verdict:
    return False


def _tls_only(document: Any) -> Verdict:
    """True when a policy document denies requests without TLS (aws:SecureTransport false)."""
    if document is MISSING:
        return False
    parsed = parse_document(document)
    if parsed is None:
        return None
    if parsed is False:
        return False
    for statement in statements(parsed):
        if statement.get("Effect") != "Deny":
            continue
        for operator in ("Bool", "BoolIfExists"):
            value = dig(statement, "Condition", operator, "aws:SecureTransport")
            if is_unknown(value):
                return None
            if any(str(v).strip().lower() == "false" for v in as_list(value)):
                return True
    return False


def _policy_inline(props: Mapping[str, Any]) -> Verdict:
    return _tls_only(dig(props, "policy"))


def _policy_split(props: Mapping[str, Any]) -> Verdict:
    return _tls_only(dig(props, "policy"))


def _lifecycle_inline(props: Mapping[str, Any]) -> Verdict:
    rules = dig(props, "lifecycleRules")
    if is_unknown(rules):
        return None
    return _all_known([as_bool(dig(rule, "enabled")) for rule in iter_mappings(rules)])


def _lifecycle_split(props: Mapping[str, Any]) -> Verdict:
    rules = dig(props, "rules")
    if is_unknown(rules):
        return None
    verdicts: list[Verdict] = []
    for rule in iter_mappings(rules):
        status = dig(rule, "status")
        verdicts.append(None if is_unknown(status) else status == "Enabled")
    return _all_known(verdicts)


@dataclass(frozen=True)
class _Control:
    """One bucket control: where it may be configured and what is required."""

    split_types: frozenset[str]
    inline: Callable[[Mapping[str, Any]], Verdict]
    split: Callable[[Mapping[str, Any]], Verdict]
    required: str


def _bucket_check(control: _Control) -> Callable[[Resources, Aliases], list[tuple[str, str]]]:
    def check(resources: Resources, aliases: Aliases) -> list[tuple[str, str]]:
        buckets = [(urn, props) for urn, rtype, props in resources if rtype in BUCKET_TYPES]
        splits = [props for _, rtype, props in resources if rtype in control.split_types]
        linked = link_refs(buckets, [dig(p, "bucket") for p in splits], aliases, _BUCKET_KEYS)
        if linked is None:
            return []
        findings: list[tuple[str, str]] = []
        for urn, props in buckets:
            verdicts = [control.inline(props)] + [control.split(splits[i]) for i in linked[urn]]
            if _all_known(verdicts) is False:
                state = "is misconfigured" if linked[urn] else "is missing"
                findings.append((urn, f"the bucket's {control.required} {state}"))
        return findings

    return check


# A split resource names its bucket by the bucket's id, which is the bucket's name.
_BUCKET_KEYS = ("id", "arn", "bucket")


def _stack_rule(
    name: str, level: Level, control: _Control, description: str, why: str, source: str
) -> StackRule:
    types = BUCKET_TYPES | control.split_types
    return StackRule(name, level, types, description, why, source, _bucket_check(control))


STACK_RULES: list[StackRule] = [
    _stack_rule(
        "s3-sse-kms",
        "mandatory",
        _Control(
            SSE_TYPES,
            _sse_inline,
            _sse_split,
            "default encryption with KMS (a BucketServerSideEncryptionConfiguration rule "
            "with applyServerSideEncryptionByDefault.sseAlgorithm 'aws:kms' or "
            "'aws:kms:dsse')",
        ),
        "Buckets encrypt objects by default with KMS (aws:kms or aws:kms:dsse).",
        "KMS keys add an access check and an audit trail on every read of model artifacts "
        "and backups.",
        "AWS Security Hub S3.17; Checkov CKV_AWS_145",
    ),
    _stack_rule(
        "s3-versioning",
        "mandatory",
        _Control(
            VERSIONING_TYPES,
            _versioning_inline,
            _versioning_split,
            "versioning (a BucketVersioning with versioningConfiguration.status 'Enabled')",
        ),
        "Buckets have versioning enabled.",
        "Overwritten or deleted model artifacts and backups stay recoverable.",
        "AWS Security Hub S3.14; Checkov CKV_AWS_21",
    ),
    _stack_rule(
        "s3-public-access-block",
        "mandatory",
        _Control(
            PUBLIC_ACCESS_BLOCK_TYPES,
            _never_inline,
            _public_access_split,
            "public access block (a BucketPublicAccessBlock with blockPublicAcls, "
            "blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true)",
        ),
        "Buckets block every form of public access (all four flags).",
        "One public ACL or policy would expose models or backups to the internet.",
        "AWS Security Hub S3.8; Checkov CKV_AWS_53-56, CKV2_AWS_6",
    ),
    _stack_rule(
        "s3-tls-only",
        "mandatory",
        _Control(
            POLICY_TYPES,
            _policy_inline,
            _policy_split,
            "TLS-only bucket policy (a BucketPolicy with a Deny statement on "
            "Condition Bool aws:SecureTransport 'false')",
        ),
        "Bucket policies deny requests that do not use TLS.",
        "Without it, clients may read and write objects over plain HTTP.",
        "AWS Security Hub S3.5",
    ),
    _stack_rule(
        "s3-lifecycle",
        "advisory",
        _Control(
            LIFECYCLE_TYPES,
            _lifecycle_inline,
            _lifecycle_split,
            "lifecycle configuration (a BucketLifecycleConfiguration with an 'Enabled' rule)",
        ),
        "Buckets have lifecycle rules (e.g. expire noncurrent versions).",
        "With versioning on, old versions otherwise accumulate cost forever.",
        "AWS Security Hub S3.13; Checkov CKV2_AWS_61",
    ),
]
