"""The MLflow server on the mock engine: the database, the bucket, the pods and their
secrets, as captured inputs (core objects validated strictly)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pulumi
import pytest

from components._validate import ValidationError
from components.workloads import mlflow_command as cmd
from components.workloads.mlflow_server import (
    MlflowServer,
    MlflowServerArgs,
    validate_mlflow_server_args,
)
from infra.offline import ProgramRun
from tests.components.support import assert_valid, one, plan

DIGEST = "a" * 64
ARGS = MlflowServerArgs(
    image=f"registry.example/mlflow-server@sha256:{DIGEST}",
    vpc_id="vpc-1",
    vpc_cidr="10.20.0.0/16",
    subnet_ids=["subnet-a", "subnet-b"],
    cluster_security_group_id="sg-cluster",
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X",
    oidc_issuer="https://oidc.example/id/X",
    ci_runner_cidrs=("10.200.0.0/24",),
)


def _exported(args: MlflowServerArgs) -> None:
    server = MlflowServer("reg", args)
    pulumi.export("uri", server.tracking_uri)
    pulumi.export("bucket", server.bucket_name)
    pulumi.export("endpoint", server.database_endpoint)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: _exported(ARGS))


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    args = replace(ARGS, multi_az=False, deletion_protection=False, replicas=1)
    return plan(lambda: MlflowServer("reg", args))


def test_the_database_is_encrypted_private_backed_up_and_protected(run, dev) -> None:
    db = one(run, "aws:rds/instance:Instance").inputs
    key = one(run, "aws:kms/key:Key")
    assert db["engine"] == "postgres" and db["engineVersion"] == "17"
    assert db["storageType"] == "gp3" and db["storageEncrypted"] is True
    assert db["kmsKeyId"] == key.outputs["arn"] == db["performanceInsightsKmsKeyId"]
    assert db["publiclyAccessible"] is False and db["multiAz"] is True
    assert db["backupRetentionPeriod"] == 14 and db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False and db["finalSnapshotIdentifier"] == "reg-final"
    assert db["autoMinorVersionUpgrade"] is True
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert "password" in one(run, "aws:rds/instance:Instance").secret_inputs
    params = one(run, "aws:rds/parameterGroup:ParameterGroup").inputs
    assert params["family"] == "postgres17"
    assert {"name": "rds.force_ssl", "value": "1"} in params["parameters"]
    assert one(run, "aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == [
        "subnet-a",
        "subnet-b",
    ]
    rule = one(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert rule["referencedSecurityGroupId"] == "sg-cluster"
    assert (rule["fromPort"], rule["toPort"]) == (5432, 5432) and "cidrIpv4" not in rule
    small = one(dev, "aws:rds/instance:Instance").inputs
    assert small["multiAz"] is False and small["skipFinalSnapshot"] is True


def test_the_artifact_bucket_is_versioned_kms_encrypted_private_and_tls_only(run) -> None:
    bucket = one(run, "aws:s3/bucket:Bucket")
    name = bucket.outputs["bucket"]
    assert one(run, "aws:s3/bucketVersioning:BucketVersioning").inputs[
        "versioningConfiguration"
    ] == {"status": "Enabled"}
    (sse,) = one(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).inputs["rules"]
    assert sse["bucketKeyEnabled"] is True
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    block = one(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[f] for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"))
    assert block["restrictPublicBuckets"] is True and block["bucket"] == name
    policy = json.loads(one(run, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sids["DenyOtherEncryption"]["Effect"] == "Deny"
    (rule,) = one(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ]
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 90
    assert not run.by_type("aws:s3/bucketLogging:BucketLogging")
    logged = plan(lambda: MlflowServer("reg", replace(ARGS, access_log_bucket="logs")))
    assert one(logged, "aws:s3/bucketLogging:BucketLogging").inputs["targetBucket"] == "logs"


def test_the_role_reaches_only_its_prefix_and_key(run) -> None:
    (policy,) = [
        json.loads(r.inputs["policy"]) for r in run.by_type("aws:iam/rolePolicy:RolePolicy")
    ]
    bucket = one(run, "aws:s3/bucket:Bucket").outputs["arn"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["Objects"]["Resource"] == f"{bucket}/artifacts/*"
    assert statements["List"]["Resource"] == bucket
    assert statements["Key"]["Resource"] == one(run, "aws:kms/key:Key").outputs["arn"]
    assert "*" not in json.dumps(policy).replace("/*", "")
    account = one(run, "kubernetes:core/v1:ServiceAccount").inputs
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam"
    )


def _deployment(run: ProgramRun) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        **one(run, "kubernetes:apps/v1:Deployment").inputs,
    }


def test_the_deployment_reads_every_secret_from_a_secret(run) -> None:
    manifest = _deployment(run)
    assert_valid(manifest)
    spec = manifest["spec"]
    assert spec["replicas"] == 2
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == ARGS.image
    command = container["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    bucket = one(run, "aws:s3/bucket:Bucket").outputs["bucket"]
    assert command[command.index("--artifacts-destination") + 1] == f"s3://{bucket}/artifacts"
    assert command[command.index("--app-name") + 1] == "basic-auth"
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow.mlflow.svc.cluster.local:5000" in hosts
    env = {e["name"]: e for e in container["env"]}
    for name in (cmd.BACKEND_URI_ENV, cmd.ADMIN_PASSWORD_ENV, cmd.CSRF_KEY_ENV):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-server"
    assert "postgresql" not in json.dumps(manifest)
    secret = next(
        r
        for r in run.by_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == "mlflow-server"
    )
    assert "stringData" in secret.secret_inputs
    uri = secret.inputs["stringData"]["backend-store-uri"]
    db = one(run, "aws:rds/instance:Instance").outputs
    assert uri.startswith("postgresql+psycopg2://mlflow:") and uri.endswith(
        "/mlflow?sslmode=require"
    )
    assert db["address"] in uri
    auth = next(
        r
        for r in run.by_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == "mlflow-auth-config"
    )
    assert "stringData" in auth.secret_inputs
    assert f"database_uri = {uri}" in auth.inputs["stringData"]["basic_auth.ini"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= container.keys()
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_a_pdb_with_two_replicas_and_none_with_one(run, dev) -> None:
    pdb = one(run, "kubernetes:policy/v1:PodDisruptionBudget").inputs
    assert_valid({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", **pdb})
    assert pdb["spec"]["minAvailable"] == 1
    assert not dev.by_type("kubernetes:policy/v1:PodDisruptionBudget")
    assert _deployment(dev)["spec"]["replicas"] == 1


def server_policy(run: Any) -> dict[str, Any]:
    """The MLflow server's own NetworkPolicy (beside the namespace's baseline)."""
    (policy,) = [
        p.inputs
        for p in run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p.inputs["metadata"]["name"] == "mlflow"
    ]
    return policy


def test_the_namespace_starts_from_default_deny(run) -> None:
    policies = {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    assert policies["default-deny"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    assert "allow-dns" in policies


def test_the_network_policy_admits_the_inference_namespace_the_user_job_and_ci_only(run) -> None:
    policy = server_policy(run)
    assert_valid({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **policy})
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ml-serving"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow-ensure-user"}}},
        {"ipBlock": {"cidr": "10.200.0.0/24"}},
    ]
    egress = {
        (p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]
    }
    assert egress == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")}
    db_rule = next(r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 5432)
    assert db_rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    gateway = plan(lambda: MlflowServer("reg", replace(ARGS, gateway_namespace="istio-ingress")))
    (opened,) = server_policy(gateway)["spec"]["ingress"]
    assert opened["from"][-1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "istio-ingress"
    }


def test_the_namespace_service_and_outputs(run) -> None:
    ns = one(run, "kubernetes:core/v1:Namespace").inputs
    assert ns["metadata"]["name"] == "mlflow"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    service = one(run, "kubernetes:core/v1:Service").inputs
    assert_valid({"apiVersion": "v1", "kind": "Service", **service})
    assert run.outputs["uri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert run.outputs["bucket"] == one(run, "aws:s3/bucket:Bucket").outputs["bucket"]
    assert run.outputs["endpoint"] == one(run, "aws:rds/instance:Instance").outputs["endpoint"]
    assert not run.secret_outputs


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": "registry.example/mlflow-server:latest"}, "image"),
        ({"instance_class": "m7g.large"}, "instance_class"),
        ({"backup_retention_days": 3}, "backup_retention_days"),
        ({"allocated_storage_gib": 10}, "allocated_storage_gib"),
        ({"max_allocated_storage_gib": 10}, "max_allocated_storage_gib"),
        ({"replicas": 0}, "replicas"),
        ({"workers": 40}, "workers"),
        ({"ci_runner_cidrs": ("10.0.0.0/33",)}, "ci_runner_cidrs"),
    ],
)
def test_bad_arguments_name_their_field(change: dict, field: str) -> None:
    problems = validate_mlflow_server_args(replace(ARGS, **change))
    assert [p.field for p in problems] == [field]
    with pytest.raises(ValidationError, match=field):
        MlflowServer("reg", replace(ARGS, **change))


def test_the_valid_arguments_have_no_problems() -> None:
    assert validate_mlflow_server_args(ARGS) == []
