"""Velero on the mock engine: the pinned chart with documented values, the custom
resources it renders checked against the CRDs, IRSA, and the backup bucket."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from components._validate import ValidationError
from components.services import backups as velero
from components.services.backups import Backups, BackupsArgs, validate_backups_args
from infra.offline import ProgramRun
from tests.components.layout import problems, values_problems
from tests.components.services import velero_layout as documented
from tests.components.support import one, plan

ARGS = BackupsArgs(
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X",
    oidc_issuer="https://oidc.example/id/X",
    ttl_hours=2160,
)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: Backups("bk", ARGS))


def _values(run: ProgramRun) -> dict:
    return one(run, "kubernetes:helm.sh/v3:Release").inputs["values"]


def test_the_chart_is_pinned_and_its_values_documented(run) -> None:
    release = one(run, "kubernetes:helm.sh/v3:Release").inputs
    pin = velero.VELERO_CHART
    assert (pin.repository, pin.chart, pin.version) == documented.CHART
    assert release["chart"] == "velero" and release["version"] == "12.1.0"
    assert release["namespace"] == "velero" and release["atomic"] is True
    values = _values(run)
    assert values_problems(values, documented.VALUES, chart="velero 12.1.0") == []
    config = values["configuration"]
    for name, allowed in documented.LOCATION_ITEMS.items():
        for item in config[name]:
            assert set(item) <= allowed, name
    for schedule in values["schedules"].values():
        assert set(schedule) <= documented.SCHEDULE_KEYS


def test_a_misspelt_value_is_caught() -> None:
    found = values_problems({"credentials": {"useSecrets": False}}, documented.VALUES)
    assert found == ["credentials.useSecrets: not a key the chart documents"]
    bad = {"schedule": "0 3 * * *", "template": {"ttl": "1h", "paused": True}}
    assert problems(bad, documented.SCHEDULE_SPEC) == ["template.paused: unknown field"]


def test_one_schedule_per_stateful_namespace_with_its_ttl(run) -> None:
    schedules = documented.rendered_schedules(_values(run), velero.RELEASE)
    assert set(schedules) == {
        f"velero-{ns}" for ns in ("vault", "monitoring", "mlflow", "ml-serving")
    }
    for name, spec in schedules.items():
        assert problems(spec, documented.SCHEDULE_SPEC) == [], name
        assert spec["template"]["includedNamespaces"] == [name.removeprefix("velero-")]
        assert spec["template"]["ttl"] == "2160h0m0s"
        assert spec["schedule"] == "0 3 * * *"
        assert name == velero.schedule_name(name.removeprefix("velero-"))


def test_the_locations_are_aws_on_the_backup_bucket(run) -> None:
    config = _values(run)["configuration"]
    (bsl,) = config["backupStorageLocation"]
    (vsl,) = config["volumeSnapshotLocation"]
    bucket = one(run, "aws:s3/bucket:Bucket").outputs["bucket"]
    spec = documented.rendered_bsl(bsl)
    assert problems(spec, documented.BSL_SPEC) == []
    assert spec["objectStorage"] == {"bucket": bucket, "prefix": "velero"}
    assert spec["provider"] == "aws" and spec["default"] is True
    assert set(spec["config"]) <= documented.BSL_CONFIG_KEYS
    assert spec["config"]["region"] == "us-west-2"
    snapshots = documented.rendered_vsl(vsl)
    assert problems(snapshots, documented.VSL_SPEC) == []
    assert (
        set(snapshots["config"]) <= documented.VSL_CONFIG_KEYS and "region" in snapshots["config"]
    )


def test_irsa_with_the_plugins_documented_policy_scoped_to_the_bucket(run) -> None:
    values = _values(run)
    assert values["credentials"] == {"useSecret": False}
    account = values["serviceAccount"]["server"]
    assert account["name"] == velero.SERVICE_ACCOUNT
    assert account["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    (plugin,) = values["initContainers"]
    assert plugin["image"].endswith("velero-plugin-for-aws:v1.14.2")
    assert plugin["volumeMounts"] == [{"mountPath": "/target", "name": "plugins"}]
    role = one(run, "aws:iam/role:Role").inputs
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:velero:velero-server" in trust.values()
    policy = json.loads(one(run, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    bucket = one(run, "aws:s3/bucket:Bucket").outputs["arn"]
    assert statements["Snapshots"]["Resource"] == "*"
    assert "ec2:CreateSnapshot" in statements["Snapshots"]["Action"]
    assert statements["Objects"]["Resource"] == f"{bucket}/velero/*"
    assert statements["List"]["Resource"] == bucket
    assert statements["BucketKey"]["Resource"] == one(run, "aws:kms/key:Key").outputs["arn"]


def test_the_backup_bucket_keeps_old_versions_as_long_as_a_backup(run) -> None:
    rules = one(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ]
    by_id = {r["id"]: r for r in rules}
    assert set(by_id) == {"noncurrent-versions", "expire-vault-snapshots"}
    rule = by_id["noncurrent-versions"]
    assert rule["filter"] == {} and rule["noncurrentVersionExpiration"]["noncurrentDays"] == 90
    # Vault's snapshots are current for their retention, then non-current like the rest.
    snapshots = by_id["expire-vault-snapshots"]
    assert snapshots["status"] == "Enabled"
    assert snapshots["filter"] == {"prefix": "vault-snapshots/"}
    assert snapshots["expiration"] == {"days": ARGS.vault_snapshot_retention_days}
    assert "noncurrentVersionExpiration" not in snapshots
    (sse,) = one(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).inputs["rules"]
    assert (
        sse["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
        == one(run, "aws:kms/key:Key").outputs["arn"]
    )
    ns = one(run, "kubernetes:core/v1:Namespace").inputs["metadata"]
    assert ns["name"] == "velero"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": "daily"}, "schedule"),
        ({"ttl_hours": 1}, "ttl_hours"),
        ({"namespaces": ()}, "namespaces"),
        ({"namespaces": ("mlflow", "mlflow")}, "namespaces"),
        ({"namespaces": ("Not_A_Namespace",)}, "namespaces"),
        ({"vault_snapshot_retention_days": 0}, "vault_snapshot_retention_days"),
        ({"vault_snapshot_retention_days": 4000}, "vault_snapshot_retention_days"),
    ],
)
def test_bad_arguments_name_their_field(change: dict, field: str) -> None:
    assert [p.field for p in validate_backups_args(replace(ARGS, **change))] == [field]
    with pytest.raises(ValidationError, match=field):
        Backups("bk", replace(ARGS, **change))


def test_no_customer_key_on_the_volumes_means_no_key_grant(run) -> None:
    """The StorageClass Velero snapshots leaves the key to the account's EBS default, so
    the role holds no KMS permission beyond the bucket key's."""
    policy = json.loads(one(run, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    kms = [s for s in policy["Statement"] if any(a.startswith("kms:") for a in _actions(s))]
    assert [s["Sid"] for s in kms] == ["BucketKey"]
    assert kms[0]["Resource"] == one(run, "aws:kms/key:Key").outputs["arn"]


VOLUME_KEY = "arn:aws:kms:us-west-2:123456789012:key/0b1c2d3e-1111-2222-3333-444455556666"


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_volumes_on_a_customer_key_get_exactly_the_documented_use_of_that_key() -> None:
    run = plan(lambda: Backups("bk", replace(ARGS, volume_kms_key_arn=VOLUME_KEY)))
    policy = json.loads(one(run, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    grants, use = statements["VolumeKeyGrants"], statements["VolumeKey"]
    assert grants == {
        "Sid": "VolumeKeyGrants",
        "Effect": "Allow",
        "Action": "kms:CreateGrant",
        "Resource": VOLUME_KEY,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }
    assert sorted(_actions(use)) == [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    ]
    assert use["Resource"] == VOLUME_KEY and "Condition" not in use
    # Nothing else in the policy touches KMS on any other resource, and nothing on "*".
    for statement in policy["Statement"]:
        if any(a.startswith("kms:") for a in _actions(statement)):
            assert statement["Resource"] != "*", statement["Sid"]
    assert velero.velero_policy("b", "k")["Statement"] == [
        s
        for s in velero.velero_policy("b", "k", VOLUME_KEY)["Statement"]
        if not s["Sid"].startswith("VolumeKey")
    ]
