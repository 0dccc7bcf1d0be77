"""The data rules: RDS encryption, privacy, retention and deletion protection; a Velero
schedule per stateful namespace. Each with a compliant and a violating input."""

from __future__ import annotations

import pytest

from components.services.backups import STATEFUL_NAMESPACES
from policy import rules_data
from policy.rules import check_resource

RDS = "aws:rds/instance:Instance"
GOOD_DB = {
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 14.0,
    "deletionProtection": True,
}


OURS = {rule.name for rule in rules_data.RULES}


def _names(rtype: str, props: dict) -> list[str]:
    return sorted(f.policy for f in check_resource(rtype, props) if f.policy in OURS)


def test_a_compliant_database_passes() -> None:
    assert _names(RDS, GOOD_DB) == []


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"storageEncrypted": False}, "rds-storage-encrypted"),
        ({"publiclyAccessible": True}, "rds-not-public"),
        ({"backupRetentionPeriod": 3.0}, "rds-backup-retention"),
        ({"deletionProtection": False}, "rds-deletion-protection"),
    ],
)
def test_each_database_rule_catches_its_violation(change: dict, rule: str) -> None:
    assert _names(RDS, {**GOOD_DB, **change}) == [rule]


def test_unset_retention_is_a_violation() -> None:
    props = {k: v for k, v in GOOD_DB.items() if k != "backupRetentionPeriod"}
    assert _names(RDS, props) == ["rds-backup-retention"]


def _velero(schedules: dict) -> dict:
    return {"chart": "velero", "values": {"schedules": schedules}}


def test_a_schedule_per_stateful_namespace_passes_and_a_gap_is_named() -> None:
    full = {
        ns: {"schedule": "0 3 * * *", "template": {"includedNamespaces": [ns]}}
        for ns in STATEFUL_NAMESPACES
    }
    release = "kubernetes:helm.sh/v3:Release"
    assert _names(release, _velero(full)) == []
    gap = {k: v for k, v in full.items() if k != "mlflow"}
    gap["vault"] = {**full["vault"], "disabled": True}
    findings = [f for f in check_resource(release, _velero(gap)) if f.policy in OURS]
    assert sorted(f.message for f in findings) == [
        "no Velero schedule backs up namespace 'mlflow'",
        "no Velero schedule backs up namespace 'vault'",
    ]
    assert _names(release, {"chart": "grafana", "values": {}}) == []


def test_the_packs_copy_of_the_stateful_namespaces_is_the_components() -> None:
    assert rules_data.STATEFUL_NAMESPACES == STATEFUL_NAMESPACES
