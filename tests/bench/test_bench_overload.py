"""The overload benchmark's arithmetic: goodput, ratios and refusals per second."""

from __future__ import annotations

from bench.loadgen import LoadResult
from bench.overload import goodput, render, summarize


def _result(requests: int, errors: int, duration_s: float = 10.0) -> LoadResult:
    return LoadResult(requests, duration_s, 5.0, 50.0, errors, cpu_s=1.0, wall_s=12.0)


def test_goodput_counts_only_successful_answers() -> None:
    assert goodput(_result(1000, 250)) == 75.0
    assert goodput(_result(0, 0, duration_s=0.0)) == 0.0


def test_summary_ratio_and_refusals_of_both_cases() -> None:
    queue = summarize(_result(20_000, 0), _result(60_000, 50_000), None)
    assert queue["goodput_normal"] == 2000.0 and queue["goodput_overloaded"] == 1000.0
    assert queue["ratio"] == 0.5 and queue["refusals_per_s"] == 5000.0
    flood = summarize(_result(8000, 0), _result(6000, 0), _result(30_000, 30_000))
    assert flood["ratio"] == 0.75 and flood["refusals_per_s"] == 3000.0
    text = render({"cases": {"queue": queue, "404": flood}})
    assert text.splitlines()[1].split()[:4] == ["queue", "2000.0", "1000.0", "0.500"]
