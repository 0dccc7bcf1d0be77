"""The serving benchmark's pure parts: percentiles, ratios, targets, schema, parsers.

No server and no timing: these check the arithmetic and the formats the benchmark
reports, so a wrong ratio or a malformed JSON report fails here rather than in a
misleading table.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from typing import Any

import jsonschema
import pytest

from bench import loadgen
from bench.loadgen import LoadError, LoadResult, parse_wrk_output, percentile, wrk_script
from bench.process import descendants, parent_pid, process_label
from bench.report import REPORT_SCHEMA, check_targets, compute_ratios, render_text, rss_growth
from bench.serving import (
    REQUEST_BODY,
    SHORT_MODES,
    best_limit,
    parse_args,
    proc_stat_cpu_ticks,
    proc_status_kb,
)

LIMIT = {
    "1": {"rows_per_s": 50.0, "ms_per_call": 20.0},
    "64": {"rows_per_s": 3000.0, "ms_per_call": 21.3},
}


def _run(mode: str, concurrency: int, rps: float, p50: float, p99: float) -> dict[str, Any]:
    run = {"mode": mode, "concurrency": concurrency, "rps": rps, "p50_ms": p50, "p99_ms": p99}
    return {**run, "errors": 0, "rss_before_mb": 300.0, "rss_mb": 301.0}


def _runs(b64_rps: float = 2400.0, b64_p99: float = 40.0, b1_p50: float = 22.0) -> list[Any]:
    return [
        _run("batched", 1, 45.0, b1_p50, 30.0),
        _run("batched", 64, b64_rps, 25.0, b64_p99),
        _run("unbatched", 64, 48.0, 1300.0, 1400.0),
    ]


STARTUP = {"batched": {"ready_s": 4.5, "startup_s": 4.4, "phases_s": {"imports": 2.0}}}


def _verdicts(rows: list[dict[str, Any]]) -> dict[str, bool]:
    return {row["target"].split(" (")[0]: row["pass"] for row in rows}


def test_percentile_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([7.0, 1.0, 3.0], 50) == 3.0  # unsorted input


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects_bad_input(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, q)


def test_ratios_are_the_issue_definitions() -> None:
    ratios = compute_ratios(LIMIT, _runs())
    assert ratios["batched_vs_limit_c64"] == pytest.approx(2400.0 / 3000.0)
    assert ratios["batched_vs_unbatched_c64"] == pytest.approx(2400.0 / 48.0)
    assert ratios["c1_p50_vs_limit_batch1"] == pytest.approx(22.0 / 20.0)


def test_best_limit_keeps_the_fastest_call_per_batch() -> None:
    before = {"1": {"rows_per_s": 40.0, "ms_per_call": 25.0}, "64": LIMIT["64"]}
    after = {"1": LIMIT["1"], "64": {"rows_per_s": 2000.0, "ms_per_call": 32.0}}
    assert best_limit(before, after) == LIMIT
    assert best_limit(after, before) == LIMIT


def test_ratio_with_zero_denominator_is_zero_not_inf() -> None:
    runs = _runs()
    runs[2]["rps"] = 0.0
    assert compute_ratios(LIMIT, runs)["batched_vs_unbatched_c64"] == 0.0


def test_ratios_name_the_missing_run() -> None:
    with pytest.raises(KeyError, match="unbatched run at concurrency 64"):
        compute_ratios(LIMIT, _runs()[:2])


def test_targets_pass_and_fail_at_their_thresholds() -> None:
    rows = check_targets(LIMIT, _runs(), STARTUP)
    assert all(row["pass"] for row in rows), rows
    # 1.15 x 20 ms + 2 ms = 25 ms is the c1 p50 bound.
    c1 = "batched c1 p50 <= 1.15 x batch-1 call + 2 ms"
    assert _verdicts(check_targets(LIMIT, _runs(b1_p50=25.0)))[c1]
    assert not _verdicts(check_targets(LIMIT, _runs(b1_p50=25.1)))[c1]
    # 0.5 x 3000 rows/s at batch 64 = 1500 req/s; 30 x 48 req/s unbatched = 1440 req/s.
    limit = "batched c64 req/s >= 0.5 x limit at batch 64"
    assert _verdicts(check_targets(LIMIT, _runs(b64_rps=1500.0)))[limit]
    assert not _verdicts(check_targets(LIMIT, _runs(b64_rps=1499.0)))[limit]
    assert not _verdicts(check_targets(LIMIT, _runs(b64_p99=50.5)))["batched c64 p99 <= 50 ms"]
    assert _verdicts(check_targets(LIMIT, _runs(b64_p99=50.0)))["batched c64 p99 <= 50 ms"]
    over = "batched c64 >= 30x unbatched c64"
    assert not _verdicts(check_targets(LIMIT, _runs(b64_rps=1439.0)))[over]
    runs = _runs()
    runs[0]["errors"] = 1
    verdicts = _verdicts(check_targets(LIMIT, runs))
    assert not verdicts["zero errors, all runs"] and verdicts["batched c64 zero errors"]
    runs[1]["errors"] = 2
    assert not _verdicts(check_targets(LIMIT, runs))["batched c64 zero errors"]


def test_startup_target_is_the_time_to_ready() -> None:
    slow = {"batched": {"ready_s": 5.01}}
    assert _verdicts(check_targets(LIMIT, _runs(), STARTUP))["batched startup to ready <= 5 s"]
    assert not _verdicts(check_targets(LIMIT, _runs(), slow))["batched startup to ready <= 5 s"]
    assert "batched startup to ready <= 5 s" not in _verdicts(check_targets(LIMIT, _runs()))


def test_memory_target_is_the_worst_growth_over_a_run() -> None:
    runs = _runs()
    assert rss_growth(runs[0]) == pytest.approx(1 / 300)
    assert rss_growth({"rss_mb": 10.0}) == 0.0  # not recorded: no growth claimed
    flat = "memory flat: RSS growth per run <= 5%"
    assert _verdicts(check_targets(LIMIT, runs))[flat]
    runs[2]["rss_mb"] = 316.0  # +5.3 %
    rows = check_targets(LIMIT, runs)
    assert not _verdicts(rows)[flat]
    assert next(r for r in rows if r["target"] == flat)["measured"] == "+5.3% (unbatched c64)"


def test_processes_mode_gets_the_c64_targets_and_a_ratio() -> None:
    runs = [*_runs(), _run("processes", 64, 1200.0, 30.0, 45.0)]
    verdicts = _verdicts(check_targets(LIMIT, runs))
    assert not verdicts["processes c64 req/s >= 0.5 x limit at batch 64"]
    assert verdicts["processes c64 p99 <= 50 ms"]
    assert compute_ratios(LIMIT, runs)["processes_vs_limit_c64"] == pytest.approx(0.4)
    assert "processes_vs_limit_c64" not in compute_ratios(LIMIT, _runs())


def test_targets_show_the_measured_value_beside_the_bound() -> None:
    row = check_targets(LIMIT, _runs(b64_rps=1234.0))[0]
    assert row == {
        "target": "batched c64 req/s >= 0.5 x limit at batch 64 (1,500)",
        "measured": "1,234 (0.41x)",
        "pass": False,
    }


def _report() -> dict[str, Any]:
    runs = _runs()
    return {
        "model": "demo",
        "limit": LIMIT,
        "limit_flavor": LIMIT,
        "runs": runs,
        "startup": copy.deepcopy(STARTUP),
        "ratios": compute_ratios(LIMIT, runs),
        "targets": check_targets(LIMIT, runs, STARTUP),
        "peak_rss_mb": {"batched": {"service": 300.0}, "processes": {"spawned 42": 290.0}},
    }


def test_report_matches_schema_and_round_trips_json() -> None:
    report = json.loads(json.dumps(_report()))
    jsonschema.validate(report, REPORT_SCHEMA)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda r: r["runs"][0].update(mode="fast"),
        lambda r: r["runs"][0].pop("errors"),
        lambda r: r["ratios"].pop("batched_vs_limit_c64"),
        lambda r: r["limit"].update({"x": {"rows_per_s": 1.0, "ms_per_call": 1.0}}),
        lambda r: r.pop("model"),
        lambda r: r["targets"][0].pop("measured"),
        lambda r: r["startup"].update(fast={"ready_s": 1.0}),
        lambda r: r["startup"]["batched"].pop("ready_s"),
    ],
)
def test_schema_rejects_malformed_reports(breakage: Any) -> None:
    report = _report()
    breakage(report)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, REPORT_SCHEMA)


def test_render_text_shows_every_run_and_target() -> None:
    text = render_text(_report())
    assert "unbatched" in text and "PASS  zero errors, all runs: 0" in text
    assert "PASS  batched startup to ready <= 5 s: 4.50 s" in text
    assert "batched_vs_unbatched_c64: 50.00" in text
    assert text.count("\n  batched ") == 4  # two runs, its startup and its peak RSS
    assert "through the flavor's predict" in text and "spawned 42 290.0" in text


def test_short_modes_run_the_concurrencies_their_targets_use() -> None:
    assert SHORT_MODES == {"unbatched": (1, 64), "processes": (1, 64)}
    assert parse_args([]).modes == ("batched", "unbatched", "processes")


def test_proc_tree_helpers() -> None:
    assert parent_pid("4242 (py (x) y) S 17 2 3") == 17
    assert os.getpid() in descendants(os.getppid())
    assert process_label(9, "python -m multiprocessing.resource_tracker 5") == (
        "resource-tracker 9"
    )
    assert process_label(9, "python -c from multiprocessing.spawn import spawn_main") == (
        "spawned 9"
    )


def test_wrk_script_embeds_body_and_output_parses() -> None:
    script = wrk_script(REQUEST_BODY)
    assert REQUEST_BODY in script and "latency:percentile(99)" in script
    with pytest.raises(ValueError, match="must not contain"):
        wrk_script("x]==]y")
    out = 'Running 8s test\nBENCH_JSON {"requests":100,"duration_s":2.0,"p50_ms":1.5,' + (
        '"p99_ms":9.0,"errors":3}\n  1 threads and 64 connections\n'
    )
    parsed = parse_wrk_output(out)
    assert parsed == {"requests": 100, "duration_s": 2.0, "p50_ms": 1.5, "p99_ms": 9.0,
                      "errors": 3}  # fmt: skip
    with pytest.raises(LoadError, match="no summary line"):
        parse_wrk_output("Running 8s test\n")


def test_load_result_rates() -> None:
    result = LoadResult(requests=900, duration_s=3.0, p50_ms=1, p99_ms=2, errors=0, cpu_s=1.0,
                        wall_s=4.0)  # fmt: skip
    assert result.rps == 300.0
    assert result.cpu_cores == 0.25
    assert LoadResult(0, 0.0, 0, 0, 0, 0.0, 0.0).rps == 0.0


def test_proc_parsers() -> None:
    status = "Name:\tpython\nVmHWM:\t  345600 kB\nVmRSS:\t  300000 kB\n"
    assert proc_status_kb(status, "VmHWM") == 345600
    with pytest.raises(KeyError, match="VmSwap"):
        proc_status_kb(status, "VmSwap")
    # A command name with spaces and parentheses must not shift the fields.
    stat = "4242 (py (x) y) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 5"
    assert proc_stat_cpu_ticks(stat) == 333


@pytest.mark.parametrize(
    "argv",
    [["--duration-s", "0"], ["--concurrency", "1,x"], ["--concurrency", "0"], ["--modes", "z"]],
)
def test_bad_flags_exit_2_naming_the_flag(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert argv[0].lstrip("-").split("-")[0] in capsys.readouterr().err


def test_asyncio_client_counts_non_2xx_as_errors() -> None:
    """The fallback client against a tiny local server answering 200 then 500 alternately."""

    async def scenario() -> dict[str, float]:
        served = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    served += 1
                    status = b"200 OK" if served % 2 else b"500 Internal Server Error"
                    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await loadgen.drive(
                f"http://127.0.0.1:{port}/x", REQUEST_BODY.encode(), 1, 0.0, 0.3
            )

    summary = asyncio.run(scenario())
    assert summary["requests"] > 2
    # Every other answer is a 500: errors are about half of the requests.
    assert abs(summary["errors"] - summary["requests"] / 2) <= 1
    assert summary["p50_ms"] > 0
