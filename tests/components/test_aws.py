"""AWS facts and trust policies shared by the components."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from components import _aws


@pytest.mark.parametrize(
    ("instance_type", "arm", "nvidia"),
    [
        ("m7g.large", True, False),
        ("c7gn.xlarge", True, False),
        ("r6gd.large", True, False),
        ("t4g.small", True, False),
        ("im4gn.large", True, False),
        ("a1.large", True, False),
        ("g5g.xlarge", True, True),
        ("m7i.large", False, False),
        ("m7a.large", False, False),
        ("g4dn.xlarge", False, True),
        ("g4ad.xlarge", False, False),
        ("g6e.2xlarge", False, True),
        ("p5.48xlarge", False, True),
        ("p5en.48xlarge", False, True),
        ("p6-b200.48xlarge", False, True),
        ("inf2.xlarge", False, False),
    ],
)
def test_instance_families(instance_type: str, arm: bool, nvidia: bool) -> None:
    assert _aws.is_arm(instance_type) is arm
    assert _aws.is_nvidia(instance_type) is nvidia


def test_supported_versions_follow_the_calendar() -> None:
    assert _aws.supported_versions(dt.date(2026, 12, 1), "STANDARD") == ["1.34", "1.35", "1.36"]
    assert _aws.supported_versions(dt.date(2026, 12, 2), "STANDARD") == ["1.35", "1.36"]
    assert "1.33" in _aws.supported_versions(dt.date(2026, 12, 1), "EXTENDED")


def test_service_trust_policy_with_confused_deputy_conditions() -> None:
    (statement,) = json.loads(
        _aws.service_trust_policy(
            "vpc-flow-logs.amazonaws.com", source_account="123456789012", source_arn="arn:x"
        )
    )["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnLike": {"aws:SourceArn": "arn:x"},
        },
    }
    (eks,) = json.loads(_aws.service_trust_policy("eks.amazonaws.com", tag_session=True))[
        "Statement"
    ]
    assert eks["Action"] == ["sts:AssumeRole", "sts:TagSession"] and "Condition" not in eks


def test_account_context_builds_arns() -> None:
    context = _aws.AccountContext("aws", "123456789012", "eu-west-1")
    assert context.arn("logs", "log-group:x") == "arn:aws:logs:eu-west-1:123456789012:log-group:x"
    assert context.arn("iam", "role/r", regional=False) == "arn:aws:iam::123456789012:role/r"
    assert context.root == "arn:aws:iam::123456789012:root"
    assert context.managed_policy("service-role/X") == "arn:aws:iam::aws:policy/service-role/X"
