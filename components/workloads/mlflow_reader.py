"""The inference service's read-only MLflow user, made in the running server.

Basic-auth keeps its users in the registry's database, which only the running server
writes, so Pulumi cannot create the user as a resource: a Kubernetes Job in ``mlflow``
does, with the server's own image and ``mlflow_server/ensure_user.py`` (mounted from a
ConfigMap made of that one file; the restore drill runs the same file against a real
PostgreSQL-backed server). It authenticates as the admin and creates ``serving``, or sets
its password if it exists (and removes admin rights), so a rerun is harmless. The user is
no admin; with ``default_permission = READ`` it reads every experiment and model and
cannot change one it did not create.

The password comes from ``pulumi-random`` and stays secret: in state, in the Secret
``mlflow-reader`` the Job reads, and in the inference namespace's Secret (written by
each ``InferenceService``). Its SHA-256 is an annotation of the Job's pod template (the
hash of 32 random characters tells nothing about them), as is the script's.

How Pulumi treats the Job:

- Await: ``pulumi up`` waits until the Job is Complete and fails the update when it
  fails (after ``BACKOFF_LIMIT`` retries, or at ``DEADLINE_S``); the create/update
  timeouts outlast that deadline, so the Job's own reason is what is reported. The
  inference Deployments depend on the Job, so no pod starts before its user exists.
- Replacement: a Job's pod template is immutable, so a new password, script or image
  replaces the Job and the new one runs again. It has no fixed name (Pulumi names it),
  so the replacement is created before the old Job is deleted; it is never protected
  (a protected stack could not replace it); ``pulumi.com/replaceUnready`` makes the next
  update replace a Job that failed instead of waiting on it again. No
  ``ttlSecondsAfterFinished``: Kubernetes deleting the finished Job behind Pulumi's back
  would make every refreshed update run it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components._k8s import (
    restricted_container_security_context,
    restricted_pod_security_context,
    system_placement,
)
from components.workloads import mlflow_command as cmd

SECRET = "mlflow-reader"
CONFIG_MAP = "mlflow-ensure-user"
APP = "mlflow-ensure-user"
SCRIPT_DIR = "/etc/mlflow/ensure-user"
SCRIPT_FILE = "ensure_user.py"
PASSWORD_HASH_ANNOTATION = "mlplatform.io/password-sha256"
SCRIPT_HASH_ANNOTATION = "mlplatform.io/script-sha256"
BACKOFF_LIMIT = 3
DEADLINE_S = 900
"""The Job's whole budget, three times the script's wait for the server
(``ENSURE_WAIT_S``): room for a retry after a slow start."""
AWAIT_TIMEOUT = "20m"
"""Pulumi's create/update timeout for the Job: longer than ``DEADLINE_S``."""


@dataclass(frozen=True)
class Reader:
    """The read-only user and the Job that made it."""

    username: str
    password: pulumi.Output[str]
    """Secret."""
    job: k8s.batch.v1.Job
    """What a consumer of the user waits for."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def job_spec(
    *,
    image: pulumi.Input[str],
    tracking_uri: str,
    server_secret: str,
    password_sha256: pulumi.Input[str],
    script_sha256: str,
    system_pool: str,
) -> dict[str, Any]:
    """The Job's spec: one pod running the script as the admin (``server_secret``'s
    ``admin-*`` keys) for the user in :data:`SECRET`, restricted, on the system pool."""
    env = [
        *({"name": k, "value": v} for k, v in cmd.ensure_user_env(tracking_uri).items()),
        _secret_env(cmd.CLIENT_USERNAME_ENV, server_secret, "admin-username"),
        _secret_env(cmd.CLIENT_PASSWORD_ENV, server_secret, "admin-password"),
        _secret_env(cmd.ENSURE_USERNAME_ENV, SECRET, "username"),
        _secret_env(cmd.ENSURE_PASSWORD_ENV, SECRET, "password"),
    ]
    container = {
        "name": "ensure-user",
        "image": image,
        "command": ["python", f"{SCRIPT_DIR}/{SCRIPT_FILE}"],
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": restricted_container_security_context(),
        "volumeMounts": [
            {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": DEADLINE_S,
        "template": {
            "metadata": {
                "labels": {"app.kubernetes.io/name": APP},
                "annotations": {
                    PASSWORD_HASH_ANNOTATION: password_sha256,
                    SCRIPT_HASH_ANNOTATION: script_sha256,
                },
            },
            "spec": {
                "restartPolicy": "Never",
                # It talks to MLflow only, never to the Kubernetes API.
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod_security_context(),
                "containers": [container],
                "volumes": [
                    {"name": "script", "configMap": {"name": CONFIG_MAP}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                ],
                **system_placement(system_pool),
            },
        },
    }


def network_policy_spec(server_app: str) -> dict[str, Any]:
    """The Job's pods may reach the server's pods (``server_app``) on its port, and
    nothing else (DNS comes from the namespace's baseline; nothing may reach them)."""
    return {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": APP}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": server_app}}}],
                "ports": [{"protocol": "TCP", "port": cmd.PORT}],
            }
        ],
    }


def create_reader(
    name: str,
    *,
    parent: pulumi.Resource,
    namespace: pulumi.Input[str],
    image: pulumi.Input[str],
    tracking_uri: str,
    server_secret: str,
    server_app: str,
    system_pool: str,
    after: Sequence[pulumi.Resource],
) -> Reader:
    """Create the password, its Secret, the script's ConfigMap, the Job (after ``after``:
    the server's Deployment and Secrets) and the Job's NetworkPolicy, as children of
    ``parent``."""
    child = pulumi.ResourceOptions(parent=parent)
    password = random.RandomPassword(f"{name}-reader", length=32, special=False, opts=child)
    secret = k8s.core.v1.Secret(
        f"{name}-reader",
        metadata={"name": SECRET, "namespace": namespace},
        string_data={
            "username": cmd.READER_USERNAME,
            "password": pulumi.Output.secret(password.result),
        },
        opts=child,
    )
    script = cmd.ENSURE_USER_SCRIPT.read_text()
    config_map = k8s.core.v1.ConfigMap(
        f"{name}-ensure-user",
        metadata={"name": CONFIG_MAP, "namespace": namespace},
        data={SCRIPT_FILE: script},
        opts=child,
    )
    policy = k8s.networking.v1.NetworkPolicy(
        f"{name}-ensure-user",
        metadata={"name": APP, "namespace": namespace},
        spec=network_policy_spec(server_app),  # pyright: ignore[reportArgumentType]
        opts=child,
    )
    spec: Any = job_spec(
        image=image,
        tracking_uri=tracking_uri,
        server_secret=server_secret,
        password_sha256=pulumi.Output.unsecret(password.result.apply(_sha256)),
        script_sha256=_sha256(script),
        system_pool=system_pool,
    )
    job = k8s.batch.v1.Job(
        f"{name}-ensure-reader",
        metadata={
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": APP},
            "annotations": {"pulumi.com/replaceUnready": "true"},
        },
        spec=spec,
        opts=pulumi.ResourceOptions(
            parent=parent,
            protect=False,
            depends_on=[secret, config_map, policy, *after],
            custom_timeouts=pulumi.CustomTimeouts(create=AWAIT_TIMEOUT, update=AWAIT_TIMEOUT),
        ),
    )
    return Reader(username=cmd.READER_USERNAME, password=password.result, job=job)
