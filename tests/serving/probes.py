"""Health probes run beside hostile requests: they must keep answering promptly."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


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
