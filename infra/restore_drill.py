"""The restore drill: back up the model registry, lose it, restore it, prove it.

``python -m infra.restore_drill [--workdir DIR]`` runs on this machine, on 127.0.0.1:

1. starts PostgreSQL (Debian's ``postgresql``: the registry's backend store, as RDS is),
   moto's S3 server (the artifact and backup buckets) and the MLflow server with the
   Deployment's command line (``components.workloads.mlflow_command``), basic-auth on,
   and makes the inference service's read-only user with the cluster Job's own script
   and environment (``mlflow_server/ensure_user.py``), twice: a rerun must be harmless;
2. registers models with known artifacts and aliases, records every version, alias
   and artifact checksum as the server reports them, and checks the read-only user
   cannot move an alias;
3. backs up the registry database (``pg_dump``) and the artifact prefix into the backup
   bucket;
4. deletes both (drops the database, removes every artifact object);
5. restores them, starts the MLflow server again and compares every version, alias and
   checksum with the record;
6. starts the inference service against the restored server, loads
   ``models:/anomaly-detector@champion`` and checks a V2 request's answer.

Each step prints a line; the verified checksums are printed. Exit 0 when everything
matches, 1 when anything differs or a step fails (the reason on one line), 2 for usage.
``docs/runbooks/restore.md`` is the same procedure on AWS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from components.workloads import mlflow_command as cmd
from infra.drill import registry
from infra.drill.postgres import LocalPostgres, PostgresMissing
from infra.drill.processes import FAKE_AWS_ENV, Process, executable, free_port, moto_s3, running

ARTIFACT_BUCKET = "mlplatform-drill-artifacts"
BACKUP_BUCKET = "mlplatform-drill-backups"
ARTIFACT_PREFIX = "mlflow"
STEPS = 6
DESCRIPTION = "Back up the model registry, lose it, restore it, and prove it (on 127.0.0.1)."


def _step(number: int, message: str) -> None:
    print(f"[drill] {number}/{STEPS} {message}", flush=True)


def _detail(message: str) -> None:
    print(f"[drill]     {message}", flush=True)


@dataclass(frozen=True)
class Secrets:
    """Generated for this run only, as Pulumi generates them for a stack."""

    database: str
    admin: str
    reader: str
    csrf: str

    @classmethod
    def generate(cls) -> Secrets:
        return cls(*(secrets.token_urlsafe(24) for _ in range(4)))


class Drill:
    """The drill's servers and buckets; each method is one step's work."""

    def __init__(self, workdir: Path, s3_url: str, pg: LocalPostgres, keys: Secrets) -> None:
        import boto3

        self.workdir, self.s3_url, self.pg, self.keys = workdir, s3_url, pg, keys
        self.s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name=FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        self.port = free_port()
        auth_uri = self._database_uri(cmd.REGISTRY_DATABASE)
        self.auth_config = workdir / cmd.AUTH_CONFIG_FILE
        self.auth_config.write_text(cmd.auth_config(auth_uri))
        self.auth_config.chmod(0o600)

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _database_uri(self, database: str) -> str:
        return cmd.database_uri(
            user="mlflow",
            password=self.keys.database,
            host="127.0.0.1",
            port=self.pg.port,
            database=database,
            sslmode="disable",  # local only; the Deployment's URI requires TLS
        )

    def mlflow_server(self, log_name: str) -> Process:
        """The MLflow server as the Deployment runs it (one worker: two shared cores)."""
        argv = cmd.server_command(
            artifacts_destination=f"s3://{ARTIFACT_BUCKET}/{ARTIFACT_PREFIX}",
            workers=1,
            allowed_hosts=cmd.allowed_hosts("mlflow", "mlflow", self.port),
            host="127.0.0.1",
            port=self.port,
        )
        env = {
            **os.environ,
            **FAKE_AWS_ENV,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            cmd.BACKEND_URI_ENV: self._database_uri(cmd.REGISTRY_DATABASE),
            cmd.AUTH_CONFIG_ENV: str(self.auth_config),
            cmd.ADMIN_USERNAME_ENV: cmd.ADMIN_USERNAME,
            cmd.ADMIN_PASSWORD_ENV: self.keys.admin,
            cmd.CSRF_KEY_ENV: self.keys.csrf,
        }
        for name in (cmd.CLIENT_USERNAME_ENV, cmd.CLIENT_PASSWORD_ENV):
            env.pop(name, None)
        argv = [executable("mlflow"), *argv[1:]]
        return Process(
            "mlflow server", argv, env, self.port, self.workdir / log_name, ready_path="/health"
        )

    def objects(self, bucket: str, prefix: str) -> dict[str, str]:
        """Key -> SHA-256 of every object under ``prefix`` in ``bucket``."""
        found: dict[str, str] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"]] = hashlib.sha256(body).hexdigest()
        return found

    def copy_prefix(self, source: str, prefix: str, target: str, target_prefix: str) -> int:
        keys = list(self.objects(source, prefix))
        for key in keys:
            self.s3.copy_object(
                Bucket=target,
                Key=target_prefix + key.removeprefix(prefix),
                CopySource={"Bucket": source, "Key": key},
            )
        return len(keys)


def _serving_check(drill: Drill) -> list[int]:
    """Serve the restored champion with the inference service; return its V2 answer."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": drill.tracking_uri,
        cmd.CLIENT_USERNAME_ENV: cmd.READER_USERNAME,
        cmd.CLIENT_PASSWORD_ENV: drill.keys.reader,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    argv = [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--model", f"anomaly={'models:/' + registry.ANOMALY}@champion"]
    serving = Process(
        "inference service", argv, env, port, drill.workdir / "serving.log", "/v2/health/ready"
    )
    with running(serving):
        body = {
            "inputs": [
                {"name": "input", "shape": [2, 3], "datatype": "FP64", "data": registry.PROBE_ROWS}
            ]
        }
        response = httpx.post(f"{serving.url}/v2/models/anomaly/infer", json=body, timeout=60)
        response.raise_for_status()
        return [int(v) for v in response.json()["outputs"][0]["data"]]


def run(workdir: Path) -> list[str]:
    """Run the drill in ``workdir`` (logs, dumps); return the differences found."""
    keys = Secrets.generate()
    with ExitStack() as stack:
        _step(1, "starting PostgreSQL, moto S3 and the MLflow server (basic-auth)")
        pg = stack.enter_context(
            LocalPostgres(
                port=free_port(), log_path=workdir / "postgres.log", password=keys.database
            )
        )
        pg.execute(f"CREATE DATABASE {cmd.REGISTRY_DATABASE}")
        s3_url = stack.enter_context(moto_s3())
        drill = Drill(workdir, s3_url, pg, keys)
        for bucket in (ARTIFACT_BUCKET, BACKUP_BUCKET):
            drill.s3.create_bucket(Bucket=bucket)
        os.environ[cmd.CLIENT_USERNAME_ENV] = cmd.ADMIN_USERNAME
        os.environ[cmd.CLIENT_PASSWORD_ENV] = keys.admin
        with running(drill.mlflow_server("mlflow-1.log")):
            _detail(f"PostgreSQL on 127.0.0.1:{pg.port}, MLflow on {drill.tracking_uri}")
            denied = httpx.get(f"{drill.tracking_uri}/api/2.0/mlflow/registered-models/search")
            _detail(f"an unauthenticated registry call is answered {denied.status_code}")
            if denied.status_code != 401:
                return [f"an unauthenticated call got {denied.status_code}, not 401"]
            for _ in range(2):
                _ensure_reader(drill)

            _step(2, "registering models with known artifacts")
            registry.register(drill.tracking_uri)
            before = registry.snapshot(drill.tracking_uri)
            _detail(f"{len(before.versions)} model versions, aliases {before.aliases}")
            moved = httpx.post(
                f"{drill.tracking_uri}/api/2.0/mlflow/registered-models/alias",
                json={"name": registry.ANOMALY, "alias": "champion", "version": "1"},
                auth=(cmd.READER_USERNAME, keys.reader),
            )
            _detail(f"the read-only user moving an alias is answered {moved.status_code}")
            if moved.status_code != 403:
                return [f"the read-only user moving an alias got {moved.status_code}, not 403"]

        _step(3, "backing up the registry database (models and users) and the artifact prefix")
        dump = workdir / "mlflow.dump"
        pg.dump(cmd.REGISTRY_DATABASE, dump)
        drill.s3.upload_file(str(dump), BACKUP_BUCKET, "postgres/mlflow.dump")
        objects_before = drill.objects(ARTIFACT_BUCKET, ARTIFACT_PREFIX + "/")
        copied = drill.copy_prefix(
            ARTIFACT_BUCKET, ARTIFACT_PREFIX + "/", BACKUP_BUCKET, "artifacts/"
        )
        digest = hashlib.sha256(dump.read_bytes()).hexdigest()
        _detail(f"database dump sha256:{digest}; {copied} artifact objects copied")

        _step(4, "deleting the registry database and every artifact object")
        pg.execute(f"DROP DATABASE {cmd.REGISTRY_DATABASE} WITH (FORCE)")
        for key in objects_before:
            drill.s3.delete_object(Bucket=ARTIFACT_BUCKET, Key=key)
        dump.unlink()
        left = drill.objects(ARTIFACT_BUCKET, ARTIFACT_PREFIX + "/")
        _detail(f"database dropped; {len(left)} artifact objects left")

        _step(5, "restoring from the backup bucket and verifying")
        drill.s3.download_file(BACKUP_BUCKET, "postgres/mlflow.dump", str(dump))
        pg.execute(f"CREATE DATABASE {cmd.REGISTRY_DATABASE}")
        pg.restore(cmd.REGISTRY_DATABASE, dump)
        drill.copy_prefix(BACKUP_BUCKET, "artifacts/", ARTIFACT_BUCKET, ARTIFACT_PREFIX + "/")
        problems = [
            f"artifact object {key}: not restored byte for byte"
            for key, sha in objects_before.items()
            if drill.objects(ARTIFACT_BUCKET, key).get(key) != sha
        ]
        with running(drill.mlflow_server("mlflow-2.log")):
            after = registry.snapshot(drill.tracking_uri)
            problems += registry.differences(before, after)
            for key, sha in sorted(after.checksums.items()):
                mark = "ok" if before.checksums.get(key) == sha else "MISMATCH"
                _detail(f"{mark} sha256:{sha} {key}")
            _detail(
                f"{len(after.versions)} model versions and {len(after.aliases)} aliases "
                f"compared; {len(objects_before)} S3 objects byte for byte"
            )

            _step(6, "serving models:/anomaly-detector@champion from the restored registry")
            answer = _serving_check(drill)
            _detail(f"V2 infer answered {answer} (expected {registry.PROBE_ANSWER})")
            if answer != registry.PROBE_ANSWER:
                problems.append(f"the restored champion answered {answer}")
        return problems
    raise AssertionError("unreachable")  # pragma: no cover


def _ensure_reader(drill: Drill) -> None:
    """Make the inference service's read-only user as the cluster does: the user Job's
    script, with the Job's environment (its Secrets' values in place of the references).
    Raises ``RuntimeError`` with the script's last line when it fails."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        **cmd.ensure_user_env(drill.tracking_uri),
        cmd.CLIENT_USERNAME_ENV: cmd.ADMIN_USERNAME,
        cmd.CLIENT_PASSWORD_ENV: drill.keys.admin,
        cmd.ENSURE_USERNAME_ENV: cmd.READER_USERNAME,
        cmd.ENSURE_PASSWORD_ENV: drill.keys.reader,
    }
    done = subprocess.run(
        [sys.executable, str(cmd.ENSURE_USER_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=cmd.ENSURE_WAIT_S + 120,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    for line in lines:
        _detail(line)
    if done.returncode != 0:
        last = lines[-1] if lines else done.stderr.strip()[-300:]
        raise RuntimeError(f"ensure_user.py exited {done.returncode}: {last}")


@contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix="restore-drill-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the drill; return 0 when everything restored matches, else 1."""
    parser = argparse.ArgumentParser(prog="python -m infra.restore_drill", description=DESCRIPTION)
    parser.add_argument(
        "--workdir", type=Path, help="keep logs and dumps here (default: a temporary directory)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        with _workdir(args.workdir) as workdir:
            problems = run(workdir)
    except PostgresMissing as missing:
        print(f"restore drill: {missing}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as failed:
        print(f"restore drill failed: {failed}", file=sys.stderr)
        return 1
    for line in problems:
        print(f"restore drill: MISMATCH {line}", file=sys.stderr)
    if problems:
        return 1
    print("[drill] restored registry verified: every version, alias and checksum matches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
