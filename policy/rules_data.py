"""Rules for the platform's data: the registry database on RDS and the Velero schedules.

The S3 rules (versioning, KMS, public access, TLS only) are in ``rules_s3`` and hold for
every bucket, the artifact and backup buckets included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_bool,
    as_list,
    chart_name,
    dig,
    is_unknown,
    mandatory_rule,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RELEASE = "kubernetes:helm.sh/v3:Release"
MIN_BACKUP_RETENTION_DAYS = 7
# A copy of components.services.backups.STATEFUL_NAMESPACES (the pack is published
# alone); a test holds the two equal.
STATEFUL_NAMESPACES = ("vault", "monitoring", "mlflow", "ml-serving")


def _flag(props: Mapping[str, Any], key: str, message: str, *, want: bool) -> list[str]:
    value = as_bool(dig(props, key))
    if value is None:
        return []
    return [] if value is want else [message]


def _encrypted(_: str, props: Mapping[str, Any]) -> list[str]:
    return _flag(
        props,
        "storageEncrypted",
        "storageEncrypted is off: the registry's data and its snapshots are readable on disk",
        want=True,
    )


def _private(_: str, props: Mapping[str, Any]) -> list[str]:
    return _flag(
        props,
        "publiclyAccessible",
        "publiclyAccessible is on: the database gets a public address",
        want=False,
    )


def _retention(_: str, props: Mapping[str, Any]) -> list[str]:
    days = dig(props, "backupRetentionPeriod")
    if is_unknown(days):
        return []
    if days is MISSING or not isinstance(days, int | float) or days < MIN_BACKUP_RETENTION_DAYS:
        shown = "unset (1 day)" if days is MISSING else repr(days)
        return [
            f"backupRetentionPeriod is {shown}: keep at least {MIN_BACKUP_RETENTION_DAYS} days "
            "of point-in-time backups"
        ]
    return []


def _deletion_protection(_: str, props: Mapping[str, Any]) -> list[str]:
    return _flag(
        props,
        "deletionProtection",
        "deletionProtection is off: one `pulumi destroy` deletes the registry database",
        want=True,
    )


def _schedules(_: str, props: Mapping[str, Any]) -> list[str]:
    if chart_name(props) != "velero":
        return []
    schedules = dig(props, "values", "schedules")
    if is_unknown(schedules):
        return []
    covered: set[str] = set()
    if isinstance(schedules, Mapping):
        for schedule in schedules.values():
            if not isinstance(schedule, Mapping) or as_bool(schedule.get("disabled")) is True:
                continue
            template = dig(schedule, "template")
            covered |= {str(ns) for ns in as_list(dig(template, "includedNamespaces"))}
    missing = [ns for ns in STATEFUL_NAMESPACES if ns not in covered and "*" not in covered]
    return [f"no Velero schedule backs up namespace {ns!r}" for ns in missing]


RULES: list[ResourceRule] = [
    mandatory_rule(
        "rds-storage-encrypted",
        {RDS_INSTANCE},
        "RDS instances encrypt their storage (storageEncrypted).",
        "Unencrypted volumes and snapshots expose the model registry to anyone with the disk.",
        "AWS Security Hub RDS.3; Checkov CKV_AWS_16",
        _encrypted,
    ),
    mandatory_rule(
        "rds-not-public",
        {RDS_INSTANCE},
        "RDS instances are not publicly accessible.",
        "A public address puts the registry's database one leaked password from the internet.",
        "AWS Security Hub RDS.2; Checkov CKV_AWS_17",
        _private,
    ),
    mandatory_rule(
        "rds-backup-retention",
        {RDS_INSTANCE},
        f"RDS instances keep at least {MIN_BACKUP_RETENTION_DAYS} days of automated backups.",
        "Point-in-time restore only reaches back as far as the retention; a bad migration "
        "found a week later must still be recoverable.",
        "AWS Security Hub RDS.11; AWS Backup best practices",
        _retention,
    ),
    ResourceRule(
        "rds-deletion-protection",
        "advisory",
        frozenset({RDS_INSTANCE}),
        "RDS instances have deletion protection (the prod stack turns it on).",
        "Deletion protection stops a mistaken destroy; a dev stack may opt out by config.",
        "AWS Security Hub RDS.8; Checkov CKV_AWS_293",
        _deletion_protection,
    ),
    mandatory_rule(
        "velero-schedules-stateful-namespaces",
        {RELEASE},
        "The Velero release has a schedule for each stateful namespace "
        "(vault, monitoring, mlflow, ml-serving).",
        "A namespace no schedule includes is never backed up, and nobody notices until a "
        "restore is needed.",
        "Velero docs (Schedules); the platform's RPO (docs/data.md)",
        _schedules,
    ),
]
