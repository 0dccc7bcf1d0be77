"""Rules for IAM documents (no admin wildcards, IRSA trust pinned) and log retention."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_list,
    as_number,
    dig,
    is_unknown,
    iter_mappings,
    parse_document,
    statements,
)

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

_ADMIN_ACTIONS = frozenset({"*", "*:*"})
_SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:[a-z0-9][-a-z0-9.]*:[a-z0-9][-a-z0-9.]*$")
_WILDCARDS = ("*", "?")


def _documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(property path, raw document) of every permission document a resource carries."""
    if resource_type != ROLE:
        return [("policy", dig(props, "policy"))]
    inline = dig(props, "inlinePolicies")
    return [
        (f"inlinePolicies[{index}].policy", dig(item, "policy"))
        for index, item in enumerate(iter_mappings(inline))
    ]


def _no_admin_wildcard(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for where, raw in _documents(resource_type, props):
        if raw is MISSING:
            continue
        document = parse_document(raw)
        if document is False:
            problems.append(f"{where} is not a JSON policy document object")
            continue
        for index, statement in enumerate(statements(document or {})):
            actions = as_list(statement.get("Action", MISSING))
            resources = as_list(statement.get("Resource", MISSING))
            if (
                statement.get("Effect") == "Allow"
                and _ADMIN_ACTIONS.intersection(a for a in actions if isinstance(a, str))
                and "*" in resources
            ):
                problems.append(
                    f"{where} Statement[{index}] allows Action '*' on Resource '*' (full "
                    "admin); grant the specific actions and resources the workload needs"
                )
    return problems


def _federated_oidc(statement: Mapping[str, Any]) -> bool | None:
    """True when a statement trusts an OIDC identity provider for web identity."""
    actions = as_list(statement.get("Action", MISSING))
    if "sts:AssumeRoleWithWebIdentity" not in actions:
        return False
    federated = dig(statement, "Principal", "Federated")
    if is_unknown(federated) or any(is_unknown(f) for f in as_list(federated)):
        return None
    return any(isinstance(f, str) and ":oidc-provider/" in f for f in as_list(federated))


def _condition_values(condition: Mapping[str, Any], operator: str, suffix: str) -> list[Any]:
    block = condition.get(operator, MISSING)
    if not isinstance(block, Mapping):
        return []
    values: list[Any] = []
    for key, value in block.items():
        if not (isinstance(key, str) and key.endswith(suffix)):
            continue
        if is_unknown(value):
            values.append(value)
        else:
            values.extend(as_list(value) or [""])
    return values


def _trust_problems(condition: Any) -> list[str] | None:
    """What an IRSA trust statement's Condition lacks; None when it cannot be judged."""
    if is_unknown(condition):
        return None
    if not isinstance(condition, Mapping):
        condition = {}
    problems: list[str] = []
    for operator, block in condition.items():
        if operator == "StringEquals" or not isinstance(block, Mapping):
            continue
        for value in _condition_values(condition, str(operator), ":sub"):
            if isinstance(value, str) and any(w in value for w in _WILDCARDS):
                problems.append(f"{operator} on ':sub' uses a wildcard ({value!r})")
    subjects = _condition_values(condition, "StringEquals", ":sub")
    audiences = _condition_values(condition, "StringEquals", ":aud")
    if any(is_unknown(v) for v in subjects + audiences):
        return None
    if len(subjects) != 1 or not _SERVICE_ACCOUNT.match(str(subjects[0])):
        problems.append(
            "StringEquals on '<issuer>:sub' must name exactly one service account as "
            f"'system:serviceaccount:<namespace>:<name>' (found {subjects or 'none'})"
        )
    if not audiences or any(not isinstance(a, str) or not a or "*" in a for a in audiences):
        problems.append("StringEquals on '<issuer>:aud' must be set to 'sts.amazonaws.com'")
    return problems


def _irsa_trust(_: str, props: Mapping[str, Any]) -> list[str]:
    raw = dig(props, "assumeRolePolicy")
    document = parse_document(raw) if raw is not MISSING else None
    if document is False:
        return ["assumeRolePolicy is not a JSON policy document object"]
    problems: list[str] = []
    for index, statement in enumerate(statements(document or {})):
        if statement.get("Effect") != "Allow" or _federated_oidc(statement) is not True:
            continue
        found = _trust_problems(statement.get("Condition", MISSING))
        problems.extend(
            f"assumeRolePolicy Statement[{index}] trusts an EKS OIDC provider but {problem}"
            for problem in found or []
        )
    return problems


def _log_retention(_: str, props: Mapping[str, Any]) -> list[str]:
    raw = dig(props, "retentionInDays")
    if is_unknown(raw):
        return []
    days = as_number(raw)
    if days is not None and days > 0:
        return []
    found = "not set (logs kept forever)" if raw is MISSING else repr(raw)
    return [f"retentionInDays must be a positive number of days; found {found}"]


def _log_group_kms(_: str, props: Mapping[str, Any]) -> list[str]:
    key = dig(props, "kmsKeyId")
    if is_unknown(key) or (isinstance(key, str) and key):
        return []
    return ["kmsKeyId must name a customer KMS key; found not set (AWS-owned key only)"]


RULES: list[ResourceRule] = [
    ResourceRule(
        "iam-no-admin-wildcard",
        "mandatory",
        frozenset({ROLE, POLICY, ROLE_POLICY, USER_POLICY, GROUP_POLICY}),
        "No Allow statement grants Action '*' on Resource '*'.",
        "Full admin in a workload or node role turns any pod compromise into account takeover.",
        "AWS Security Hub IAM.1; Checkov CKV_AWS_62, CKV_AWS_1",
        _no_admin_wildcard,
    ),
    ResourceRule(
        "iam-irsa-trust-pinned",
        "mandatory",
        frozenset({ROLE}),
        "IRSA trust policies pin ':sub' to one namespace:serviceaccount (StringEquals, no "
        "wildcard) and ':aud' to sts.amazonaws.com.",
        "An unpinned trust lets any service account in the cluster assume the role.",
        "EKS Best Practices (IAM roles for service accounts: scope the trust policy)",
        _irsa_trust,
    ),
    ResourceRule(
        "cloudwatch-log-retention",
        "mandatory",
        frozenset({LOG_GROUP}),
        "Log groups set a retention (retentionInDays > 0).",
        "Logs kept forever grow cost without bound; a retention is a deliberate choice.",
        "Checkov CKV_AWS_66; AWS Security Hub CloudWatch.16",
        _log_retention,
    ),
    ResourceRule(
        "cloudwatch-log-group-kms",
        "mandatory",
        frozenset({LOG_GROUP}),
        "Log groups are encrypted with a customer KMS key (kmsKeyId).",
        "Audit and flow logs name every caller and address; a customer key adds an access "
        "check and an audit trail on every read.",
        "AWS Security Hub CloudWatch.15 (KMS encryption of log groups); Checkov CKV_AWS_158",
        _log_group_kms,
    ),
]
