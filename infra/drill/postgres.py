"""A throwaway PostgreSQL server on 127.0.0.1, from Debian's ``postgresql`` package.

PostgreSQL refuses to run as root, so when the drill runs as root (CI, a fresh machine)
the server runs as ``nobody`` in a data directory it owns; as any other user it runs as
that user. Password authentication over TCP (SCRAM), as RDS asks of its clients.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPERUSER = "mlflow"
READY_TIMEOUT_S = 120.0
_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class PostgresMissing(RuntimeError):
    """Debian's postgresql package is not installed."""


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb``, ``postgres``,
    ``pg_dump`` and ``pg_restore``; raises :class:`PostgresMissing` with the fix."""
    found = [
        p
        for p in Path("/").glob(_BIN_GLOB.lstrip("/"))
        if re.fullmatch(r"\d+", p.parent.name) and (p / "initdb").is_file()
    ]
    if not found:
        raise PostgresMissing(
            "PostgreSQL not found (no /usr/lib/postgresql/<version>/bin/initdb): install "
            "Debian's postgresql package (make setup does)"
        )
    return max(found, key=lambda p: int(p.parent.name))


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when this process is root, else None."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


@dataclass
class LocalPostgres:
    """A PostgreSQL server in a fresh data directory, listening on 127.0.0.1:``port``.

    :meth:`start` runs ``initdb`` and the server and waits until it accepts connections;
    :meth:`stop` shuts it down and removes the data directory. Use as a context manager.
    """

    port: int
    log_path: Path
    password: str
    bin: Path = field(default_factory=bin_dir)
    data_root: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def _run_as(self) -> dict[str, object]:
        ids = _unprivileged()
        return {} if ids is None else {"user": ids[0], "group": ids[1], "extra_groups": []}

    def start(self) -> None:
        # Not under the caller's work directory: that may be private to root (pytest's is).
        self.data_root = Path(tempfile.mkdtemp(prefix="mlplatform-pg-"))
        data, pwfile = self.data_root / "data", self.data_root / "pwfile"
        pwfile.write_text(self.password + "\n")
        ids = _unprivileged()
        if ids is not None:
            os.chown(self.data_root, *ids)
            os.chown(pwfile, *ids)
        with self.log_path.open("ab") as log:
            subprocess.run(
                [
                    str(self.bin / "initdb"),
                    *("-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile)),
                    *("--auth-host=scram-sha-256", "--auth-local=scram-sha-256"),
                    *("-E", "UTF8", "--no-sync"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=READY_TIMEOUT_S,
                **self._run_as(),  # type: ignore[arg-type]
            )
            self.proc = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    *("-D", str(data), "-p", str(self.port)),
                    *("-c", "listen_addresses=127.0.0.1"),
                    *("-c", f"unix_socket_directories={self.data_root}"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._run_as(),  # type: ignore[arg-type]
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg2

        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited early; see {self.log_path}")
            try:
                psycopg2.connect(**self.connect_args("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                time.sleep(0.2)  # polling interval of a bounded readiness loop
        raise RuntimeError(f"postgres not ready after {READY_TIMEOUT_S}s; see {self.log_path}")

    def connect_args(self, database: str) -> dict[str, Any]:
        """psycopg2 keyword arguments for ``database`` as the superuser."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": SUPERUSER,
            "password": self.password,
            "dbname": database,
        }

    def execute(self, sql: str) -> None:
        """Run ``sql`` outside a transaction (``CREATE``/``DROP DATABASE``)."""
        import psycopg2

        conn = psycopg2.connect(**self.connect_args("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    def _client(self, tool: str, *args: str) -> None:
        env = {**os.environ, "PGPASSWORD": self.password}
        where = ("-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER)
        with self.log_path.open("ab") as log:
            subprocess.run(
                [str(self.bin / tool), *where, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=600,
            )

    def dump(self, database: str, path: Path) -> None:
        """Write ``database`` to ``path`` in pg_dump's custom format (what RDS snapshots
        are to the cloud: the whole database at one instant)."""
        self._client("pg_dump", "--format=custom", f"--file={path}", database)

    def restore(self, database: str, path: Path) -> None:
        """Load the dump at ``path`` into the empty ``database``."""
        self._client(
            "pg_restore", "--no-owner", "--exit-on-error", f"--dbname={database}", str(path)
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: clients are cut off
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.data_root is not None:
            shutil.rmtree(self.data_root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
