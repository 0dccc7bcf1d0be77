"""The rules read the property names the real SDKs send (resources built on the mock engine)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.offline import ProgramRun
from policy.rules import Finding, evaluate

ISSUER = "oidc.eks.us-west-2.amazonaws.com/id/ABCDEF0123456789"


def _trust(sub: str, operator: str = "StringEquals") -> str:
    conditions: dict[str, Any] = {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}}
    conditions.setdefault(operator, {})[f"{ISSUER}:sub"] = sub
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": conditions,
                }
            ],
        }
    )


def _program(safe: bool) -> Callable[[], None]:
    def program() -> None:
        vpc = aws.ec2.Vpc("net", cidr_block="10.0.0.0/16")
        pulumi.export("vpc_id", vpc.id)
        if safe:
            aws.ec2.FlowLog("net-flow", vpc_id=vpc.id, traffic_type="ALL", log_destination="arn")
            aws.ec2.DefaultSecurityGroup("net-default", vpc_id=vpc.id)
        aws.ec2.SecurityGroup(
            "nodes",
            vpc_id=vpc.id,
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 443 if safe else 22,
                    "to_port": 443 if safe else 22,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            ],
        )
        key = aws.kms.Key("eks", enable_key_rotation=safe, deletion_window_in_days=30)
        aws.eks.Cluster(
            "eks",
            role_arn="arn:aws:iam::123456789012:role/eks",
            vpc_config={
                "subnet_ids": ["subnet-1", "subnet-2"],
                "endpoint_public_access": not safe,
                "endpoint_private_access": True,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=["api", "audit", "authenticator", "controllerManager"]
            + (["scheduler"] if safe else []),
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": not safe,
            },
            upgrade_policy={"support_type": "STANDARD"} if safe else None,
            deletion_protection=safe,
        )
        aws.ec2.LaunchTemplate(
            "nodes",
            metadata_options={"http_tokens": "required" if safe else "optional"},
            block_device_mappings=[
                {"device_name": "/dev/xvda", "ebs": {"encrypted": "true" if safe else "false"}}
            ],
        )
        aws.eks.NodeGroup(
            "gpu",
            cluster_name="eks",
            node_role_arn="arn:aws:iam::123456789012:role/nodes",
            subnet_ids=["subnet-1"],
            scaling_config={"desired_size": 0, "max_size": 2, "min_size": 0},
            ami_type="AL2023_x86_64_NVIDIA",
            instance_types=["g5.xlarge", "g6.xlarge", "g5.2xlarge"],
            capacity_type="SPOT",
            taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
            if safe
            else [],
        )
        bucket = aws.s3.Bucket("models", bucket="mlplatform-models-dev")
        aws.s3.BucketVersioning(
            "models", bucket=bucket.id, versioning_configuration={"status": "Enabled"}
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            "models",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}],
        )
        aws.s3.BucketPublicAccessBlock(
            "models",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=safe,
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": "arn:aws:s3:::mlplatform-models-dev/*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
        aws.s3.BucketPolicy("models", bucket=bucket.id, policy=json.dumps(policy))
        aws.s3.BucketLifecycleConfiguration(
            "models",
            bucket=bucket.id,
            rules=[{"id": "old", "status": "Enabled", "expiration": {"days": 90}}],
        )
        if safe:
            trust = _trust("system:serviceaccount:inference:server")
        else:
            trust = _trust("system:serviceaccount:inference:*", operator="StringLike")
        aws.iam.Role("irsa", assume_role_policy=trust)
        aws.cloudwatch.LogGroup(
            "app", retention_in_days=30 if safe else 0, kms_key_id=key.arn if safe else None
        )
        container: dict[str, Any] = {
            "name": "server",
            "image": "ghcr.io/acme/serving:0.1.0" if safe else "ghcr.io/acme/serving:latest",
            "security_context": {
                "allow_privilege_escalation": False,
                "capabilities": {"drop": ["ALL"]},
                "read_only_root_filesystem": True,
                "run_as_non_root": True,
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"memory": "1Gi"},
            },
        }
        spec: Any = {
            "selector": {"match_labels": {"app": "server"}},
            "template": {
                "metadata": {"labels": {"app": "server"}},
                "spec": {"containers": [container], "host_network": not safe},
            },
        }
        namespace = "inference" if safe else "default"
        k8s.apps.v1.Deployment("server", metadata={"namespace": namespace}, spec=spec)
        vault_config = 'listener "tcp" {\n  tls_disable = 0\n}\nseal "awskms" {\n}\n'
        k8s.helm.v3.Release(
            "vault",
            chart="vault",
            version="0.29.1" if safe else "^0.29",
            repository_opts={"repo": "https://helm.releases.hashicorp.com"},
            values={
                "global": {"tlsDisable": False},
                "server": {"ha": {"enabled": True, "config": vault_config}},
            }
            if safe
            else {},
        )
        if safe:
            k8s.helm.v3.Release(
                "device-plugin",
                chart="nvidia-device-plugin",
                version="0.20.0",
                repository_opts={"repo": "https://nvidia.github.io/k8s-device-plugin"},
            )

    return program


def _evaluate(run: ProgramRun) -> list[tuple[str, Finding]]:
    triples = [(r.urn, r.type, r.inputs) for r in run.resources if r.custom]
    [vpc] = run.by_type("aws:ec2/vpc:Vpc")
    return evaluate(triples, aliases={vpc.urn: {run.outputs["vpc_id"]}})


def test_safe_program_built_with_the_sdks_has_no_finding(run_mocked: Any) -> None:
    assert _evaluate(run_mocked(_program(safe=True))) == []


def test_unsafe_program_built_with_the_sdks_trips_each_rule(run_mocked: Any) -> None:
    findings = _evaluate(run_mocked(_program(safe=False)))
    by_rule = {(urn.rsplit("::", 1)[-1], f.policy) for urn, f in findings}
    assert by_rule == {
        ("net", "vpc-flow-logs"),
        ("net", "vpc-default-sg-managed"),
        ("nodes", "sg-no-world-admin-ingress"),
        ("eks", "kms-key-rotation"),
        ("eks", "eks-public-endpoint"),
        ("eks", "eks-control-plane-logging"),
        ("eks", "eks-no-creator-admin"),
        ("nodes", "ec2-imdsv2-required"),
        ("nodes", "ec2-encrypted-volumes"),
        ("gpu", "eks-gpu-nodegroup-taint"),
        ("gpu", "gpu-device-plugin"),
        ("models", "s3-public-access-block"),
        ("irsa", "iam-irsa-trust-pinned"),
        ("app", "cloudwatch-log-retention"),
        ("app", "cloudwatch-log-group-kms"),
        ("eks", "eks-support-type-explicit"),
        ("eks", "eks-deletion-protection"),
        ("server", "k8s-image-pinned"),
        ("server", "k8s-no-host-namespaces"),
        ("server", "k8s-no-default-namespace"),
        ("vault", "helm-chart-version-pinned"),
        ("vault", "vault-tls-listener"),
        ("vault", "vault-seal-configured"),
    }
