"""The serving benchmark's report: its JSON schema, the ratios, the targets and the table.

Pure functions over plain data, so the arithmetic is tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BATCH_SIZES = (1, 8, 32, 64, 128)
MODES = ("batched", "unbatched")

#: JSON Schema of ``python -m bench.serving --json`` (extra keys are allowed).
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["model", "limit", "runs", "ratios"],
    "properties": {
        "model": {"type": "string"},
        "limit": {
            "type": "object",
            "propertyNames": {"pattern": "^[1-9][0-9]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["rows_per_s", "ms_per_call"],
                "properties": {
                    "rows_per_s": {"type": "number"},
                    "ms_per_call": {"type": "number"},
                },
            },
        },
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["mode", "concurrency", "rps", "p50_ms", "p99_ms", "errors"],
                "properties": {
                    "mode": {"enum": list(MODES)},
                    "concurrency": {"type": "integer", "minimum": 1},
                    "rps": {"type": "number"},
                    "p50_ms": {"type": "number"},
                    "p99_ms": {"type": "number"},
                    "errors": {"type": "integer", "minimum": 0},
                },
            },
        },
        "ratios": {
            "type": "object",
            "required": [
                "batched_vs_limit_c64",
                "batched_vs_unbatched_c64",
                "c1_p50_vs_limit_batch1",
            ],
            "properties": {
                "batched_vs_limit_c64": {"type": "number"},
                "batched_vs_unbatched_c64": {"type": "number"},
                "c1_p50_vs_limit_batch1": {"type": "number"},
            },
        },
    },
}


def _run(runs: Sequence[Mapping[str, Any]], mode: str, concurrency: int) -> Mapping[str, Any]:
    for run in runs:
        if run["mode"] == mode and run["concurrency"] == concurrency:
            return run
    raise KeyError(f"no {mode} run at concurrency {concurrency}")


def _ratio(numerator: float, denominator: float) -> float:
    # A zero denominator means a run served nothing; report 0 rather than inf so JSON stays valid.
    return numerator / denominator if denominator > 0 else 0.0


def compute_ratios(
    limit: Mapping[str, Mapping[str, float]], runs: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Return the three headline ratios of the report.

    ``batched_vs_limit_c64``: batched requests/s at concurrency 64 over the in-process
    rows/s at batch 64. ``batched_vs_unbatched_c64``: batched over unbatched requests/s
    at concurrency 64. ``c1_p50_vs_limit_batch1``: batched p50 at concurrency 1 over
    the in-process ms per call at batch 1. A zero denominator gives 0. Raises
    ``KeyError`` naming the missing run or batch size.
    """
    b64 = _run(runs, "batched", 64)
    u64 = _run(runs, "unbatched", 64)
    b1 = _run(runs, "batched", 1)
    return {
        "batched_vs_limit_c64": _ratio(b64["rps"], limit["64"]["rows_per_s"]),
        "batched_vs_unbatched_c64": _ratio(b64["rps"], u64["rps"]),
        "c1_p50_vs_limit_batch1": _ratio(b1["p50_ms"], limit["1"]["ms_per_call"]),
    }


def check_targets(
    limit: Mapping[str, Mapping[str, float]], runs: Sequence[Mapping[str, Any]]
) -> dict[str, bool]:
    """Return each target of the issue with whether this run meets it.

    Targets: batched c64 at least 0.6x the batch-64 limit with p99 at most 100 ms; at
    least 30x unbatched at c64; batched c1 p50 at most 1.15x the batch-1 call + 2 ms;
    zero errors in every run. Raises ``KeyError`` like ``compute_ratios``.
    """
    ratios = compute_ratios(limit, runs)
    b64 = _run(runs, "batched", 64)
    b1 = _run(runs, "batched", 1)
    return {
        "batched_c64_rps_ge_0.6x_limit64": ratios["batched_vs_limit_c64"] >= 0.6,
        "batched_c64_p99_le_100ms": b64["p99_ms"] <= 100.0,
        "batched_vs_unbatched_c64_ge_30x": ratios["batched_vs_unbatched_c64"] >= 30.0,
        "c1_p50_le_1.15x_limit1_plus_2ms": b1["p50_ms"] <= limit["1"]["ms_per_call"] * 1.15 + 2.0,
        "zero_errors": all(run["errors"] == 0 for run in runs),
    }


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def render_text(report: Mapping[str, Any]) -> str:
    """Render a report (as built by ``bench.serving``) as the tables people read."""
    lines = [f"model: {report['model']}", "", "in-process limit (mlflow.pyfunc predict):"]
    lines.append(f"  {'batch':>5}  {'rows/s':>10}  {'ms/call':>8}")
    for batch, row in report["limit"].items():
        lines.append(f"  {batch:>5}  {row['rows_per_s']:>10.0f}  {row['ms_per_call']:>8.2f}")
    lines += ["", f"service, single-row V2 infer, closed loop ({report.get('loadgen', '?')}):"]
    header = (
        f"  {'mode':<9}  {'conc':>4}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}"
        f"  {'loadgen cpu':>11}  {'server cpu':>10}  {'rss MB':>7}"
    )
    lines.append(header)
    for run in report["runs"]:
        lines.append(
            f"  {run['mode']:<9}  {run['concurrency']:>4}  {run['rps']:>8.0f}"
            f"  {run['p50_ms']:>7.2f}  {run['p99_ms']:>7.2f}  {run['errors']:>6}"
            f"  {_fmt(run.get('loadgen_cpu'), '>11.2f')}  {_fmt(run.get('server_cpu'), '>10.2f')}"
            f"  {_fmt(run.get('rss_mb'), '>7.1f')}"
        )
    lines += ["", "ratios:"]
    lines += [f"  {name}: {value:.2f}" for name, value in report["ratios"].items()]
    if "peak_rss_mb" in report:
        lines += ["", "service peak RSS (VmHWM):"]
        lines += [f"  {mode}: {mb:.1f} MB" for mode, mb in report["peak_rss_mb"].items()]
    if "targets" in report:
        lines += ["", "targets:"]
        lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in report["targets"].items()]
    return "\n".join(lines)
