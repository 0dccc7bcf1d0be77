"""The serving benchmark's report: its JSON schema, the ratios, the targets and the table.

Pure functions over plain data, so the arithmetic and the PASS/FAIL verdicts are
tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BATCH_SIZES = (1, 8, 32, 64, 128)
MODES = ("batched", "unbatched", "processes")
#: The issue's targets (docs/performance.md): one ``make bench`` run, demo model.
LIMIT_SHARE = 0.5
MAX_P99_MS = 50.0
MIN_BATCHED_OVER_UNBATCHED = 30.0
C1_FACTOR, C1_SLACK_MS = 1.15, 2.0
MAX_STARTUP_S = 5.0
#: "Memory flat": RSS after a measured run at most this share above the RSS before it.
MAX_RSS_GROWTH = 0.05

_LIMIT_TABLE = {
    "type": "object",
    "propertyNames": {"pattern": "^[1-9][0-9]*$"},
    "additionalProperties": {
        "type": "object",
        "required": ["rows_per_s", "ms_per_call"],
        "properties": {"rows_per_s": {"type": "number"}, "ms_per_call": {"type": "number"}},
    },
}

#: JSON Schema of ``python -m bench.serving --json`` (extra keys are allowed).
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["model", "limit", "runs", "ratios"],
    "properties": {
        "model": {"type": "string"},
        "limit": _LIMIT_TABLE,
        "limit_flavor": _LIMIT_TABLE,
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
                    "rss_before_mb": {"type": "number"},
                    "rss_mb": {"type": "number"},
                },
            },
        },
        "startup": {
            "type": "object",
            "propertyNames": {"enum": list(MODES)},
            "additionalProperties": {
                "type": "object",
                "required": ["ready_s"],
                "properties": {
                    "ready_s": {"type": "number"},
                    "startup_s": {"type": ["number", "null"]},
                    "phases_s": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
        },
        "peak_rss_mb": {
            "type": "object",
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "number"}},
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
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["target", "measured", "pass"],
                "properties": {
                    "target": {"type": "string"},
                    "measured": {"type": "string"},
                    "pass": {"type": "boolean"},
                },
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
    ``KeyError`` naming the missing run or batch size. With a ``processes`` run at
    concurrency 64, ``processes_vs_limit_c64`` is added.
    """
    b64 = _run(runs, "batched", 64)
    u64 = _run(runs, "unbatched", 64)
    b1 = _run(runs, "batched", 1)
    ratios = {
        "batched_vs_limit_c64": _ratio(b64["rps"], limit["64"]["rows_per_s"]),
        "batched_vs_unbatched_c64": _ratio(b64["rps"], u64["rps"]),
        "c1_p50_vs_limit_batch1": _ratio(b1["p50_ms"], limit["1"]["ms_per_call"]),
    }
    try:
        p64 = _run(runs, "processes", 64)
    except KeyError:
        return ratios
    ratios["processes_vs_limit_c64"] = _ratio(p64["rps"], limit["64"]["rows_per_s"])
    return ratios


def rss_growth(run: Mapping[str, Any]) -> float:
    """A run's RSS after over before the measured period, minus 1 (0 if not recorded)."""
    before, after = run.get("rss_before_mb"), run.get("rss_mb")
    if not before or after is None:
        return 0.0
    return after / before - 1.0


def _row(target: str, measured: str, ok: bool) -> dict[str, Any]:
    return {"target": target, "measured": measured, "pass": bool(ok)}


def _c64_targets(
    mode: str, limit: Mapping[str, Mapping[str, float]], runs: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    run = _run(runs, mode, 64)
    unbatched = _run(runs, "unbatched", 64)
    need = LIMIT_SHARE * limit["64"]["rows_per_s"]
    over = _ratio(run["rps"], unbatched["rps"])
    return [
        _row(
            f"{mode} c64 req/s >= {LIMIT_SHARE:g} x limit at batch 64 ({need:,.0f})",
            f"{run['rps']:,.0f} ({_ratio(run['rps'], limit['64']['rows_per_s']):.2f}x)",
            run["rps"] >= need,
        ),
        _row(
            f"{mode} c64 p99 <= {MAX_P99_MS:g} ms",
            f"{run['p99_ms']:.1f} ms",
            run["p99_ms"] <= MAX_P99_MS,
        ),
        _row(f"{mode} c64 zero errors", str(run["errors"]), run["errors"] == 0),
        _row(
            f"{mode} c64 >= {MIN_BATCHED_OVER_UNBATCHED:g}x unbatched c64 "
            f"({unbatched['rps']:,.0f} req/s)",
            f"{over:.1f}x",
            over >= MIN_BATCHED_OVER_UNBATCHED,
        ),
    ]


def check_targets(
    limit: Mapping[str, Mapping[str, float]],
    runs: Sequence[Mapping[str, Any]],
    startup: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Return each target of the issue as ``{"target", "measured", "pass"}``, in order.

    batched c64: at least ``LIMIT_SHARE`` x the batch-64 limit, p99 at most
    ``MAX_P99_MS``, zero errors, at least ``MIN_BATCHED_OVER_UNBATCHED`` x unbatched
    (the same for ``processes`` when it ran); batched c1 p50 at most ``C1_FACTOR`` x
    the batch-1 call + ``C1_SLACK_MS``; the batched service (the defaults) ready within
    ``MAX_STARTUP_S`` of its spawn (when ``startup`` has it); every run's RSS within
    ``MAX_RSS_GROWTH`` of its start; zero errors in every run. Raises ``KeyError``
    naming a missing run like ``compute_ratios``.
    """
    rows = _c64_targets("batched", limit, runs)
    if any(run["mode"] == "processes" and run["concurrency"] == 64 for run in runs):
        rows += _c64_targets("processes", limit, runs)
    b1 = _run(runs, "batched", 1)
    bound = limit["1"]["ms_per_call"] * C1_FACTOR + C1_SLACK_MS
    rows.append(
        _row(
            f"batched c1 p50 <= {C1_FACTOR:g} x batch-1 call + {C1_SLACK_MS:g} ms ({bound:.2f} ms)",
            f"{b1['p50_ms']:.2f} ms",
            b1["p50_ms"] <= bound,
        )
    )
    figures = (startup or {}).get("batched")
    if figures is not None:  # the defaults: the startup a pod pays
        rows.append(
            _row(
                f"batched startup to ready <= {MAX_STARTUP_S:g} s",
                f"{figures['ready_s']:.2f} s",
                figures["ready_s"] <= MAX_STARTUP_S,
            )
        )
    worst = max(runs, key=rss_growth)
    rows.append(
        _row(
            f"memory flat: RSS growth per run <= {MAX_RSS_GROWTH:.0%}",
            f"{rss_growth(worst):+.1%} ({worst['mode']} c{worst['concurrency']})",
            rss_growth(worst) <= MAX_RSS_GROWTH,
        )
    )
    errors = sum(run["errors"] for run in runs)
    rows.append(_row("zero errors, all runs", str(errors), errors == 0))
    return rows


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def _limit_lines(title: str, table: Mapping[str, Mapping[str, float]]) -> list[str]:
    lines = [title, f"  {'batch':>5}  {'rows/s':>10}  {'ms/call':>8}"]
    for batch, row in table.items():
        lines.append(f"  {batch:>5}  {row['rows_per_s']:>10.0f}  {row['ms_per_call']:>8.2f}")
    return lines


def render_text(report: Mapping[str, Any]) -> str:
    """Render a report (as built by ``bench.serving``) as the tables people read."""
    lines = [f"model: {report['model']}", ""]
    lines += _limit_lines("in-process limit through mlflow.pyfunc predict:", report["limit"])
    if "limit_flavor" in report:
        lines += [""]
        lines += _limit_lines(
            "in-process limit through the flavor's predict (what the service calls):",
            report["limit_flavor"],
        )
    lines += ["", f"service, single-row V2 infer, closed loop ({report.get('loadgen', '?')}):"]
    lines.append(
        f"  {'mode':<9}  {'conc':>4}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}"
        f"  {'loadgen cpu':>11}  {'server cpu':>10}  {'rss MB':>7}  {'growth':>6}"
    )
    for run in report["runs"]:
        lines.append(
            f"  {run['mode']:<9}  {run['concurrency']:>4}  {run['rps']:>8.0f}"
            f"  {run['p50_ms']:>7.2f}  {run['p99_ms']:>7.2f}  {run['errors']:>6}"
            f"  {_fmt(run.get('loadgen_cpu'), '>11.2f')}  {_fmt(run.get('server_cpu'), '>10.2f')}"
            f"  {_fmt(run.get('rss_mb'), '>7.1f')}  {rss_growth(run):>+6.1%}"
        )
    if report.get("startup"):
        lines += ["", "startup to ready (seen by the bench; the service's own phases):"]
        for mode, figures in report["startup"].items():
            phases = ", ".join(f"{p} {s:.2f}" for p, s in figures.get("phases_s", {}).items())
            lines.append(f"  {mode:<9}  {figures['ready_s']:>6.2f} s  ({phases or 'no phases'})")
    if report.get("peak_rss_mb"):
        lines += ["", "peak RSS (VmHWM) of every process, MB:"]
        for mode, processes in report["peak_rss_mb"].items():
            each = ", ".join(f"{name} {mb:.1f}" for name, mb in processes.items())
            lines.append(f"  {mode:<9}  {each}")
    lines += ["", "ratios:"]
    lines += [f"  {name}: {value:.2f}" for name, value in report["ratios"].items()]
    if "targets" in report:
        lines += ["", "targets:"]
        for row in report["targets"]:
            verdict = "PASS" if row["pass"] else "FAIL"
            lines.append(f"  {verdict}  {row['target']}: {row['measured']}")
    return "\n".join(lines)
