"""The Vault raft snapshot CronJob on the mock engine: a strictly valid, restricted
CronJob, a login token minted for Vault alone, TLS against the internal CA, an upload
role that can only add objects under its prefix, and a NetworkPolicy no wider than the
job needs."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from components._validate import ValidationError
from components.services import vault_snapshots as snap
from components.services.backups_iam import snapshot_writer_policy
from components.services.vault_access import SNAPSHOT
from components.services.vault_server import SERVER_LABELS, TLS_SECRET, VAULT_IMAGE
from components.services.vault_snapshots import (
    VaultSnapshots,
    VaultSnapshotsArgs,
    validate_vault_snapshots_args,
)
from infra.offline import ProgramRun
from policy.rules import check_resource
from tests.components.support import assert_valid, one, plan

BUCKET_ARN = "arn:aws:s3:::mlplatform-backups-1234"
KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"
ARGS = VaultSnapshotsArgs(
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X",
    oidc_issuer="https://oidc.example/id/X",
    bucket="mlplatform-backups-1234",
    bucket_arn=BUCKET_ARN,
    key_arn=KEY_ARN,
    schedule="15 * * * *",
    size_limit_gib=20,
)
CRONJOB = "kubernetes:batch/v1:CronJob"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: VaultSnapshots("vs", ARGS))


def manifest(run: ProgramRun) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", **one(run, CRONJOB).inputs}


def pod(run: ProgramRun) -> dict[str, Any]:
    return manifest(run)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_cronjob_is_valid_one_at_a_time_and_keeps_its_history(run) -> None:
    cronjob = manifest(run)
    assert_valid(cronjob)
    spec = cronjob["spec"]
    assert cronjob["metadata"]["namespace"] == "vault"
    assert spec["schedule"] == "15 * * * *" and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] == 1800
    labels = job["template"]["metadata"]["labels"]
    assert labels == snap.LABELS


def test_the_pod_is_restricted_pinned_and_bounded(run) -> None:
    spec = pod(run)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == SNAPSHOT.service_account
    (vault,) = spec["initContainers"]
    (upload,) = spec["containers"]
    assert vault["image"] == f"{VAULT_IMAGE[0]}:{VAULT_IMAGE[1]}" == "hashicorp/vault:2.0.4"
    assert upload["image"] == "public.ecr.aws/aws-cli/aws-cli:2.32.2"
    for container in (vault, upload):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"]["memory"]
        assert container["resources"]["requests"]["cpu"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["snapshots"]["emptyDir"] == {"sizeLimit": "20Gi"}
    # The policy pack's workload rules (restricted PSS, pinned images, resources) agree.
    assert check_resource(CRONJOB, one(run, CRONJOB).inputs) == []


def test_vault_is_reached_over_tls_with_a_token_minted_for_vault_only(run) -> None:
    spec = pod(run)
    (vault,) = spec["initContainers"]
    env = {e["name"]: e["value"] for e in vault["env"]}
    assert env["VAULT_ADDR"] == "https://vault-active.vault.svc:8200"
    assert env["VAULT_CACERT"] == "/vault/ca/ca.crt"
    volumes = {v["name"]: v for v in spec["volumes"]}
    # Only the CA leaves the listener's Secret: not its private key.
    assert volumes["vault-ca"]["secret"] == {
        "secretName": TLS_SECRET,
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    (source,) = volumes["vault-token"]["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == SNAPSHOT.audience == "vault"
    assert token["expirationSeconds"] == 600
    mounts = {m["name"] for m in vault["volumeMounts"]}
    upload_mounts = {m["name"] for m in spec["containers"][0]["volumeMounts"]}
    assert {"vault-ca", "vault-token"} <= mounts and not {"vault-ca", "vault-token"} & upload_mounts
    script = vault["command"][-1]
    assert "auth/kubernetes/login role=vault-snapshot" in script
    assert "jwt=@/var/run/secrets/vault/token" in script
    assert "vault operator raft snapshot save /snapshots/vault.snap" in script
    assert script.startswith("set -eu\n")


def test_no_token_or_secret_is_a_literal_in_args_or_env(run) -> None:
    spec = pod(run)
    for container in [*spec["initContainers"], *spec["containers"]]:
        names = {e["name"] for e in container.get("env", [])}
        assert not names & {"VAULT_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        for e in container.get("env", []):
            assert "valueFrom" not in e  # nothing secret is even referenced
            assert not str(e["value"]).startswith(("hvs.", "s.", "AKIA"))
        text = json.dumps(container["command"])
        assert "hvs." not in text and "AKIA" not in text
        assert "-token=" not in text and "X-Vault-Token" not in text


def test_the_upload_is_sse_kms_with_the_bucket_key_under_its_prefix(run) -> None:
    (upload,) = pod(run)["containers"]
    env = {e["name"]: e["value"] for e in upload["env"]}
    assert env["BUCKET"] == ARGS.bucket and env["KMS_KEY_ARN"] == KEY_ARN
    assert env["AWS_REGION"] == "us-west-2"
    script = upload["command"][-1]
    assert 'key="vault-snapshots/$(date -u +%Y%m%dT%H%M%SZ).snap"' in script
    assert '--server-side-encryption aws:kms --ssekms-key-id "$KMS_KEY_ARN"' in script
    assert "s3api put-object" in script and "--body /snapshots/vault.snap" in script


def test_the_role_may_only_put_snapshots_and_use_the_bucket_key(run) -> None:
    role = one(run, "aws:iam/role:Role").inputs
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:vault:vault-snapshot" in trust.values()
    policy = json.loads(one(run, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy == snapshot_writer_policy(BUCKET_ARN, KEY_ARN)
    assert [(s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        ("s3:PutObject", f"{BUCKET_ARN}/vault-snapshots/*"),
        ("kms:GenerateDataKey", KEY_ARN),
    ]
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in policy["Statement"])
    account = one(run, "kubernetes:core/v1:ServiceAccount").inputs
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    assert account["automountServiceAccountToken"] is False


def test_the_network_policy_opens_vaults_api_and_https_to_the_job_only(run) -> None:
    policy = one(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs
    assert_valid({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **policy})
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": snap.LABELS}
    assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec
    to_vault, https = spec["egress"]
    assert to_vault == {
        "to": [{"podSelector": {"matchLabels": SERVER_LABELS}}],
        "ports": [{"port": 8200, "protocol": "TCP"}],
    }
    assert https == {"ports": [{"port": 443, "protocol": "TCP"}]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": "hourly"}, "schedule"),
        ({"size_limit_gib": 0}, "size_limit_gib"),
    ],
)
def test_bad_arguments_name_their_field(change: dict, field: str) -> None:
    assert [p.field for p in validate_vault_snapshots_args(replace(ARGS, **change))] == [field]
    with pytest.raises(ValidationError, match=field):
        VaultSnapshots("vs", replace(ARGS, **change))
