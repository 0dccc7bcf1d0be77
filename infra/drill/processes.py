"""The drill's servers on 127.0.0.1: moto's S3, the MLflow server and the inference service.

Each logs to a file, is awaited with a bounded loop, and is always stopped by the
context manager that started it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 300.0
S3_REGION = "us-east-1"
# moto accepts any credentials; these only keep boto3 from looking for real ones.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "drill",
    "AWS_SECRET_ACCESS_KEY": "drill",
    "AWS_DEFAULT_REGION": S3_REGION,
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """A server subprocess whose readiness is an HTTP 200 on ``ready_path``."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    port: int
    log_path: Path
    ready_path: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv), env=dict(self.env), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
                try:
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)  # polling interval of a bounded readiness loop
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT_S}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def running(process: Process) -> Iterator[Process]:
    """Start ``process``, yield it, and always stop it."""
    try:
        process.start()
        yield process
    finally:
        process.stop()


@contextmanager
def moto_s3() -> Iterator[str]:
    """Run moto's server on a free port in this process; yield its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request to stderr, in between the drill's own lines.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def executable(name: str) -> str:
    """The path of console script ``name`` installed beside this Python."""
    return str(Path(sys.executable).parent / name)
