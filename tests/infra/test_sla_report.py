"""``python -m infra.sla_report`` against a real Prometheus server holding known data.

The fixture writes two models' series as OpenMetrics (5-minute samples from 46 h to
6 h ago), turns them into TSDB blocks with ``promtool tsdb create-blocks-from
openmetrics`` and starts ``prometheus`` on 127.0.0.1 (free port, data in tmp, log to
a file), waits for ``/-/ready`` in a bounded loop and always stops it.

- ``fraud`` meets every target: 1 in 5000 requests is a 5xx (99.98 %), 350 are 4xx
  (not burning the budget), every request takes 25-50 ms (p95 47.5 ms);
- ``ranker`` breaches them all: 25 in 5000 are 503 (99.5 %), 100-250 ms (p95 235 ms).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.prometheus_server import Prometheus, free_port, run_report, serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEP_S = 300
END_AGO_S = 6 * 3600
SPAN_S = 40 * 3600
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf")
# model -> (requests per step by code, requests per step at or below each bucket bound)
MODELS = {
    "fraud": (
        {"200": 4650, "429": 250, "400": 99, "500": 1},
        {"0.005": 0, "0.01": 0, "0.025": 2500, "0.05": 5000},
    ),
    "ranker": (
        {"200": 4975, "503": 25},
        {"0.005": 0, "0.01": 0, "0.025": 0, "0.05": 0, "0.1": 2500, "0.25": 5000},
    ),
}


def openmetrics(now: int) -> str:
    """Cumulative counters and histogram buckets for ``MODELS``, ending ``END_AGO_S`` ago."""
    steps = range(SPAN_S // STEP_S + 1)
    start = now - END_AGO_S - SPAN_S
    lines = ["# TYPE serving_requests counter"]
    for i in steps:
        for model, (codes, _) in MODELS.items():
            for code, n in codes.items():
                labels = f'model="{model}",endpoint="infer",code="{code}"'
                lines.append(f"serving_requests_total{{{labels}}} {i * n} {start + i * STEP_S}")
    lines.append("# TYPE serving_request_duration_seconds histogram")
    for i in steps:
        ts = start + i * STEP_S
        for model, (codes, below) in MODELS.items():
            total = sum(codes.values())
            labels = f'model="{model}",endpoint="infer"'
            for le in BUCKETS:
                count = below.get(le, total) * i
                lines.append(
                    f'serving_request_duration_seconds_bucket{{{labels},le="{le}"}} {count} {ts}'
                )
            lines.append(f"serving_request_duration_seconds_count{{{labels}}} {total * i} {ts}")
            lines.append(f"serving_request_duration_seconds_sum{{{labels}}} {total * i / 20} {ts}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with serving(tmp_path_factory.mktemp("prometheus"), openmetrics(int(time.time()))) as server:
        yield server


def report(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_report("infra.sla_report", *args, cwd=cwd)


def test_json_report_measures_each_model(prometheus: Prometheus) -> None:
    result = report("--prometheus", prometheus.url, "--window", "2d", "--json")
    assert result.returncode == 1, result.stderr  # ranker breaches
    document = json.loads(result.stdout)
    assert document["window"] == "2d"
    assert document["targets"] == {
        "availability_percent": 99.9,
        "latency_p95_ms": 100,
        "error_rate_percent": 0.1,
        "window_days": 30,
    }
    fraud, ranker = document["models"]["fraud"], document["models"]["ranker"]
    assert set(document["models"]) == {"fraud", "ranker"}
    assert fraud["availability_percent"] == pytest.approx(99.98, abs=1e-3)
    assert fraud["error_rate_percent"] == pytest.approx(0.02, abs=1e-3)
    assert fraud["latency_p95_ms"] == pytest.approx(47.5, abs=0.1)
    assert fraud["error_budget_remaining_percent"] == pytest.approx(80.0, abs=0.1)
    assert fraud["breached"] == []
    assert ranker["availability_percent"] == pytest.approx(99.5, abs=1e-3)
    assert ranker["error_rate_percent"] == pytest.approx(0.5, abs=1e-3)
    assert ranker["latency_p95_ms"] == pytest.approx(235.0, abs=0.1)
    assert ranker["error_budget_remaining_percent"] == pytest.approx(-400.0, abs=0.5)
    assert ranker["breached"] == ["availability", "latency_p95", "error_rate"]


def test_healthy_model_alone_meets_its_targets(prometheus: Prometheus) -> None:
    result = report("--prometheus", prometheus.url, "--window", "2d", "--json", "--model", "fraud")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(json.loads(result.stdout)["models"]) == {"fraud"}


def test_table_names_the_breaches(prometheus: Prometheus) -> None:
    result = report("--prometheus", prometheus.url, "--window", "2d")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "99.9" in lines[0] and "100 ms" in lines[0]
    fraud = next(line for line in lines if line.startswith("fraud"))
    ranker = next(line for line in lines if line.startswith("ranker"))
    assert fraud.endswith("ok") and "47.5" in fraud
    assert "BREACHED: availability, latency_p95, error_rate" in ranker and "235.0" in ranker


def _project(tmp_path: Path, stack: str, config: str) -> Path:
    """A checkout with the project's Pulumi.yaml and a dev-like stack with ``config``."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    dev = (ROOT / "Pulumi.dev.yaml").read_text()
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(dev.rstrip("\n") + "\n" + config)
    return tmp_path


def test_targets_come_from_the_stack(prometheus: Prometheus, tmp_path: Path) -> None:
    config = (
        '  mlplatform:sloAvailabilityPercent: "99"\n  mlplatform:sloErrorRatePercent: "1"\n'
        "  mlplatform:sloLatencyP95Ms: 300\n"
    )
    cwd = _project(tmp_path, "relaxed", config)
    args = ("--prometheus", prometheus.url, "--window", "2d", "--json", "--stack", "relaxed")
    result = report(*args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["targets"]["availability_percent"] == 99.0
    assert document["targets"]["latency_p95_ms"] == 300
    assert document["targets"]["error_rate_percent"] == 1.0
    assert document["models"]["ranker"]["error_budget_remaining_percent"] == pytest.approx(50.0)
    # What the stack leaves out comes from Pulumi.yaml's defaults (100 ms here).
    cwd = (
        _project(tmp_path / "defaults", "plain", "")
        if (tmp_path / "defaults").mkdir() is None
        else cwd
    )
    result = report(*args[:-1], "plain", cwd=cwd)
    assert json.loads(result.stdout)["targets"]["latency_p95_ms"] == 100


def test_bad_stack_value_is_a_usage_error(prometheus: Prometheus, tmp_path: Path) -> None:
    cwd = _project(tmp_path, "bad", "  mlplatform:sloAvailabilityPercent: high\n")
    result = report("--prometheus", prometheus.url, "--stack", "bad", cwd=cwd)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sla_report: invalid stack configuration: mlplatform:sloAvailabilityPercent: 'high' "
        "is not a percentage like 99.9"
    ]


def test_unreachable_prometheus_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = report("--prometheus", url, "--window", "2d")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "cannot reach" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_empty_window_is_an_error(prometheus: Prometheus) -> None:
    result = report("--prometheus", prometheus.url, "--window", "1h")  # data ended 6 h ago
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no requests" in lines[0] and "1h" in lines[0]
    assert prometheus.url in lines[0]


def test_bad_window_is_a_usage_error(prometheus: Prometheus) -> None:
    result = report("--prometheus", prometheus.url, "--window", "two days")
    assert result.returncode == 2
    assert "--window 'two days'" in result.stderr and "Traceback" not in result.stderr
