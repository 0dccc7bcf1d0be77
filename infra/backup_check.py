"""Are the backups fresh enough? One line per schedule and one for the registry database.

``python -m infra.backup_check --stack STACK --bucket BUCKET --db-instance ID [--json]``
(``BUCKET``: ``pulumi stack output backupBucket``; ``ID``: the first label of
``pulumi stack output mlflowDatabaseEndpoint``). It reads the stack's recovery point
objectives (``backups.rpoHours``, ``backups.databaseRpoMinutes``) through
``infra.config`` and, with the caller's AWS credentials:

- for each Velero schedule (one per stateful namespace), the newest backup whose
  ``velero-backup.json`` in the bucket says ``Completed``, against ``backups.rpoHours``;
- for the RDS instance, its latest restorable time, against ``backups.databaseRpoMinutes``;
- when the stack runs Vault, the newest raft snapshot the CronJob wrote under
  ``vault-snapshots/`` in the same bucket, against ``backups.vaultSnapshotRpoHours``.

Exit 0 when everything is within its objective, 1 with a line per breach (a stale or
missing backup, a missing bucket or instance, access denied), 2 for usage or config.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from components.services.backups import (
    PREFIX,
    STATEFUL_NAMESPACES,
    VAULT_SNAPSHOT_PREFIX,
    schedule_name,
)

SCHEDULE_LABEL = "velero.io/schedule-name"


@dataclass(frozen=True)
class Finding:
    """One backup's freshness: ``age_s`` is None when there is nothing to measure."""

    subject: str
    ok: bool
    age_s: float | None
    objective_s: float
    message: str


def _age(now: dt.datetime, then: dt.datetime) -> float:
    return (now - then).total_seconds()


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _measured(subject: str, age: float, objective: float, what: str, limit: str) -> Finding:
    ok = age <= objective
    verdict = "within" if ok else "older than"
    return Finding(subject, ok, age, objective, f"{what}, {verdict} the RPO of {limit}")


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def newest_completed(s3: Any, bucket: str) -> dict[str, dt.datetime]:
    """Schedule name -> completion time of its newest Completed backup in ``bucket``."""
    newest: dict[str, dt.datetime] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{PREFIX}/backups/", Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            key = f"{common['Prefix']}velero-backup.json"
            try:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                if _error_code(exc) in ("NoSuchKey", "404"):
                    continue  # a backup still being written has no metadata yet
                raise
            backup = json.loads(body)
            status = backup.get("status") or {}
            schedule = (backup.get("metadata", {}).get("labels") or {}).get(SCHEDULE_LABEL)
            if status.get("phase") != "Completed" or not schedule:
                continue
            done = _parse_time(status["completionTimestamp"])
            if schedule not in newest or done > newest[schedule]:
                newest[schedule] = done
    return newest


def _unreadable(exc: Exception, bucket: str, needs: str) -> str:
    code = _error_code(exc)
    if code == "NoSuchBucket":
        return f"backup bucket {bucket} does not exist"
    if code in ("AccessDenied", "403"):
        return f"access denied reading backup bucket {bucket} (needs {needs})"
    return f"cannot read backup bucket {bucket}: {code}"


def check_velero(
    s3: Any, bucket: str, *, namespaces: tuple[str, ...], rpo_hours: int, now: dt.datetime
) -> list[Finding]:
    """A finding per namespace's schedule; a single breach when the bucket is unreadable."""
    objective = rpo_hours * 3600.0
    try:
        newest = newest_completed(s3, bucket)
    except Exception as exc:
        needs = f"s3:ListBucket and s3:GetObject on {PREFIX}/backups/*"
        why = _unreadable(exc, bucket, needs)
        return [Finding(f"bucket {bucket}", False, None, objective, why)]
    findings: list[Finding] = []
    for ns in namespaces:
        name = schedule_name(ns)
        done = newest.get(name)
        if done is None:
            findings.append(
                Finding(name, False, None, objective, f"{name}: no completed backup in {bucket}")
            )
            continue
        age = _age(now, done)
        what = f"{name}: newest completed backup is {_hours(age)} old"
        findings.append(_measured(name, age, objective, what, f"{rpo_hours} h"))
    return findings


def newest_snapshot(s3: Any, bucket: str) -> tuple[str, dt.datetime] | None:
    """The key and upload time of the newest non-empty object under ``vault-snapshots/``
    (an empty one is no snapshot), or None."""
    newest: tuple[str, dt.datetime] | None = None
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{VAULT_SNAPSHOT_PREFIX}/"):
        for item in page.get("Contents", []):
            if not item.get("Size"):
                continue
            written = item["LastModified"]
            if written.tzinfo is None:
                written = written.replace(tzinfo=dt.UTC)
            if newest is None or written > newest[1]:
                newest = (item["Key"], written)
    return newest


def check_vault_snapshots(s3: Any, bucket: str, *, rpo_hours: int, now: dt.datetime) -> Finding:
    """The newest Vault raft snapshot in ``bucket`` against ``rpo_hours``."""
    objective = rpo_hours * 3600.0
    subject = "vault-snapshot"
    try:
        newest = newest_snapshot(s3, bucket)
    except Exception as exc:
        why = _unreadable(exc, bucket, f"s3:ListBucket on {VAULT_SNAPSHOT_PREFIX}/")
        return Finding(subject, False, None, objective, f"{subject}: {why}")
    if newest is None:
        why = f"{subject}: no snapshot under {VAULT_SNAPSHOT_PREFIX}/ in {bucket}"
        return Finding(subject, False, None, objective, why)
    key, written = newest
    age = _age(now, written)
    what = f"{subject}: newest snapshot {key} is {_hours(age)} old"
    return _measured(subject, age, objective, what, f"{rpo_hours} h")


def check_database(rds: Any, instance: str, *, rpo_minutes: int, now: dt.datetime) -> Finding:
    """The RDS instance's latest restorable time against ``rpo_minutes``."""
    objective = rpo_minutes * 60.0
    subject = f"rds {instance}"
    try:
        (db,) = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"]
    except Exception as exc:
        code = _error_code(exc)
        why = {
            "DBInstanceNotFound": f"{subject}: no such instance",
            "DBInstanceNotFoundFault": f"{subject}: no such instance",
            "AccessDenied": f"{subject}: access denied (needs rds:DescribeDBInstances)",
        }.get(code, f"{subject}: cannot describe the instance: {code}")
        return Finding(subject, False, None, objective, why)
    if not db.get("BackupRetentionPeriod"):
        return Finding(subject, False, None, objective, f"{subject}: automated backups are off")
    latest = db.get("LatestRestorableTime")
    if latest is None:
        return Finding(subject, False, None, objective, f"{subject}: no restorable time yet")
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=dt.UTC)
    age = _age(now, latest)
    what = f"{subject}: latest restorable time is {age / 60:.0f} min ago"
    return _measured(subject, age, objective, what, f"{rpo_minutes} min")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.backup_check",
        description="Check the age of the newest backups against the stack's RPO.",
    )
    parser.add_argument("--stack", required=True, help="read the RPOs from Pulumi.<stack>.yaml")
    parser.add_argument("--bucket", required=True, help="the Velero backup bucket")
    parser.add_argument("--db-instance", required=True, help="the registry's RDS identifier")
    parser.add_argument("--region", help="AWS region (default: the stack's aws:region)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None, *, now: dt.datetime | None = None) -> int:
    """Run the check; return 0 within every objective, 1 on a breach, 2 on usage errors."""
    args = _parser().parse_args(argv)  # exits 2 on usage errors
    from infra.config import ConfigError, stack_settings
    from infra.offline.stack_file import PlanInputError, load_stack_config

    try:
        settings = stack_settings(args.stack)
        region = args.region or str(load_stack_config(args.stack).values.get("aws:region", ""))
    except (ConfigError, PlanInputError) as exc:
        print(f"backup_check: {exc}", file=sys.stderr)
        return 2
    if not region:
        print("backup_check: no region: pass --region or set aws:region", file=sys.stderr)
        return 2
    import boto3

    moment = now or dt.datetime.now(dt.UTC)
    findings = check_velero(
        boto3.client("s3", region_name=region),
        args.bucket,
        namespaces=STATEFUL_NAMESPACES,
        rpo_hours=settings.backups.rpo_hours,
        now=moment,
    )
    findings.append(
        check_database(
            boto3.client("rds", region_name=region),
            args.db_instance,
            rpo_minutes=settings.backups.database_rpo_minutes,
            now=moment,
        )
    )
    if settings.vault_enabled:
        findings.append(
            check_vault_snapshots(
                boto3.client("s3", region_name=region),
                args.bucket,
                rpo_hours=settings.backups.vault_snapshot_rpo_hours,
                now=moment,
            )
        )
    if args.json:
        print(json.dumps({"findings": [asdict(f) for f in findings]}, indent=2))
    else:
        for finding in findings:
            print(("ok     " if finding.ok else "BREACH ") + finding.message)
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
