"""Make sure an MLflow basic-auth user exists with a given password and is not an admin.

Standalone (the standard library and MLflow only): it runs in the MLflow server image as
a Kubernetes Job (mounted from a ConfigMap made of this file) and, with the same
environment, in the restore drill against a real server. Run it as often as you like:
a missing user is created, an existing one gets the password (and loses admin rights).

Environment (every value required except the wait):

- ``MLFLOW_TRACKING_URI``: the server, e.g. ``http://mlflow.mlflow.svc.cluster.local:5000``;
- ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``: the basic-auth admin
  (MLflow's client reads them to authenticate its calls);
- ``MLFLOW_ENSURE_USERNAME`` / ``MLFLOW_ENSURE_PASSWORD``: the user to ensure;
- ``MLFLOW_ENSURE_WAIT_SECONDS``: how long to wait for the server's ``/health`` to answer
  200, printing a line per attempt (default 300).

Exit 0 when the user is in place, 1 when the server never answered or refused (one line
saying why), 2 when the environment is incomplete. No password is ever printed.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

URI_ENV = "MLFLOW_TRACKING_URI"
ADMIN_USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
ADMIN_PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
USERNAME_ENV = "MLFLOW_ENSURE_USERNAME"
PASSWORD_ENV = "MLFLOW_ENSURE_PASSWORD"
WAIT_ENV = "MLFLOW_ENSURE_WAIT_SECONDS"
REQUIRED = (URI_ENV, ADMIN_USERNAME_ENV, ADMIN_PASSWORD_ENV, USERNAME_ENV, PASSWORD_ENV)
DEFAULT_WAIT_S = 300.0
POLL_S = 5.0


def _say(message: str) -> None:
    print(f"ensure-user: {message}", flush=True)


def wait_for_server(uri: str, wait_s: float) -> bool:
    """Poll ``uri``/health until it answers 200 or ``wait_s`` seconds have passed."""
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        attempt += 1
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=POLL_S) as response:
                if response.status == 200:
                    return True
                reason = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            reason = str(getattr(error, "reason", error))
        left = deadline - time.monotonic()
        if left <= 0:
            _say(f"{uri} did not answer /health within {wait_s:.0f}s (last: {reason})")
            return False
        _say(f"waiting for {uri} (attempt {attempt}, {left:.0f}s left): {reason}")
        time.sleep(min(POLL_S, left))


def ensure_user(uri: str, username: str, password: str) -> str:
    """Create ``username`` or set its password; drop admin rights. Return what was done."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    client = get_app_client("basic-auth", tracking_uri=uri)
    try:
        user = client.get_user(username)  # type: ignore[attr-defined]
    except MlflowException as missing:
        if missing.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_user(username=username, password=password)  # type: ignore[attr-defined]
        return "created"
    client.update_user_password(username=username, password=password)  # type: ignore[attr-defined]
    if user.is_admin:
        client.update_user_admin(username=username, is_admin=False)  # type: ignore[attr-defined]
        return "existed: password set, admin rights removed"
    return "existed: password set"


def main() -> int:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        _say(f"missing environment: {', '.join(missing)}")
        return 2
    uri = os.environ[URI_ENV].rstrip("/")
    username = os.environ[USERNAME_ENV]
    try:
        wait_s = float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT_S)
    except ValueError:
        _say(f"{WAIT_ENV} must be a number of seconds, not {os.environ[WAIT_ENV]!r}")
        return 2
    if not wait_for_server(uri, wait_s):
        return 1
    try:
        done = ensure_user(uri, username, os.environ[PASSWORD_ENV])
    except Exception as failed:  # one line, never a traceback with request details
        _say(f"user {username!r} at {uri}: {type(failed).__name__}: {failed}")
        return 1
    _say(f"user {username!r} at {uri}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
