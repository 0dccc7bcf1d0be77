"""Overload benchmark: goodput while the service refuses work, as a ratio of normal goodput.

``python -m bench.overload [--json] [--warmup-s 2] [--duration-s 8] [--service-args
FLAGS]`` trains and
registers the demo model (as ``bench.serving`` does), then measures, each with the
asyncio load generator in its own process:

1. ``queue``: 200 closed-loop clients on a service with the default queue (1024),
   then the same 200 on one with ``--max-queue 8``, where most get 429 and retry at
   once. Goodput is answers with 200 per second; the ratio is the second over the first.
2. ``404``: 16 good clients alone, then the same 16 while 64 more flood an unknown
   model's route (404). The ratio is the good clients' goodput with the flood over
   without it.

A ratio near 1 means refusing work stays cheap next to doing it. The flooding clients
ignore ``Retry-After`` and retry at once; the service paces them by holding each
refusal ``--refusal-delay-ms`` (pass ``--service-args '--refusal-delay-ms 0'`` to see
the refusals answered at once). Progress goes to
stderr; ``--json`` prints one object. Exit 0 when the run completed, 1 when the
service or a load generator failed, 2 for bad flags.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.loadgen import LoadError, LoadResult, run_asyncio
from bench.serving import REQUEST_BODY, Service, progress

FLOOD_CLIENTS = 200
GOOD_CLIENTS = 16
NOT_FOUND_CLIENTS = 64
INFER = "/v2/models/anomaly-detector/infer"


def goodput(result: LoadResult) -> float:
    """Answers with a 2xx status per second over the measured period."""
    ok = max(0, result.requests - result.errors)
    return ok / result.duration_s if result.duration_s > 0 else 0.0


def summarize(
    normal: LoadResult, overloaded: LoadResult, refusals: LoadResult | None
) -> dict[str, Any]:
    """One case's figures: goodput normal and under overload, their ratio, refusals/s."""
    base, under = goodput(normal), goodput(overloaded)
    refused = overloaded.errors / overloaded.duration_s if overloaded.duration_s > 0 else 0.0
    if refusals is not None:
        refused += refusals.requests / refusals.duration_s if refusals.duration_s > 0 else 0.0
    return {
        "goodput_normal": round(base, 1),
        "goodput_overloaded": round(under, 1),
        "ratio": round(under / base, 3) if base > 0 else 0.0,
        "refusals_per_s": round(refused, 1),
        "p99_ms_overloaded": round(overloaded.p99_ms, 3),
    }


def render(report: Mapping[str, Any]) -> str:
    """The report as a small table."""
    lines = ["case   goodput normal  under overload  ratio  refusals/s  p99 ms (overloaded)"]
    for case, row in report["cases"].items():
        lines.append(
            f"{case:<6} {row['goodput_normal']:>14.1f}  {row['goodput_overloaded']:>14.1f}  "
            f"{row['ratio']:>5.3f}  {row['refusals_per_s']:>10.1f}  "
            f"{row['p99_ms_overloaded']:>8.1f}"
        )
    return "\n".join(lines)


def _measure(
    service: Service, args: argparse.Namespace, clients: int, path: str = INFER
) -> LoadResult:
    return run_asyncio(service.url(path), REQUEST_BODY, clients, args.warmup_s, args.duration_s)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Run both cases under ``root``; return the report."""
    from serving.demo import tracking_uri_for, train_and_register

    uri = train_and_register(root / "registry")
    tracking = tracking_uri_for(root / "registry")
    results: dict[str, LoadResult] = {}
    extra = shlex.split(args.service_args)
    for name, flags in (("default", []), ("queue8", ["--max-queue", "8"])):
        service = Service(uri, tracking, [*extra, *flags], root / f"{name}.log")
        try:
            service.wait_ready()
            progress(f"{name}: {FLOOD_CLIENTS} clients")
            results[f"{name}-flood"] = _measure(service, args, FLOOD_CLIENTS)
            if name == "default":
                progress(f"{name}: {GOOD_CLIENTS} good clients alone, then beside a 404 flood")
                results["good"] = _measure(service, args, GOOD_CLIENTS)
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    nf = pool.submit(_measure, service, args, NOT_FOUND_CLIENTS,
                                     "/v2/models/nope/infer")  # fmt: skip
                    good = pool.submit(_measure, service, args, GOOD_CLIENTS)
                    results["good-404"], results["404"] = good.result(), nf.result()
        finally:
            service.stop()
    return {
        "cases": {
            "queue": summarize(results["default-flood"], results["queue8-flood"], None),
            "404": summarize(results["good"], results["good-404"], results["404"]),
        },
        "settings": {
            "warmup_s": args.warmup_s,
            "duration_s": args.duration_s,
            "service_args": args.service_args,
        },
        "machine": {"cpus": os.cpu_count()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; return the exit status (module doc)."""
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="warm-up per run (2)")
    parser.add_argument("--duration-s", type=float, default=8.0, help="measurement per run (8)")
    parser.add_argument(
        "--service-args",
        default="",
        help="extra service flags for both services, e.g. '--predict-processes auto'",
    )
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("need --duration-s > 0 and --warmup-s >= 0")
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp:
        try:
            report = run(args, Path(tmp))
        except (LoadError, RuntimeError) as exc:
            progress(f"failed: {exc}")
            return 1
    print(json.dumps(report, indent=2) if args.json else render(report), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
