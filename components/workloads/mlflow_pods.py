"""The MLflow server's pods: the Deployment spec and the NetworkPolicy around it.

Pure functions of their inputs, so the tests read the same specs the component creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from components._k8s import (
    restricted_container_security_context,
    restricted_pod_security_context,
    system_placement,
)
from components.workloads import mlflow_command as cmd
from components.workloads.mlflow_reader import APP as ENSURE_USER_APP

APP = "mlflow"
SECRET = "mlflow-server"
AUTH_SECRET = "mlflow-auth-config"
INFERENCE_NAMESPACE = "ml-serving"
"""The inference namespace (issue #14's contract): its pods may read the registry."""
POSTGRES_PORT = 5432


def _secret_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}


def container(
    *,
    image: pulumi.Input[str],
    artifacts_destination: pulumi.Input[str],
    workers: int,
    namespace: str,
) -> dict[str, Any]:
    """The server container: the shared command line, every secret from the Secret."""
    argv = cmd.server_command(
        artifacts_destination="ARTIFACTS",
        workers=workers,
        allowed_hosts=cmd.allowed_hosts(APP, namespace),
    )
    command: list[pulumi.Input[str]] = [
        artifacts_destination if arg == "ARTIFACTS" else arg for arg in argv
    ]
    probe = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 5}
    return {
        "name": "mlflow",
        "image": image,
        "command": command,
        "ports": [{"name": "http", "containerPort": cmd.PORT, "protocol": "TCP"}],
        "env": [
            _secret_env(cmd.BACKEND_URI_ENV, "backend-store-uri"),
            _secret_env(cmd.ADMIN_USERNAME_ENV, "admin-username"),
            _secret_env(cmd.ADMIN_PASSWORD_ENV, "admin-password"),
            _secret_env(cmd.CSRF_KEY_ENV, "csrf-key"),
            {"name": cmd.AUTH_CONFIG_ENV, "value": cmd.AUTH_CONFIG_PATH},
            {"name": "HOME", "value": "/tmp"},
            {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"},
        ],
        "volumeMounts": [
            {"name": "auth-config", "mountPath": cmd.AUTH_CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        # Importing MLflow and migrating the schema takes a while on first start.
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 6},
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": restricted_container_security_context(),
    }


def deployment_spec(
    *,
    image: pulumi.Input[str],
    artifacts_destination: pulumi.Input[str],
    workers: int,
    replicas: int,
    namespace: str,
    service_account: str,
    system_pool: str,
) -> dict[str, Any]:
    """The Deployment's spec: ``replicas`` pods spread over zones on the system pool."""
    labels = {"app.kubernetes.io/name": APP}
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels},
        }
    ]
    return {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": service_account,
                "securityContext": restricted_pod_security_context(),
                "containers": [
                    container(
                        image=image,
                        artifacts_destination=artifacts_destination,
                        workers=workers,
                        namespace=namespace,
                    )
                ],
                "volumes": [
                    {"name": "auth-config", "secret": {"secretName": AUTH_SECRET}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                ],
                "topologySpreadConstraints": spread,
                **system_placement(system_pool),
            },
        },
    }


def _namespace_peer(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policy_spec(
    *, ci_runner_cidrs: Sequence[str], gateway_namespace: str | None, vpc_cidr: str
) -> dict[str, Any]:
    """Who may reach the MLflow pods (the inference namespace, the Job that makes its
    user, the CI runners' ranges, the gateway when exposed) and what they may reach (DNS,
    PostgreSQL inside the VPC, HTTPS for S3 and STS)."""
    peers = [
        _namespace_peer(INFERENCE_NAMESPACE),
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": ENSURE_USER_APP}}},
    ]
    peers += [{"ipBlock": {"cidr": cidr}} for cidr in ci_runner_cidrs]
    if gateway_namespace:
        peers.append(_namespace_peer(gateway_namespace))
    dns = [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]
    return {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": APP}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": cmd.PORT}]}],
        "egress": [
            {"to": [_namespace_peer("kube-system")], "ports": dns},
            {
                "to": [{"ipBlock": {"cidr": vpc_cidr}}],
                "ports": [{"protocol": "TCP", "port": POSTGRES_PORT}],
            },
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            },
        ],
    }
