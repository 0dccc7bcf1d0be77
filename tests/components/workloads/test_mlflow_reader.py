"""The inference service's read-only MLflow user on the mock engine: its password, the
Secret and ConfigMap the Job reads, the Job (validated strictly) and the policies that
let it reach the server; plus the script itself, run where no server answers."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import pulumi
import pytest

from components.workloads import mlflow_command as cmd
from components.workloads import mlflow_reader as reader
from components.workloads.mlflow_server import MlflowServer
from infra.drill.processes import free_port
from infra.offline import ProgramRun
from tests.components.support import assert_valid, one, plan
from tests.components.workloads.test_mlflow_server import ARGS, server_policy

JOB = "kubernetes:batch/v1:Job"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: MlflowServer("reg", ARGS))


def script() -> ModuleType:
    """``mlflow_server/ensure_user.py`` loaded as a module (it imports no MLflow at load)."""
    spec = importlib.util.spec_from_file_location("ensure_user", cmd.ENSURE_USER_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def password(run: ProgramRun) -> str:
    (generated,) = [
        r
        for r in run.by_type("random:index/randomPassword:RandomPassword")
        if r.name == "reg-reader"
    ]
    return generated.outputs["result"]


def named(run: ProgramRun, token: str, name: str) -> Any:
    (found,) = [r for r in run.by_type(token) if r.inputs["metadata"].get("name") == name]
    return found


def job_manifest(run: ProgramRun) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", **one(run, JOB).inputs}


def test_the_job_is_bounded_restricted_and_runs_the_script_as_the_admin(run) -> None:
    manifest = job_manifest(run)
    assert_valid(manifest)
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 3 and spec["activeDeadlineSeconds"] == 900
    assert "ttlSecondsAfterFinished" not in spec
    # Pulumi names it, so a replacement is created before the old Job goes.
    assert "name" not in manifest["metadata"]
    assert manifest["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["nodeSelector"] == {"mlplatform.io/pool": "system"}
    (box,) = pod["containers"]
    assert box["image"] == ARGS.image
    assert box["command"] == ["python", f"{reader.SCRIPT_DIR}/ensure_user.py"]
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert box["resources"]["requests"]["cpu"] and box["resources"]["limits"]["memory"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["script"]["configMap"]["name"] == reader.CONFIG_MAP
    env = {e["name"]: e for e in box["env"]}
    refs = {
        cmd.CLIENT_USERNAME_ENV: ("mlflow-server", "admin-username"),
        cmd.CLIENT_PASSWORD_ENV: ("mlflow-server", "admin-password"),
        cmd.ENSURE_USERNAME_ENV: (reader.SECRET, "username"),
        cmd.ENSURE_PASSWORD_ENV: (reader.SECRET, "password"),
    }
    for name, (secret, key) in refs.items():
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    # Exactly the names the script reads, plus the wait and the container's housekeeping.
    assert set(env) == set(refs) | set(cmd.ensure_user_env("x"))
    assert set(script().REQUIRED) | {script().WAIT_ENV} <= set(env)


def test_the_job_reruns_when_the_password_or_script_changes(run) -> None:
    annotations = job_manifest(run)["spec"]["template"]["metadata"]["annotations"]
    secret = password(run)
    assert annotations[reader.PASSWORD_HASH_ANNOTATION] == (
        hashlib.sha256(secret.encode()).hexdigest()
    )
    text = cmd.ENSURE_USER_SCRIPT.read_bytes()
    assert annotations[reader.SCRIPT_HASH_ANNOTATION] == hashlib.sha256(text).hexdigest()
    job = one(run, JOB)
    # The hash is no secret, so the Job's spec is not stored as one.
    assert "spec" not in job.secret_inputs


def test_the_job_waits_for_the_server_and_is_never_protected(run) -> None:
    job = one(run, JOB)
    server = one(run, "kubernetes:apps/v1:Deployment")
    assert server.urn in job.dependencies
    for name in (reader.SECRET, "mlflow-server"):
        assert named(run, "kubernetes:core/v1:Secret", name).urn in job.dependencies
    assert named(run, "kubernetes:core/v1:ConfigMap", reader.CONFIG_MAP).urn in job.dependencies
    protected = plan(lambda: MlflowServer("reg", ARGS, opts=pulumi.ResourceOptions(protect=True)))
    assert one(protected, "kubernetes:apps/v1:Deployment").protect is True
    assert one(protected, JOB).protect is False


def test_the_configmap_is_the_script_file(run) -> None:
    config_map = named(run, "kubernetes:core/v1:ConfigMap", reader.CONFIG_MAP).inputs
    assert_valid({"apiVersion": "v1", "kind": "ConfigMap", **config_map})
    assert config_map["metadata"]["namespace"] == "mlflow"
    assert config_map["data"] == {"ensure_user.py": cmd.ENSURE_USER_SCRIPT.read_text()}


def test_the_password_is_generated_and_secret_everywhere(run) -> None:
    secret = password(run)
    assert len(secret) == 32
    stored = named(run, "kubernetes:core/v1:Secret", reader.SECRET)
    assert "stringData" in stored.secret_inputs
    assert stored.inputs["stringData"] == {"username": "serving", "password": secret}
    for resource in run.resources:
        if resource.type.startswith("random:"):
            continue
        for key, value in resource.inputs.items():
            if secret in json.dumps(value):
                assert key in resource.secret_inputs, (resource.name, key)


def test_only_the_job_pods_reach_the_server_and_they_reach_nothing_else(run) -> None:
    (ingress,) = server_policy(run)["spec"]["ingress"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": reader.APP}}} in (
        ingress["from"]
    )
    own = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", reader.APP).inputs
    assert_valid({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **own})
    assert own["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": reader.APP}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}],
                "ports": [{"protocol": "TCP", "port": 5000}],
            }
        ],
    }
    labels = job_manifest(run)["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": reader.APP}


def _run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, str(cmd.ENSURE_USER_SCRIPT)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_script_names_what_its_environment_lacks() -> None:
    done = _run_script({cmd.ENSURE_USERNAME_ENV: "serving"})
    assert done.returncode == 2
    assert done.stdout.strip() == (
        "ensure-user: missing environment: MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, "
        "MLFLOW_TRACKING_PASSWORD, MLFLOW_ENSURE_PASSWORD"
    )


def test_the_script_waits_a_bounded_time_printing_progress_and_no_password() -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    secret = "reader-password-not-to-print"
    done = _run_script(
        {
            **cmd.ensure_user_env(uri),
            cmd.ENSURE_WAIT_ENV: "2",
            cmd.CLIENT_USERNAME_ENV: "admin",
            cmd.CLIENT_PASSWORD_ENV: "admin-password-not-to-print",
            cmd.ENSURE_USERNAME_ENV: "serving",
            cmd.ENSURE_PASSWORD_ENV: secret,
        }
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"ensure-user: waiting for {uri} (attempt 1, ")
    assert lines[-1].startswith(f"ensure-user: {uri} did not answer /health within 2s")
    assert "not-to-print" not in done.stdout + done.stderr
