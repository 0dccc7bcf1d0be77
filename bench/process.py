"""The service under benchmark: a ``python -m serving`` child and its processes, from /proc.

``Service`` starts the service on a free port of 127.0.0.1, times it from spawn to
ready, and reads its CPU time and memory, and those of every process it started
(predict workers, the decoding process), from the kernel's accounting in ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 180.0
READY_POLL_S = 0.05
STOP_TIMEOUT_S = 60.0


def proc_status_kb(text: str, key: str) -> int:
    """Return the ``key`` field (e.g. ``VmHWM``) of a /proc/<pid>/status text, in kB.

    Raises ``KeyError`` naming the field when it is absent.
    """
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(f"{key} not in /proc status")


def proc_stat_cpu_ticks(text: str) -> int:
    """Return utime + stime (clock ticks) from a /proc/<pid>/stat line.

    The command name may hold spaces and parentheses, so fields are counted after
    its last ``)``. Raises ``ValueError`` for a malformed line.
    """
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def _read_proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def parent_pid(stat: str) -> int:
    """Return the parent pid (field 4) from a /proc/<pid>/stat line."""
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, their children...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = parent_pid((entry / "stat").read_text())
            except (OSError, ValueError):
                continue  # exited meanwhile
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = sorted(p for p, pp in parents.items() if pp == parent)
        found += children
        frontier += children
    return found


def process_label(pid: int, cmdline: str) -> str:
    """Name a service child for the report by what its command line runs."""
    if "resource_tracker" in cmdline:
        return f"resource-tracker {pid}"
    if "spawn_main" in cmdline:
        return f"spawned {pid}"
    return f"child {pid}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """A ``python -m serving`` child process on 127.0.0.1 with its log in a file."""

    def __init__(self, model_uri: str, tracking_uri: str, extra: Sequence[str], log: Path) -> None:
        self.port = _free_port()
        self.log = log
        env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri)
        argv = [sys.executable, "-m", "serving", "--model", f"anomaly-detector={model_uri}"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), *extra]
        with log.open("wb") as out:
            self.spawned_at = time.monotonic()
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.ready_s: float | None = None

    def url(self, path: str) -> str:
        """Return the absolute URL of ``path`` on this service."""
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the service's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Poll ``/v2/health/ready`` until 200; return seconds from spawn to ready.

        Raises ``RuntimeError`` (with the log's tail) if the service exits or times out.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                status = self.proc.returncode
                raise RuntimeError(f"service exited with {status}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("/v2/health/ready"), timeout=2) as resp:
                    if resp.status == 200:
                        self.ready_s = time.monotonic() - self.spawned_at
                        return self.ready_s
            except OSError:
                pass
            time.sleep(READY_POLL_S)
        raise RuntimeError(f"service not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def startup_report(self) -> dict[str, Any]:
        """The service's own ``ready`` log line (startup_s, phases_s), or {} if absent."""
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"ready"' in line:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("message") == "ready":
                        return {k: entry[k] for k in ("startup_s", "phases_s") if k in entry}
        return {}

    def pids(self) -> list[int]:
        """The service's process and all its descendants (predict workers, decoder)."""
        return [self.proc.pid, *descendants(self.proc.pid)]

    def cpu_s(self) -> float:
        """Return the user+system CPU seconds so far of the service and its live children."""
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError):
                ticks += proc_stat_cpu_ticks(_read_proc(pid, "stat"))
        return ticks / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, key: str) -> float:
        """Return a /proc status memory field (``VmRSS``, ``VmHWM``) of the service, in MB."""
        return proc_status_kb(_read_proc(self.proc.pid, "status"), key) / 1024

    def peak_rss_mb(self) -> dict[str, float]:
        """Peak RSS (``VmHWM``) of the service and of each of its live descendants, in MB."""
        peaks = {"service": round(self.memory_mb("VmHWM"), 1)}
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(OSError, KeyError):
                cmdline = _read_proc(pid, "cmdline").replace("\0", " ")
                kb = proc_status_kb(_read_proc(pid, "status"), "VmHWM")
                peaks[process_label(pid, cmdline)] = round(kb / 1024, 1)
        return peaks

    def stop(self) -> None:
        """SIGTERM (the service drains), then SIGKILL after ``STOP_TIMEOUT_S``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
