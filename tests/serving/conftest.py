"""Serving fixtures: one real MLflow registry per session and real uvicorn servers on 127.0.0.1.

Servers are started as ``python -m serving`` subprocesses (all at once, so their
imports and model loads overlap) and awaited by polling ``/v2/health/ready`` with a
bounded loop. Their logs go to files, never to a pipe that could fill up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.serving.probes import wait_ready

#: Generous: four servers import MLflow at once on two shared cores.
READY_TIMEOUT_S = 300.0


@dataclass
class Registry:
    """A local MLflow registry holding the test model."""

    root: Path
    tracking_uri: str
    model_uri: str


@dataclass
class Server:
    """A running ``python -m serving`` subprocess."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=lambda: _free_port())
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "serving", "--port", str(self.port), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        assert self.proc is not None
        wait_ready(self.url, self.proc, self.log, timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_since(self, offset: int) -> str:
        """The log written after ``offset`` bytes (take ``log_path.stat().st_size`` first)."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def rss_mb(self) -> float:
        """Resident memory of the server process, in MiB (from /proc)."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kb) / 1024

    def open_fds(self) -> int:
        """File descriptors the server process holds open (from /proc)."""
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A fresh sqlite registry holding the demo model, registered twice (versions 1 and 2).

    Registered through ``python -m serving.demo --no-serve`` (in-process) with 20 trees;
    the second run shows that re-running moves the ``champion`` alias to version 2.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from serving import demo

    root = tmp_path_factory.mktemp("mlflow")
    for _ in range(2):
        assert demo.main(["--no-serve", "--root", str(root), "--n-estimators", "20"]) == 0
    return Registry(
        root=root,
        tracking_uri=demo.tracking_uri_for(root),
        model_uri=f"models:/{demo.MODEL_NAME}@{demo.ALIAS}",
    )


SERVER_ARGS = {
    # The default server: real settings, used for correctness, errors and metrics.
    "main": ["--max-body-bytes", "65536"],
    # One row per batch and a 4-deep queue: overflow is easy to provoke, and at SIGTERM
    # there is queued and in-flight work to drain. The shutdown test ends it.
    "limited": ["--max-queue", "4", "--max-batch-size", "1", "--drain-timeout-s", "15"],
    # For hostile clients: the default 8 MiB body (large bodies, many names), tight
    # connection limits (600 connections, 8 KiB heads sent within 1 s, bodies stalling 1 s).
    "hostile": [
        *("--max-connections", "600", "--max-header-bytes", "8192"),
        *("--header-timeout-s", "1", "--body-timeout-s", "1"),
    ],
    # A model the registry does not have: the process must refuse to start, clearly.
    "broken": ["--model", "ghost=models:/ghost@champion"],
}


@pytest.fixture(scope="session")
def servers(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """Start every test server at once; each test waits for the one it uses."""
    logs = tmp_path_factory.mktemp("server-logs")
    env = {
        **os.environ,
        # mlflow.set_*_uri also export these: an earlier test's registry must not leak in.
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "MLFLOW_REGISTRY_URI": registry.tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "SERVING_MODELS": f"anomaly={registry.model_uri}",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    started = {
        name: Server(name, args, env, logs / f"{name}.log") for name, args in SERVER_ARGS.items()
    }
    for server in started.values():
        server.start()
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="session")
def main_server(servers: dict[str, Server]) -> Server:
    servers["main"].wait_ready()
    return servers["main"]


@pytest.fixture(scope="session")
def hostile_server(servers: dict[str, Server]) -> Server:
    servers["hostile"].wait_ready()
    return servers["hostile"]


@pytest.fixture
def limited_server(servers: dict[str, Server]) -> Server:
    """The small-queue server; started again if an earlier test shut it down."""
    server = servers["limited"]
    if server.proc is not None and server.proc.poll() is not None:
        server.port = _free_port()
        server.start()
    server.wait_ready()
    return server
