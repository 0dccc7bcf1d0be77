"""IAM admin wildcard, IRSA trust pinning and log group retention rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy.rules import check_resource

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
ROLE = "aws:iam/role:Role"
ISSUER = "oidc.eks.us-west-2.amazonaws.com/id/ABCDEF0123456789"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"


def fired(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    return {f.policy: f.level for f in check_resource(resource_type, props)}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}
SCOPED = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}


@pytest.mark.parametrize(
    "resource_type",
    [
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    ],
)
def test_admin_wildcard_in_policy_documents(resource_type: str) -> None:
    assert fired(resource_type, {"policy": json.dumps(doc(SCOPED))}) == {}
    assert fired(resource_type, {"policy": json.dumps(doc(SCOPED, ADMIN))}) == {
        "iam-no-admin-wildcard": "mandatory"
    }
    # Documents may arrive as objects, and Action/Resource as lists.
    listed = {"Effect": "Allow", "Action": ["s3:*", "*:*"], "Resource": ["*"]}
    assert fired(resource_type, {"policy": doc(listed)}) == {"iam-no-admin-wildcard": "mandatory"}


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
    ],
)
def test_statements_that_are_not_full_admin(statement: dict[str, Any]) -> None:
    assert fired("aws:iam/policy:Policy", {"policy": json.dumps(doc(statement))}) == {}


def test_role_inline_policies_and_malformed_documents() -> None:
    props = {"assumeRolePolicy": json.dumps(doc()), "inlinePolicies": [{"policy": doc(ADMIN)}]}
    [finding] = check_resource(ROLE, props)
    assert finding.policy == "iam-no-admin-wildcard"
    assert "inlinePolicies[0].policy" in finding.message
    [bad] = check_resource("aws:iam/policy:Policy", {"policy": "{oops"})
    assert bad.policy == "iam-no-admin-wildcard" and "not a JSON" in bad.message


def test_unknown_policy_documents_cannot_be_judged() -> None:
    assert fired("aws:iam/policy:Policy", {"policy": UNKNOWN}) == {}
    assert fired("aws:iam/policy:Policy", {"policy": f'{{"Statement": "{UNKNOWN}"}}'}) == {}
    assert fired(ROLE, {"assumeRolePolicy": UNKNOWN, "inlinePolicies": UNKNOWN}) == {}


def irsa(condition: Any, principal: Any = PROVIDER) -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": principal},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }
    return {"assumeRolePolicy": json.dumps(doc(statement))}


PINNED = {
    "StringEquals": {
        f"{ISSUER}:sub": "system:serviceaccount:inference:model-server",
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }
}


def test_pinned_irsa_trust_is_compliant() -> None:
    assert fired(ROLE, irsa(PINNED)) == {}
    as_list = {"StringEquals": {k: [v] for k, v in PINNED["StringEquals"].items()}}
    assert fired(ROLE, irsa(as_list)) == {}


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({}, ":sub"),
        ({"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}}, ":sub"),
        ({"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:inference:x"}}, ":aud"),
        (
            {
                "StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"},
                "StringLike": {f"{ISSUER}:sub": "system:serviceaccount:inference:*"},
            },
            "wildcard",
        ),
        (
            {
                "StringEquals": {
                    f"{ISSUER}:aud": "sts.amazonaws.com",
                    f"{ISSUER}:sub": [
                        "system:serviceaccount:a:one",
                        "system:serviceaccount:b:two",
                    ],
                }
            },
            "exactly one",
        ),
        (
            {
                "StringEquals": {
                    f"{ISSUER}:aud": "sts.amazonaws.com",
                    f"{ISSUER}:sub": "system:serviceaccount:inference:*",
                }
            },
            "exactly one",
        ),
    ],
)
def test_unpinned_irsa_trust_is_a_violation(condition: dict[str, Any], fragment: str) -> None:
    findings = check_resource(ROLE, irsa(condition))
    assert {f.policy for f in findings} == {"iam-irsa-trust-pinned"}
    assert all(f.level == "mandatory" for f in findings)
    assert any(fragment in f.message for f in findings)


def test_trust_policies_that_are_not_irsa_are_ignored() -> None:
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert fired(ROLE, {"assumeRolePolicy": json.dumps(doc(service))}) == {}
    saml = irsa({}, principal="arn:aws:iam::123456789012:saml-provider/corp")
    assert fired(ROLE, saml) == {}


def test_irsa_unknowns_cannot_be_judged() -> None:
    assert fired(ROLE, irsa({}, principal=UNKNOWN)) == {}
    assert fired(ROLE, irsa(UNKNOWN)) == {}
    unknown_sub = {"StringEquals": {f"{ISSUER}:sub": UNKNOWN, f"{ISSUER}:aud": "sts"}}
    assert (
        fired(ROLE, {"assumeRolePolicy": json.loads(irsa(unknown_sub)["assumeRolePolicy"])}) == {}
    )


KEY = "arn:aws:kms:us-west-2:123456789012:key/abc"


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"retentionInDays": 30.0, "kmsKeyId": KEY}, {}),
        ({"retentionInDays": "90", "kmsKeyId": KEY}, {}),
        ({"kmsKeyId": KEY}, {"cloudwatch-log-retention": "mandatory"}),
        ({"retentionInDays": 0, "kmsKeyId": KEY}, {"cloudwatch-log-retention": "mandatory"}),
        (
            {"retentionInDays": "forever", "kmsKeyId": KEY},
            {"cloudwatch-log-retention": "mandatory"},
        ),
        ({"retentionInDays": "3eeb2bf0-c639-47a8-9e75-3b44932eb421", "kmsKeyId": KEY}, {}),
        ({"retentionInDays": 30}, {"cloudwatch-log-group-kms": "mandatory"}),
        ({"retentionInDays": 30, "kmsKeyId": ""}, {"cloudwatch-log-group-kms": "mandatory"}),
        ({"retentionInDays": 30, "kmsKeyId": "3eeb2bf0-c639-47a8-9e75-3b44932eb421"}, {}),
    ],
)
def test_log_group_retention(props: dict[str, Any], expected: dict[str, str]) -> None:
    assert fired("aws:cloudwatch/logGroup:LogGroup", props) == expected
