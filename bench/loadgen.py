"""Closed-loop HTTP load: wrk (preferred) or a lean asyncio client, each in its own process.

Both drivers keep ``concurrency`` connections busy, each sending the same POST body
again as soon as the previous answer arrived, for a warm-up period (discarded) and a
measured period. The driver runs as a child process so that its CPU time can be read
exactly from the kernel's accounting (``os.wait4``) and compared with the server's.

``python -m bench.loadgen --url URL --body-file FILE --concurrency N --warmup-s S
--duration-s S`` is the asyncio client; it prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

WRK_INSTALL_HINT = "wrk not found; install it with `apt-get install -y wrk` (Debian/Ubuntu)"
#: Marks wrk's JSON line among its human-readable report.
_WRK_MARK = "BENCH_JSON "
_WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\\"requests\\":%%d,\\"duration_s\\":%%.6f,\\"p50_ms\\":%%.3f,\\"p99_ms\\":%%.3f,"
    .. "\\"errors\\":%%d}\\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One measured closed-loop run.

    ``errors`` counts non-2xx answers plus socket errors and timeouts; ``cpu_s`` is the
    driver's own user+system CPU time over its whole life and ``wall_s`` that life's
    length, so ``cpu_s / wall_s`` is how many cores the load generator used.
    """

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s: float
    wall_s: float

    @property
    def rps(self) -> float:
        """Completed requests per second over the measured period (0 if it had no length)."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def cpu_cores(self) -> float:
        """Cores the load generator kept busy on average (0 if its life had no length)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class LoadError(RuntimeError):
    """The load generator failed to run or printed nothing usable."""


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0..100) of ``values`` by the nearest-rank method.

    Nearest rank always returns an observed value (as wrk's histogram does). Raises
    ``ValueError`` for an empty sequence or ``q`` outside 0..100.
    """
    if not values:
        raise ValueError("percentile of an empty sequence is undefined")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in 0..100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def wrk_script(body: str) -> str:
    """Return the wrk Lua script that POSTs ``body`` and prints a JSON summary line.

    Raises ``ValueError`` if ``body`` contains the Lua long-bracket terminator.
    """
    if "]==]" in body:
        raise ValueError("request body must not contain ']==]' (the Lua string delimiter)")
    return _WRK_SCRIPT % {"body": body, "mark": _WRK_MARK}


def parse_wrk_output(text: str) -> dict[str, float]:
    """Extract the JSON summary that ``wrk_script``'s ``done`` hook printed.

    Raises ``LoadError`` naming what was missing when no summary line is present.
    """
    for line in text.splitlines():
        if line.startswith(_WRK_MARK):
            parsed = json.loads(line[len(_WRK_MARK) :])
            return {k: float(v) for k, v in parsed.items()}
    raise LoadError(f"wrk printed no summary line ({_WRK_MARK.strip()}); its output:\n{text}")


def _run_child(argv: list[str], timeout_s: float) -> tuple[int, str, str, float, float]:
    """Run ``argv``; return (status, stdout, stderr, cpu seconds, wall seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = start + timeout_s
        while True:
            # wait4 (not Popen.wait) because only it returns the child's rusage.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
            wall,
        )


def run_wrk(
    url: str, body: str, concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """Warm up, then measure with wrk (one thread: it needs far less than a core).

    Raises ``LoadError`` if wrk is missing or fails.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise LoadError(WRK_INSTALL_HINT)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(wrk_script(body))
        results = []
        for seconds in (warmup_s, duration_s):
            if seconds <= 0:
                continue
            argv = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s"]
            argv += ["-s", str(script), url]
            status, out, err, cpu, wall = _run_child(argv, timeout_s=seconds + 60)
            if status != 0:
                raise LoadError(f"wrk exited with {status}: {err.strip() or out.strip()}")
            results.append((parse_wrk_output(out), cpu, wall))
    summary, cpu, wall = results[-1]
    return LoadResult(
        requests=int(summary["requests"]),
        duration_s=summary["duration_s"],
        p50_ms=summary["p50_ms"],
        p99_ms=summary["p99_ms"],
        errors=int(summary["errors"]),
        cpu_s=cpu,
        wall_s=wall,
    )


def run_asyncio(
    url: str, body: str, concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """Warm up, then measure with this module's asyncio client in a child process.

    Raises ``LoadError`` if the client fails.
    """
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_text(body)
        argv = [sys.executable, "-m", "bench.loadgen", "--url", url, "--body-file", str(body_file)]
        argv += ["--concurrency", str(concurrency)]
        argv += ["--warmup-s", str(warmup_s), "--duration-s", str(duration_s)]
        status, out, err, cpu, wall = _run_child(argv, timeout_s=warmup_s + duration_s + 60)
    if status != 0:
        raise LoadError(f"asyncio load generator exited with {status}: {err.strip()}")
    summary = json.loads(out)
    return LoadResult(
        requests=summary["requests"],
        duration_s=summary["duration_s"],
        p50_ms=summary["p50_ms"],
        p99_ms=summary["p99_ms"],
        errors=summary["errors"],
        cpu_s=cpu,
        wall_s=wall,
    )


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _connection(
    host: str, port: int, request: bytes, start: float, end: float, latencies: list[float]
) -> int:
    """Drive one keep-alive connection until ``end``; return its error count."""
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (now := time.monotonic()) < end:
            try:
                writer.write(request)
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1 if now >= start else 0
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            done = time.monotonic()
            # Only requests sent after the warm-up and answered within the window count.
            if now >= start and done <= end:
                latencies.append(done - now)
                if not 200 <= status < 300:
                    errors += 1
    finally:
        writer.close()
    return errors


async def drive(
    url: str, body: bytes, concurrency: int, warmup_s: float, duration_s: float
) -> dict[str, float]:
    """Run the asyncio closed loop in this process; return the summary wrk would print.

    Raises ``ValueError`` for a URL that is not plain ``http://host:port/path``.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"url must look like http://HOST:PORT/PATH, got {url!r}")
    request = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    start = time.monotonic() + warmup_s
    end = start + duration_s
    errors = await asyncio.gather(
        *(
            _connection(parts.hostname, parts.port, request, start, end, latencies)
            for _ in range(concurrency)
        )
    )
    ms = [x * 1e3 for x in latencies] or [0.0]
    return {
        "requests": len(latencies),
        "duration_s": duration_s,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "errors": sum(errors),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the asyncio client; prints one JSON summary. Exit 2 on bad flags."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--duration-s", type=float, default=8.0)
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("need --concurrency >= 1, --duration-s > 0 and --warmup-s >= 0")
    body = args.body_file.read_bytes()
    try:  # uvloop (shipped with uvicorn[standard]) halves the client's CPU per request
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - the serving extra installs it
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        summary = runner.run(
            drive(args.url, body, args.concurrency, args.warmup_s, args.duration_s)
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
