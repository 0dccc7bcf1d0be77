"""``python -m infra.rightsizing`` against a real Prometheus server holding known usage.

The fixture writes, every 2 minutes from 46 h to 10 min ago, what cAdvisor, kube-state-
metrics and the DCGM exporter would have reported for three workloads in ``ml-serving``:

- ``anomaly-blue`` (a Deployment: two pods on an m7i.xlarge), container ``serving``
  requesting 2 cores and 4 GiB: one pod uses 0.25 cores, the other 0.35 with one hour at
  0.9; memory 600 MiB and 650 MiB with one sample at 700 MiB. Sidecar ``istio-proxy``.
- ``ranker`` (one pod on a g5.xlarge with its GPU), 40 % GPU utilisation on average.
- ``fraud-canary``, which appeared 30 minutes before the data ends: too few samples.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import prices
from infra.config import stack_settings
from tests.infra.prometheus_server import Prometheus, free_port, run_report, serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEP_S = 120
END_AGO_S = 600
SPAN_S = 46 * 3600
MIB = 2**20
NS = "ml-serving"
ANOMALY = ("anomaly-blue-6d4cf8b7d9-x2kqp", "anomaly-blue-6d4cf8b7d9-9zqvw")
RANKER = "ranker-5f7b9c8d4-wq2zt"
CANARY = "fraud-canary-7c9d5b6f8-kk4x2"
NODES = {"ip-10-0-1-5": "m7i.xlarge", "ip-10-0-2-9": "g5.xlarge"}


def _container(pod: str, container: str) -> str:
    return f'namespace="{NS}",pod="{pod}",container="{container}"'


def openmetrics(now: int) -> str:
    """The usage above as OpenMetrics, cumulative CPU counters and gauges."""
    start = now - END_AGO_S - SPAN_S
    steps = SPAN_S // STEP_S + 1
    spike = range(steps // 2, steps // 2 + 3600 // STEP_S)
    # (pod, container, node, cores(i), memory MiB(i), request cores, request MiB, gpus)
    usage = [
        (ANOMALY[0], "serving", "ip-10-0-1-5", lambda i: 0.25, lambda i: 600, 2, 4096, 0),
        (
            ANOMALY[1],
            "serving",
            "ip-10-0-1-5",
            lambda i: 0.9 if i in spike else 0.35,
            lambda i: 700 if i == 10 else 650,
            2,
            4096,
            0,
        ),
        (ANOMALY[0], "istio-proxy", "ip-10-0-1-5", lambda i: 0.02, lambda i: 64, 0.1, 128, 0),
        (ANOMALY[1], "istio-proxy", "ip-10-0-1-5", lambda i: 0.02, lambda i: 64, 0.1, 128, 0),
        (RANKER, "serving", "ip-10-0-2-9", lambda i: 1.0, lambda i: 3000, 2, 8192, 1),
    ]
    canary_from = steps - 1800 // STEP_S
    cpu = ["# TYPE container_cpu_usage_seconds counter"]
    mem = ["# TYPE container_memory_working_set_bytes gauge"]
    req = ["# TYPE kube_pod_container_resource_requests gauge"]
    info = ["# TYPE kube_pod_info gauge"]
    gpu = ["# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    nodes = ["# TYPE kube_node_labels gauge"]
    rows = [(*u, 0) for u in usage]
    rows.append((CANARY, "serving", "ip-10-0-1-5", lambda i: 0.1, lambda i: 200, 1, 1024, 0, 1))
    for pod, container, node, cores, memory, req_cores, req_mib, gpus, late in rows:
        total = 0.0
        first = canary_from if late else 0
        for i in range(first, steps):
            ts = start + i * STEP_S
            labels = _container(pod, container)
            total += cores(i) * STEP_S
            cpu.append(f"container_cpu_usage_seconds_total{{{labels}}} {total} {ts}")
            mem.append(f"container_memory_working_set_bytes{{{labels}}} {memory(i) * MIB} {ts}")
            req.append(
                f'kube_pod_container_resource_requests{{{labels},resource="cpu",unit="core"}} '
                f"{req_cores} {ts}"
            )
            req.append(
                f'kube_pod_container_resource_requests{{{labels},resource="memory",unit="byte"}}'
                f" {req_mib * MIB} {ts}"
            )
            if gpus:
                req.append(
                    f"kube_pod_container_resource_requests{{{labels},"
                    f'resource="nvidia_com_gpu",unit="integer"}} {gpus} {ts}'
                )
                util = 30 if i % 2 else 50
                gpu.append(
                    f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",exported_namespace="{NS}",'
                    f'exported_pod="{pod}",exported_container="{container}",'
                    f'namespace="gpu-operator",pod="dcgm-exporter-abcde"}} {util} {ts}'
                )
            if container == "serving":
                info.append(f'kube_pod_info{{namespace="{NS}",pod="{pod}",node="{node}"}} 1 {ts}')
    for i in range(0, steps, 5):
        for node, kind in NODES.items():
            labels = f'node="{node}",label_node_kubernetes_io_instance_type="{kind}"'
            nodes.append(f"kube_node_labels{{{labels}}} 1 {start + i * STEP_S}")
    return "\n".join([*cpu, *mem, *req, *info, *gpu, *nodes, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with serving(tmp_path_factory.mktemp("prometheus"), openmetrics(int(time.time()))) as server:
        yield server


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return run_report("infra.rightsizing", *args, cwd=ROOT)


def _json(prometheus: Prometheus, *extra: str) -> dict[str, dict[str, object]]:
    result = report("--prometheus", prometheus.url, "--window", "2d", "--json", *extra)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    return {f"{c['workload']}/{c['container']}": c for c in document["containers"]}


def test_usage_and_requests_per_workload_container(prometheus: Prometheus) -> None:
    rows = _json(prometheus)
    assert sorted(rows) == [
        "anomaly-blue/istio-proxy",
        "anomaly-blue/serving",
        "fraud-canary/serving",
        "ranker/serving",
    ]
    serving_row = rows["anomaly-blue/serving"]
    assert serving_row["replicas"] == pytest.approx(2.0)
    assert serving_row["instance_type"] == "m7i.xlarge"
    assert serving_row["samples"] == 2 * (SPAN_S // STEP_S + 1)
    assert serving_row["cpu_request_cores"] == 2
    assert serving_row["memory_request_bytes"] == 4096 * MIB
    # The busier pod decides: p95 0.35 cores (the one-hour spike is under 5 %), max 0.9.
    assert serving_row["cpu_p95_cores"] == pytest.approx(0.35, abs=1e-3)
    assert serving_row["cpu_max_cores"] == pytest.approx(0.9, abs=1e-3)
    assert serving_row["memory_p95_bytes"] == 650 * MIB
    assert serving_row["memory_max_bytes"] == 700 * MIB
    assert serving_row["gpu_request"] == 0
    assert serving_row["gpu_utilisation_mean_percent"] is None
    ranker = rows["ranker/serving"]
    assert ranker["instance_type"] == "g5.xlarge"
    assert ranker["gpu_request"] == 1
    assert ranker["gpu_utilisation_mean_percent"] == pytest.approx(40, abs=0.5)
    assert ranker["gpu_utilisation_max_percent"] == 50


def test_recommendation_and_monthly_cost(prometheus: Prometheus) -> None:
    rec = _json(prometheus)["anomaly-blue/serving"]["recommendation"]
    assert isinstance(rec, dict)
    # CPU: p95 0.35 * 1.2 = 0.42 cores; memory: max 700 MiB * 1.2 = 840, up to 848 MiB.
    assert rec["cpu_cores"] == pytest.approx(0.42)
    assert rec["memory_bytes"] == 848 * MIB
    price = prices.ON_DEMAND["m7i.xlarge"]
    # Now: 2 cores of 4 reserve half the node; then 0.42 of 4 (memory reserves less).
    now = round(0.5 * price.usd_per_hour * 730 * 2, 2)
    then = round(0.42 / 4 * price.usd_per_hour * 730 * 2, 2)
    assert rec["monthly_usd_now"] == pytest.approx(now)
    assert rec["monthly_usd_recommended"] == pytest.approx(then)
    assert rec["monthly_usd_saved"] == pytest.approx(round(now - then, 2))


def test_a_gpu_pod_costs_its_whole_gpu_node_whatever_its_cpu(prometheus: Prometheus) -> None:
    rec = _json(prometheus)["ranker/serving"]["recommendation"]
    assert isinstance(rec, dict)
    whole = round(prices.ON_DEMAND["g5.xlarge"].usd_per_hour * 730, 2)
    assert rec["monthly_usd_now"] == pytest.approx(whole)
    assert rec["monthly_usd_saved"] == 0


def test_headroom_is_a_flag(prometheus: Prometheus) -> None:
    rec = _json(prometheus, "--headroom", "0")["anomaly-blue/serving"]["recommendation"]
    assert isinstance(rec, dict)
    assert rec["cpu_cores"] == pytest.approx(0.35)
    assert rec["memory_bytes"] == 704 * MIB  # 700 MiB up to the next 16 MiB


def test_refuses_to_recommend_from_too_few_samples(prometheus: Prometheus) -> None:
    canary = _json(prometheus)["fraud-canary/serving"]
    assert canary["recommendation"] is None
    assert canary["note"] == "not enough data: 15 samples < --min-samples 500"
    allowed = _json(prometheus, "--min-samples", "10")["fraud-canary/serving"]
    assert allowed["recommendation"] is not None


def test_table_names_each_container_and_its_notes(prometheus: Prometheus) -> None:
    result = report("--prometheus", prometheus.url, "--window", "2d")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"prices of {prices.PRICES_AS_OF}" in lines[0]
    anomaly = next(line for line in lines if line.startswith("anomaly-blue/serving"))
    cpu = ["2000m", "350m", "900m", "420m"]  # request, p95, max, recommended
    memory = ["4096Mi", "650Mi", "700Mi", "848Mi"]
    assert anomaly.split()[1:12] == ["m7i.xlarge", "2.0", *cpu, *memory, "-"]
    assert "  fraud-canary/serving: not enough data: 15 samples < --min-samples 500" in lines


def test_a_price_file_replaces_the_table(prometheus: Prometheus, tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"m7i.xlarge": {"usdPerHour": 1.0, "vcpus": 4, "memoryGib": 16}}))
    rows = _json(prometheus, "--prices", str(table))
    assert rows["anomaly-blue/serving"]["recommendation"]["monthly_usd_now"] == 730.0  # type: ignore[index]
    ranker = rows["ranker/serving"]
    assert ranker["recommendation"]["monthly_usd_now"] is None  # type: ignore[index]
    assert ranker["note"] == "no price for instance type g5.xlarge: cost not shown"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--window", "a week"), "rightsizing: --window 'a week': not a Prometheus duration"),
        (("--headroom", "-5"), "rightsizing: --headroom -5: must be 0-400 %"),
        (("--min-samples", "0"), "rightsizing: --min-samples 0: must be >= 1"),
        (("--namespace", "nobody"), "rightsizing: no container of namespace nobody seen"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    prometheus: Prometheus, args: tuple[str, ...], message: str
) -> None:
    result = report("--prometheus", prometheus.url, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_price_file_names_the_entry(prometheus: Prometheus, tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"m7i.xlarge": {"usdPerHour": "cheap", "vcpus": 4}}))
    result = report("--prometheus", prometheus.url, "--prices", str(table))
    assert result.returncode == 2
    assert result.stderr.startswith(f"rightsizing: --prices {table}: m7i.xlarge: needs usdPerHour")


def test_unreachable_prometheus_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = report("--prometheus", url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"rightsizing: cannot reach Prometheus at {url}")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_instance_type_of_the_stacks_has_a_price(stack: str) -> None:
    settings = stack_settings(stack)
    kinds = {t for pool in settings.node_groups.values() for t in pool.instance_types or ()}
    assert kinds, f"{stack} names no instance types"
    assert kinds <= set(prices.ON_DEMAND), sorted(kinds - set(prices.ON_DEMAND))
