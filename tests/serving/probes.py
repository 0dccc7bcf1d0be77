"""Health probes: the bounded wait for a server to become ready, and probes run beside
hostile requests (they must keep answering promptly)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Callable[[], str], timeout_s: float
) -> None:
    """Poll ``url``'s ``/v2/health/ready`` until it answers 200; fail with the server's
    ``log()`` when the process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{log()}")
            try:
                if client.get(f"{url}/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)  # polling interval of a bounded readiness loop
    raise AssertionError(f"server not ready after {timeout_s}s:\n{log()}")


async def probe_health(url: str, until: asyncio.Future[Any], interval_s: float = 0.02) -> float:
    """Poll ``/v2/health/live`` and ``/ready`` until ``until`` is done; return the worst latency.

    Every probe must answer 200 (a probe that fails or takes over 10 s fails the test).
    """
    worst = 0.0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not until.done():
            for path in ("/v2/health/live", "/v2/health/ready"):
                t0 = time.perf_counter()
                r = await client.get(path)
                worst = max(worst, time.perf_counter() - t0)
                assert r.status_code == 200, (path, r.status_code, r.text)
            await asyncio.sleep(interval_s)  # probe period, as a kubelet's would be
    return worst


async def wait_until(check: Callable[[], bool], what: str, poll_s: float, polls: int) -> None:
    """Poll ``check`` every ``poll_s`` at most ``polls`` times; fail naming ``what``."""
    for _ in range(polls):
        if check():
            return
        await asyncio.sleep(poll_s)  # bounded poll of server state
    raise AssertionError(f"timed out waiting until {what}")
