"""The backups in the composed stacks: the Vault snapshot CronJob's config keys and their
errors, what both plans build from them (a valid CronJob writing to Velero's bucket, whose
lifecycle keeps the snapshots as long as configured), and the EBS key Velero is granted
matching the StorageClass it snapshots."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import KEYS, ConfigError, parse_settings
from infra.offline import CapturedResource, ProgramRun
from infra.offline.report import run_plan
from infra.offline.stack_file import load_stack_config
from tests.components.support import assert_valid
from tests.offline_support import ROOT

CRONJOB = "kubernetes:batch/v1:CronJob"
SNAPSHOT_KEYS = [
    "backups.vaultSnapshotRetentionDays",
    "backups.vaultSnapshotRpoHours",
    "backups.vaultSnapshotSchedule",
]


def raw_for(stack: str, **backups: Any) -> dict[str, Any]:
    config = load_stack_config(stack, root=ROOT)
    prefix = "mlplatform:"
    raw = {k[len(prefix) :]: v for k, v in config.values.items() if k.startswith(prefix)}
    if backups:
        raw["backups"] = json.dumps({**json.loads(raw["backups"]), **backups})
    return raw


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> tuple[str, ProgramRun]:
    return request.param, run_plan(request.param, root=ROOT).run


def test_the_stacks_set_their_snapshots() -> None:
    dev = parse_settings(raw_for("dev")).backups
    prod = parse_settings(raw_for("prod")).backups
    assert (dev.vault_snapshot_schedule, prod.vault_snapshot_schedule) == (
        "30 */6 * * *",
        "15 * * * *",
    )
    assert (dev.vault_snapshot_retention_days, prod.vault_snapshot_retention_days) == (7, 30)
    assert (dev.vault_snapshot_rpo_hours, prod.vault_snapshot_rpo_hours) == (7, 2)


@pytest.mark.parametrize(
    ("backups", "expected"),
    [
        (
            {"vaultSnapshotSchedule": "hourly"},
            "mlplatform:backups.vaultSnapshotSchedule: 'hourly' must be a five-field cron",
        ),
        (
            {"vaultSnapshotRetentionDays": 0},
            "mlplatform:backups.vaultSnapshotRetentionDays: 0 must be whole days from 1 to 3650",
        ),
        (
            {"vaultSnapshotRetentionDays": 4000},
            "mlplatform:backups.vaultSnapshotRetentionDays: 4000 must be whole days",
        ),
        (
            {"vaultSnapshotRpoHours": 0},
            "mlplatform:backups.vaultSnapshotRpoHours: 0 must be at least 1",
        ),
        ({"vaultSnapshotRpoHours": "soon"}, "mlplatform:backups.vaultSnapshotRpoHours:"),
        (
            {"vaultSnapshotSchedul": "0 * * * *"},
            "mlplatform:backups.vaultSnapshotSchedul: unknown key (did you mean "
            "'vaultSnapshotSchedule'?)",
        ),
    ],
)
def test_bad_snapshot_values_name_their_key(backups: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw_for("prod", **backups))
    assert expected in str(info.value)


def test_every_snapshot_key_is_declared_shown_and_documented() -> None:
    assert sorted(k for k in KEYS if k.startswith("backups.vaultSnapshot")) == SNAPSHOT_KEYS
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    rows = (ROOT / "docs" / "configuration.md").read_text()
    for key in SNAPSHOT_KEYS:
        assert schema[key]["type"] == KEYS[key], key
        assert f"| `{key}` | {KEYS[key]} |" in rows, key
        for stack in ("dev", "prod"):
            document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
            assert key.split(".")[1] in document["config"]["mlplatform:backups"], (stack, key)


def _one(run: ProgramRun, type_token: str, name_part: str) -> CapturedResource:
    (found,) = [r for r in run.by_type(type_token) if name_part in r.name]
    return found


def test_each_plan_snapshots_vault_into_the_backup_bucket(stack) -> None:
    name, run = stack
    settings = parse_settings(raw_for(name)).backups
    (cronjob,) = run.by_type(CRONJOB)
    manifest = {"apiVersion": "batch/v1", "kind": "CronJob", **cronjob.inputs}
    assert_valid(manifest)
    assert manifest["spec"]["schedule"] == settings.vault_snapshot_schedule
    assert manifest["spec"]["concurrencyPolicy"] == "Forbid"
    bucket = _one(run, "aws:s3/bucket:Bucket", "-backups-")
    key = _one(run, "aws:kms/key:Key", "-backups-")
    (upload,) = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in upload["env"]}
    assert env["BUCKET"] == bucket.outputs["bucket"] and env["KMS_KEY_ARN"] == key.outputs["arn"]
    policy = json.loads(
        _one(run, "aws:iam/rolePolicy:RolePolicy", "vault-snapshots").inputs["policy"]
    )
    assert [(s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        ("s3:PutObject", f"{bucket.outputs['arn']}/vault-snapshots/*"),
        ("kms:GenerateDataKey", key.outputs["arn"]),
    ]
    # The job waits for Vault's release (its namespace and its CA Secret).
    (vault,) = [
        r for r in run.by_type("kubernetes:helm.sh/v3:Release") if r.name.endswith("-vault-release")
    ]
    (component,) = run.by_type("mlplatform:index:VaultSnapshots")
    assert vault.urn in component.dependencies
    lifecycle = _one(
        run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "-backups-"
    )
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["expire-vault-snapshots"]["filter"] == {"prefix": "vault-snapshots/"}
    assert rules["expire-vault-snapshots"]["expiration"] == {
        "days": settings.vault_snapshot_retention_days
    }


def test_velero_is_granted_the_key_the_storage_class_encrypts_with(stack) -> None:
    """The StorageClass names no kmsKeyId (the account's EBS default key, which EBS may use
    for any principal of the account), so Velero holds no key grant; were a key named,
    Velero would need exactly that key."""
    _, run = stack
    (storage,) = run.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
    parameters = storage.inputs["parameters"]
    assert parameters["encrypted"] == "true"
    volume_key = parameters.get("kmsKeyId")
    policy = json.loads(_one(run, "aws:iam/rolePolicy:RolePolicy", "backups-irsa").inputs["policy"])
    granted = [s for s in policy["Statement"] if s["Sid"].startswith("VolumeKey")]
    if volume_key is None:
        assert granted == []
    else:
        assert {s["Resource"] for s in granted} == {volume_key} and len(granted) == 2


def test_the_job_reaches_vault_without_joining_the_injectors_namespaces(stack) -> None:
    _, run = stack
    (vault,) = [
        r for r in run.by_type("kubernetes:helm.sh/v3:Release") if r.name.endswith("-vault-release")
    ]
    values = vault.inputs["values"]
    api_rule = values["server"]["networkPolicy"]["ingress"][0]
    (admitted,) = api_rule["from"][0]["namespaceSelector"]["matchExpressions"]
    assert "vault" in admitted["values"] and api_rule["ports"] == [
        {"port": 8200, "protocol": "TCP"}
    ]
    # The injector's webhook fails closed: Vault's own namespace must stay out of it.
    webhook = values["injector"]["webhook"]["namespaceSelector"]["matchExpressions"][0]
    assert "vault" not in webhook["values"]


def test_no_vault_no_snapshot_job(tmp_path) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["mlplatform:vault"] = {"enabled": False}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    plan = run_plan("dev", path, root=ROOT)
    assert not plan.run.by_type(CRONJOB)
    assert not plan.run.by_type("mlplatform:index:VaultSnapshots")
    assert not [v for v in plan.violations if v.level == "mandatory"]
