"""S3 bucket rules, judged over a bucket and the split resources that configure it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy.rules import check_stack

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
BUCKET_URN = "urn:pulumi:dev::mlplatform::mlplatform:backups:Backups$aws:s3/bucket:Bucket::velero"
BUCKET_ID = "velero-1a2b3c4"
S3_RULES = {"s3-sse-kms", "s3-versioning", "s3-public-access-block", "s3-tls-only", "s3-lifecycle"}

TLS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET_ID}", f"arn:aws:s3:::{BUCKET_ID}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def split(kind: str, name: str, props: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    token = f"aws:s3/{kind[0].lower()}{kind[1:]}:{kind}"
    return (f"urn:pulumi:dev::mlplatform::{token}::{name}", token, {"bucket": BUCKET_ID, **props})


def good_parts() -> dict[str, tuple[str, str, dict[str, Any]]]:
    sse_rule = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
    return {
        "sse": split("BucketServerSideEncryptionConfiguration", "sse", {"rules": [sse_rule]}),
        "versioning": split(
            "BucketVersioning", "ver", {"versioningConfiguration": {"status": "Enabled"}}
        ),
        "pab": split(
            "BucketPublicAccessBlock",
            "pab",
            {
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        "policy": split("BucketPolicy", "pol", {"policy": json.dumps(TLS_POLICY)}),
        "lifecycle": split(
            "BucketLifecycleConfiguration",
            "lc",
            {"rules": [{"id": "expire", "status": "Enabled"}]},
        ),
    }


def run(parts: dict[str, tuple[str, str, dict[str, Any]]], **bucket: Any) -> dict[str, str]:
    resources = [(BUCKET_URN, "aws:s3/bucket:Bucket", {"bucket": BUCKET_ID, **bucket})]
    resources += list(parts.values())
    findings = check_stack(resources)
    assert all(urn == BUCKET_URN for urn, _ in findings)
    return {f.policy: f.level for _, f in findings if f.policy in S3_RULES}


def test_fully_configured_bucket_is_compliant() -> None:
    assert run(good_parts()) == {}


def test_bare_bucket_misses_every_control() -> None:
    assert run({}) == {
        "s3-sse-kms": "mandatory",
        "s3-versioning": "mandatory",
        "s3-public-access-block": "mandatory",
        "s3-tls-only": "mandatory",
        "s3-lifecycle": "advisory",
    }


@pytest.mark.parametrize(
    ("part", "props", "rule"),
    [
        (
            "sse",
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
            "s3-sse-kms",
        ),
        ("versioning", {"versioningConfiguration": {"status": "Suspended"}}, "s3-versioning"),
        ("pab", {"blockPublicAcls": True, "blockPublicPolicy": "true"}, "s3-public-access-block"),
        ("pab", {"restrictPublicBuckets": False}, "s3-public-access-block"),
        ("policy", {"policy": json.dumps({"Statement": []})}, "s3-tls-only"),
        ("policy", {"policy": "{not json"}, "s3-tls-only"),
        ("lifecycle", {"rules": [{"id": "x", "status": "Disabled"}]}, "s3-lifecycle"),
    ],
)
def test_misconfigured_control_is_flagged(part: str, props: dict[str, Any], rule: str) -> None:
    parts = good_parts()
    urn, token, _ = parts[part]
    parts[part] = (urn, token, {"bucket": BUCKET_ID, **props})
    fired = run(parts)
    assert set(fired) == {rule}


def test_missing_control_message_names_the_resource_to_add() -> None:
    parts = good_parts()
    del parts["versioning"]
    resources = [(BUCKET_URN, "aws:s3/bucket:Bucket", {"bucket": BUCKET_ID}), *parts.values()]
    [(_, finding)] = check_stack(resources)
    assert finding.policy == "s3-versioning"
    assert "BucketVersioning" in finding.message and "missing" in finding.message


def test_dsse_kms_and_object_policy_are_accepted() -> None:
    parts = good_parts()
    dsse = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms:dsse"}}
    parts["sse"] = split("BucketServerSideEncryptionConfigurationV2", "sse", {"rules": [dsse]})
    parts["policy"] = split("BucketPolicy", "pol", {"policy": TLS_POLICY})
    assert run(parts) == {}


def test_inline_bucket_settings_count() -> None:
    parts = good_parts()
    for key in ("sse", "versioning", "policy", "lifecycle"):
        del parts[key]
    inline = {
        "serverSideEncryptionConfiguration": {
            "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
        },
        "versioning": {"enabled": True},
        "policy": json.dumps(TLS_POLICY),
        "lifecycleRules": [{"enabled": True}],
    }
    assert run(parts, **inline) == {}


def test_settings_for_another_bucket_do_not_count() -> None:
    parts = {key: (u, t, {**p, "bucket": "other"}) for key, (u, t, p) in good_parts().items()}
    assert set(run(parts)) == S3_RULES


def test_bucket_linked_through_alias_when_named_by_the_provider() -> None:
    resources = [(BUCKET_URN, "aws:s3/bucketV2:BucketV2", {}), *good_parts().values()]
    assert check_stack(resources, aliases={BUCKET_URN: [BUCKET_ID]}) == []


def test_unknown_values_cannot_be_judged() -> None:
    parts = good_parts()
    parts["sse"] = split("BucketServerSideEncryptionConfiguration", "sse", {"rules": UNKNOWN})
    parts["versioning"] = split(
        "BucketVersioning", "ver", {"versioningConfiguration": {"status": UNKNOWN}}
    )
    parts["pab"][2]["blockPublicAcls"] = UNKNOWN
    parts["policy"] = split("BucketPolicy", "pol", {"policy": UNKNOWN})
    parts["lifecycle"] = (*parts["lifecycle"][:2], {"bucket": UNKNOWN, "rules": []})
    assert run(parts) == {}
