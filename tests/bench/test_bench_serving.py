"""The serving benchmark's pure parts: percentiles, ratios, targets, schema, parsers.

No server and no timing: these check the arithmetic and the formats the benchmark
reports, so a wrong ratio or a malformed JSON report fails here rather than in a
misleading table.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from bench import loadgen
from bench.loadgen import LoadError, LoadResult, parse_wrk_output, percentile, wrk_script
from bench.report import REPORT_SCHEMA, check_targets, compute_ratios, render_text
from bench.serving import (
    REQUEST_BODY,
    best_limit,
    parse_args,
    proc_stat_cpu_ticks,
    proc_status_kb,
)

LIMIT = {
    "1": {"rows_per_s": 50.0, "ms_per_call": 20.0},
    "64": {"rows_per_s": 3000.0, "ms_per_call": 21.3},
}


def _runs(b64_rps: float = 2400.0, b64_p99: float = 60.0, b1_p50: float = 22.0) -> list[Any]:
    return [
        {"mode": "batched", "concurrency": 1, "rps": 45.0, "p50_ms": b1_p50, "p99_ms": 30.0,
         "errors": 0},
        {"mode": "batched", "concurrency": 64, "rps": b64_rps, "p50_ms": 25.0, "p99_ms": b64_p99,
         "errors": 0},
        {"mode": "unbatched", "concurrency": 64, "rps": 48.0, "p50_ms": 1300.0, "p99_ms": 1400.0,
         "errors": 0},
    ]  # fmt: skip


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
    assert all(check_targets(LIMIT, _runs()).values())
    # 1.15 x 20 ms + 2 ms = 25 ms is the c1 p50 bound.
    assert check_targets(LIMIT, _runs(b1_p50=25.0))["c1_p50_le_1.15x_limit1_plus_2ms"]
    assert not check_targets(LIMIT, _runs(b1_p50=25.1))["c1_p50_le_1.15x_limit1_plus_2ms"]
    assert not check_targets(LIMIT, _runs(b64_rps=1799.0))["batched_c64_rps_ge_0.6x_limit64"]
    assert not check_targets(LIMIT, _runs(b64_p99=100.5))["batched_c64_p99_le_100ms"]
    assert not check_targets(LIMIT, _runs(b64_rps=1439.0))["batched_vs_unbatched_c64_ge_30x"]
    runs = _runs()
    runs[0]["errors"] = 1
    assert not check_targets(LIMIT, runs)["zero_errors"]


def _report() -> dict[str, Any]:
    runs = _runs()
    return {
        "model": "demo",
        "limit": LIMIT,
        "runs": runs,
        "ratios": compute_ratios(LIMIT, runs),
        "targets": check_targets(LIMIT, runs),
        "peak_rss_mb": {"batched": 300.0, "unbatched": 290.0},
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
    ],
)
def test_schema_rejects_malformed_reports(breakage: Any) -> None:
    report = _report()
    breakage(report)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, REPORT_SCHEMA)


def test_render_text_shows_every_run_and_target() -> None:
    text = render_text(_report())
    assert "unbatched" in text and "PASS  zero_errors" in text
    assert "batched_vs_unbatched_c64: 50.00" in text
    assert text.count("\n  batched ") == 2


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
