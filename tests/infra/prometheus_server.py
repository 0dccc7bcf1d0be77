"""A real Prometheus server holding series the test wrote, for the operator reports.

The series (OpenMetrics text with timestamps) become TSDB blocks through ``promtool tsdb
create-blocks-from openmetrics``; ``prometheus`` then serves them on 127.0.0.1 (free
port, data in a temporary directory, log to a file). Readiness is awaited in a bounded
loop and the server is always stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.drill.processes import free_port
from tests.binaries import binary

__all__ = ["Prometheus", "free_port", "run_report", "serving"]

READY_TIMEOUT_S = 30.0


def run_report(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` in ``cwd`` as an operator would (no Pulumi variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Prometheus:
    url: str
    log_path: Path


@contextmanager
def serving(tmp: Path, series: str) -> Iterator[Prometheus]:
    """Serve ``series`` (OpenMetrics ending in ``# EOF``) from a fresh Prometheus."""
    data, tsdb = tmp / "series.om", tmp / "tsdb"
    data.write_text(series, encoding="utf-8")
    created = subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(data), str(tsdb)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    config = tmp / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n", encoding="utf-8")
    port = free_port()
    log_path = tmp / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tsdb}",
                "--storage.tsdb.retention.time=3650d",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready:\n{log_path.read_text()}")
            time.sleep(0.2)  # polling interval of a bounded readiness loop
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
