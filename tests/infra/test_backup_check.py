"""The backup check against moto's S3 and RDS: fresh, stale and missing backups, a missing
bucket, access denied, and the database's latest restorable time."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from infra import backup_check
from infra.backup_check import check_database, check_vault_snapshots, check_velero

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
NAMESPACES = ("vault", "monitoring", "mlflow", "ml-serving")
BUCKET = "backups"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-west-2")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        yield s3, boto3.client("rds", region_name="us-west-2")


def put_backup(
    s3, schedule: str, hours_ago: float, phase: str = "Completed", at: dt.datetime = NOW
) -> None:
    done = at - dt.timedelta(hours=hours_ago)
    name = f"{schedule}-{done:%Y%m%d%H%M%S}"
    backup = {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {"name": name, "labels": {"velero.io/schedule-name": schedule}},
        "status": {
            "phase": phase,
            "completionTimestamp": done.strftime("%Y-%m-%dT%H:%M:%SZ")
            if phase == "Completed"
            else None,
        },
    }
    s3.put_object(
        Bucket=BUCKET, Key=f"velero/backups/{name}/velero-backup.json", Body=json.dumps(backup)
    )


def test_fresh_backups_of_every_schedule_pass(aws) -> None:
    s3, _ = aws
    for ns in NAMESPACES:
        put_backup(s3, f"velero-{ns}", hours_ago=30)  # an older one...
        put_backup(s3, f"velero-{ns}", hours_ago=2)  # ...and the newest
    findings = check_velero(s3, BUCKET, namespaces=NAMESPACES, rpo_hours=26, now=NOW)
    assert [f.ok for f in findings] == [True] * 4
    assert findings[0].age_s == 2 * 3600
    assert findings[0].message == (
        "velero-vault: newest completed backup is 2.0 h old, within the RPO of 26 h"
    )


def test_a_stale_a_failed_and_a_missing_schedule_each_breach(aws) -> None:
    s3, _ = aws
    put_backup(s3, "velero-vault", hours_ago=2)
    put_backup(s3, "velero-monitoring", hours_ago=40)
    put_backup(s3, "velero-mlflow", hours_ago=1, phase="PartiallyFailed")
    put_backup(s3, "velero-mlflow", hours_ago=50)
    s3.put_object(Bucket=BUCKET, Key="velero/backups/in-flight/velero-backup.json.tmp", Body=b"")
    findings = {
        f.subject: f for f in check_velero(s3, BUCKET, namespaces=NAMESPACES, rpo_hours=26, now=NOW)
    }
    assert findings["velero-vault"].ok
    assert not findings["velero-monitoring"].ok
    assert "40.0 h old, older than the RPO of 26 h" in findings["velero-monitoring"].message
    assert not findings["velero-mlflow"].ok and findings["velero-mlflow"].age_s == 50 * 3600
    assert (
        findings["velero-ml-serving"].message == "velero-ml-serving: no completed backup in backups"
    )


def test_a_missing_bucket_is_one_clear_breach(aws) -> None:
    s3, _ = aws
    (finding,) = check_velero(s3, "nope", namespaces=NAMESPACES, rpo_hours=26, now=NOW)
    assert not finding.ok and finding.message == "backup bucket nope does not exist"


def test_access_denied_is_one_clear_breach(aws) -> None:
    from botocore.exceptions import ClientError

    s3, _ = aws
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")
    with mock.patch.object(s3, "get_paginator", side_effect=denied):
        (finding,) = check_velero(s3, BUCKET, namespaces=NAMESPACES, rpo_hours=26, now=NOW)
    assert not finding.ok
    assert finding.message.startswith("access denied reading backup bucket backups")


def _database(rds, retention: int = 7) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier="registry",
        Engine="postgres",
        DBInstanceClass="db.t4g.medium",
        AllocatedStorage=20,
        MasterUsername="mlflow",
        MasterUserPassword="x" * 20,
        BackupRetentionPeriod=retention,
    )


def test_the_database_restorable_time_against_its_rpo(aws) -> None:
    _, rds = aws
    _database(rds)
    now = dt.datetime.now(dt.UTC)
    fresh = check_database(rds, "registry", rpo_minutes=15, now=now + dt.timedelta(minutes=1))
    assert fresh.ok and "within the RPO of 15 min" in fresh.message
    stale = check_database(rds, "registry", rpo_minutes=15, now=now + dt.timedelta(hours=2))
    assert not stale.ok and "older than the RPO of 15 min" in stale.message
    missing = check_database(rds, "ghost", rpo_minutes=15, now=now)
    assert not missing.ok and missing.message == "rds ghost: no such instance"


def test_a_database_without_automated_backups_breaches(aws) -> None:
    _, rds = aws
    _database(rds, retention=0)
    finding = check_database(rds, "registry", rpo_minutes=15, now=dt.datetime.now(dt.UTC))
    assert not finding.ok and finding.message == "rds registry: automated backups are off"


def test_the_cli_reads_the_stack_rpo_and_exits_one_per_breach(aws, capsys) -> None:
    s3, rds = aws
    _database(rds)
    now = dt.datetime.now(dt.UTC)
    for ns in NAMESPACES:
        put_backup(s3, f"velero-{ns}", hours_ago=8, at=now)
    put_snapshot(s3, hours_ago=3, at=now)
    argv = ["--bucket", BUCKET, "--db-instance", "registry"]
    # dev's RPO is 26 h: a backup 8 h old is fine; prod's is 7 h: it breaches there.
    # Vault's snapshot RPO is 7 h in dev and 2 h in prod: one 3 h old passes, resp. breaches.
    assert backup_check.main(["--stack", "dev", *argv], now=now) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6 and all(line.startswith("ok ") for line in out)
    assert out[-1].startswith("ok     vault-snapshot: newest snapshot vault-snapshots/")
    assert backup_check.main(["--stack", "prod", *argv, "--json"], now=now) == 1
    document = json.loads(capsys.readouterr().out)
    by_subject = {f["subject"]: f for f in document["findings"]}
    assert not by_subject["velero-mlflow"]["ok"]
    assert by_subject["velero-mlflow"]["objective_s"] == 7 * 3600
    assert by_subject["rds registry"]["ok"]
    assert not by_subject["vault-snapshot"]["ok"]
    assert by_subject["vault-snapshot"]["objective_s"] == 2 * 3600


def test_usage_and_config_errors_exit_two(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        backup_check.main(["--stack", "dev"])
    assert exit_.value.code == 2
    assert backup_check.main(["--stack", "nosuch", "--bucket", "b", "--db-instance", "d"]) == 2
    assert "backup_check:" in capsys.readouterr().err


def put_snapshot(s3, hours_ago: float, at: dt.datetime = NOW, body: bytes = b"raft") -> str:
    """Upload a snapshot as the CronJob names it, dated ``hours_ago`` before ``at`` (moto
    stamps objects with the real clock, so the clock is frozen for the upload)."""
    written = at - dt.timedelta(hours=hours_ago)
    key = f"vault-snapshots/{written:%Y%m%dT%H%M%SZ}.snap"
    with mock.patch("moto.s3.models.utcnow", return_value=written.replace(tzinfo=None)):
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def test_a_fresh_vault_snapshot_passes_and_the_newest_counts(aws) -> None:
    s3, _ = aws
    put_snapshot(s3, hours_ago=30)
    newest = put_snapshot(s3, hours_ago=1.5)
    put_snapshot(s3, hours_ago=0.5, body=b"")  # an empty object is no snapshot
    finding = check_vault_snapshots(s3, BUCKET, rpo_hours=2, now=NOW)
    assert finding.ok and finding.age_s == 1.5 * 3600
    assert finding.message == (
        f"vault-snapshot: newest snapshot {newest} is 1.5 h old, within the RPO of 2 h"
    )


def test_a_stale_vault_snapshot_breaches(aws) -> None:
    s3, _ = aws
    put_snapshot(s3, hours_ago=5)
    s3.put_object(Bucket=BUCKET, Key="velero/backups/x/velero-backup.json", Body=b"{}")
    finding = check_vault_snapshots(s3, BUCKET, rpo_hours=2, now=NOW)
    assert not finding.ok and finding.age_s == 5 * 3600
    assert "is 5.0 h old, older than the RPO of 2 h" in finding.message


def test_a_missing_vault_snapshot_breaches(aws) -> None:
    s3, _ = aws
    put_backup(s3, "velero-vault", hours_ago=1)  # Velero's backups are not snapshots
    finding = check_vault_snapshots(s3, BUCKET, rpo_hours=2, now=NOW)
    assert not finding.ok and finding.age_s is None
    assert finding.message == "vault-snapshot: no snapshot under vault-snapshots/ in backups"
    gone = check_vault_snapshots(s3, "nope", rpo_hours=2, now=NOW)
    assert not gone.ok and gone.message == "vault-snapshot: backup bucket nope does not exist"


def test_a_vault_snapshot_listing_denied_is_a_clear_breach(aws) -> None:
    from botocore.exceptions import ClientError

    s3, _ = aws
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")
    with mock.patch.object(s3, "get_paginator", side_effect=denied):
        finding = check_vault_snapshots(s3, BUCKET, rpo_hours=2, now=NOW)
    assert not finding.ok
    assert finding.message == (
        "vault-snapshot: access denied reading backup bucket backups "
        "(needs s3:ListBucket on vault-snapshots/)"
    )
