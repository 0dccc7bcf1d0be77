"""The MLflow tracking server's command line and configuration, written once.

The Deployment (``components/workloads/mlflow_server.py``) and the restore drill
(``infra/restore_drill.py``) both start the server from :func:`server_command`, so the
drill proves the command line that production runs. Nothing secret is on the command
line: the backend store URI, the basic-auth admin and the CSRF key arrive as environment
variables (from a Kubernetes Secret in the cluster), and the basic-auth config file,
which holds its database URI, is a Secret mounted at :data:`AUTH_CONFIG_PATH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

PORT = 5000
AUTH_CONFIG_DIR = "/etc/mlflow/auth"
AUTH_CONFIG_FILE = "basic_auth.ini"
AUTH_CONFIG_PATH = f"{AUTH_CONFIG_DIR}/{AUTH_CONFIG_FILE}"
# The registry and basic-auth's users share one database (their migrations keep apart
# version tables), so one backup and one restore cover both.
REGISTRY_DATABASE = "mlflow"
ADMIN_USERNAME = "admin"
# MLflow refuses basic-auth passwords shorter than 12 characters.
MIN_PASSWORD_LENGTH = 12

# The environment the server reads its secrets from (each from a Secret key).
BACKEND_URI_ENV = "MLFLOW_BACKEND_STORE_URI"
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
ADMIN_USERNAME_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
CSRF_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
# What clients (the inference service, CI) set to authenticate.
CLIENT_USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
CLIENT_PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"

# The inference service's read-only user, made in the running server by ENSURE_USER_SCRIPT
# (standalone: it cannot import these names, so a test holds its copies to them). The
# script authenticates as the admin through CLIENT_*_ENV and ensures ENSURE_*_ENV's user.
READER_USERNAME = "serving"
ENSURE_USER_SCRIPT = Path(__file__).resolve().parents[2] / "mlflow_server" / "ensure_user.py"
ENSURE_USERNAME_ENV = "MLFLOW_ENSURE_USERNAME"
ENSURE_PASSWORD_ENV = "MLFLOW_ENSURE_PASSWORD"
ENSURE_WAIT_ENV = "MLFLOW_ENSURE_WAIT_SECONDS"
ENSURE_WAIT_S = 300
"""How long the script waits for the server's ``/health`` (the Job's deadline is longer)."""


def ensure_user_env(tracking_uri: str) -> dict[str, str]:
    """The script's environment but for the four credentials (the admin's and the user's,
    which the Job reads from Secrets and the restore drill passes as values)."""
    return {
        "MLFLOW_TRACKING_URI": tracking_uri,
        ENSURE_WAIT_ENV: str(ENSURE_WAIT_S),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HOME": "/tmp",
    }


def server_command(
    *,
    artifacts_destination: str,
    workers: int,
    allowed_hosts: Sequence[str],
    host: str = "0.0.0.0",
    port: int = PORT,
) -> list[str]:
    """Return the ``mlflow server`` argv: proxied artifacts to ``artifacts_destination``
    (``s3://bucket/prefix``), ``workers`` uvicorn workers, the basic-auth app, and the
    Host headers the server answers (``allowed_hosts``; MLflow's default list holds no
    Service DNS name and would answer 403). The backend store URI is read from
    ``MLFLOW_BACKEND_STORE_URI``."""
    return [
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_destination,
        "--app-name",
        "basic-auth",
        "--allowed-hosts",
        ",".join(allowed_hosts),
    ]


def allowed_hosts(service: str, namespace: str, port: int = PORT) -> list[str]:
    """The Host headers of the in-cluster Service (short, namespaced and FQDN forms, with
    and without the port) plus localhost for the kubelet and port-forwarding."""
    names = [service, f"{service}.{namespace}", f"{service}.{namespace}.svc"]
    names.append(f"{service}.{namespace}.svc.cluster.local")
    hosts = [h for name in names for h in (name, f"{name}:{port}")]
    return [*hosts, "localhost", f"localhost:{port}", "127.0.0.1", f"127.0.0.1:{port}"]


def database_uri(
    *, user: str, password: str, host: str, port: int, database: str, sslmode: str
) -> str:
    """Return a SQLAlchemy PostgreSQL URI through psycopg2 (the image's driver), with the
    password percent-encoded and ``sslmode`` (``require`` or stricter against RDS)."""
    secret = quote(password, safe="")
    return f"postgresql+psycopg2://{user}:{secret}@{host}:{port}/{database}?sslmode={sslmode}"


def auth_config(auth_database_uri: str) -> str:
    """Return MLflow's basic-auth config file: users in ``auth_database_uri`` (the
    registry's own database), and every
    authenticated user may read (the inference service loads models); writing needs a
    permission granted by the admin."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {auth_database_uri}\n"
        f"admin_username = {ADMIN_USERNAME}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
