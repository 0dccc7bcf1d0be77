"""Right-sizing report: what each container requests, what it used, and what to request.

``python -m infra.rightsizing --prometheus URL [--namespace ml-serving] [--window 7d]
[--headroom 20] [--min-samples 500] [--prices FILE] [--json]`` asks Prometheus, per
workload (a Deployment's or StatefulSet's pods, named from the pod) and container, over
the window:

- used CPU (cores): p95 and max of ``rate(container_cpu_usage_seconds_total[5m])``;
- used memory: p95 and max of ``container_memory_working_set_bytes`` (cAdvisor, through
  the kubelet's ServiceMonitor);
- requests: ``kube_pod_container_resource_requests`` (kube-state-metrics), CPU, memory
  and ``nvidia.com/gpu``;
- GPU utilisation: mean and max of DCGM's ``DCGM_FI_DEV_GPU_UTIL`` where it is scraped;
- replicas: the mean number of pods while the workload ran; the node's instance type from
  ``kube_node_labels`` (the observability stack allowlists the instance-type label).

The recommendation is the p95 of CPU (CPU is compressible: above its request a container
is throttled, not killed) and the max of memory (above its limit it is OOM-killed), each
plus ``--headroom`` percent, rounded up to 10 millicores and 16 MiB. GPU requests are
kept. No recommendation is made from fewer than ``--min-samples`` memory samples. The
monthly cost of a replica is the share of its node its requests reserve (the largest of
its CPU, memory and GPU fractions) times the node's on-demand price (``infra/prices.py``,
dated, or ``--prices``) times 730 hours, times the mean replicas.

Exit status: 0 report printed; 2 usage error, unreachable Prometheus, a bad price file,
or no container seen in the namespace over the window (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from components.services.ml_tenancy import SERVING_NAMESPACE
from infra import prices, prometheus
from infra.prices import HOURS_PER_MONTH, InstancePrice

RATE_RANGE = "5m"
SUBQUERY_STEP = "1m"
CPU_STEP_CORES = 0.01
MEMORY_STEP_BYTES = 16 * 2**20
# Kubernetes' pod-template-hash and pod suffix alphabet (no vowels, no 0, 1, 3).
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
DEPLOYMENT_POD = f"(.+)-{_SAFE}{{5,10}}-{_SAFE}{{5}}"
STATEFULSET_POD = "(.+)-[0-9]+"
INSTANCE_TYPE_LABEL = "label_node_kubernetes_io_instance_type"

Key = tuple[str, str]  # (workload, container)


@dataclass(frozen=True)
class Recommendation:
    cpu_cores: float
    memory_bytes: int
    monthly_usd_now: float | None
    monthly_usd_recommended: float | None
    monthly_usd_saved: float | None


@dataclass(frozen=True)
class ContainerUsage:
    """One workload's container over the window; ``recommendation`` None with ``note``
    saying why (too few samples)."""

    workload: str
    container: str
    instance_type: str | None
    replicas: float
    samples: int
    cpu_request_cores: float | None
    cpu_p95_cores: float
    cpu_max_cores: float
    memory_request_bytes: float | None
    memory_p95_bytes: float
    memory_max_bytes: float
    gpu_request: int
    gpu_utilisation_mean_percent: float | None
    gpu_utilisation_max_percent: float | None
    recommendation: Recommendation | None
    note: str | None


def by_workload(expr: str, pod_label: str = "pod") -> str:
    """Wrap ``expr`` so each series gains a ``workload`` label named from ``pod_label``:
    the pod name, less a StatefulSet ordinal, less a Deployment's two hash suffixes."""
    out = f'label_replace({expr}, "workload", "$1", "{pod_label}", "(.+)")'
    out = f'label_replace({out}, "workload", "$1", "{pod_label}", "{STATEFULSET_POD}")'
    return f'label_replace({out}, "workload", "$1", "{pod_label}", "{DEPLOYMENT_POD}")'


def _keyed(base_url: str, promql: str) -> dict[Key, float]:
    return {
        (labels.get("workload", ""), labels.get("container", "")): value
        for labels, value in prometheus.instant(base_url, promql)
    }


def measure(base_url: str, namespace: str, window: str) -> dict[str, dict[Key, float]]:
    """Return {quantity: {(workload, container): value}} over ``window``."""
    ns = json.dumps(namespace)  # a PromQL double-quoted string
    sel = f'{{namespace={ns}, container!="", container!="POD"}}'
    cpu = f"rate(container_cpu_usage_seconds_total{sel}[{RATE_RANGE}])[{window}:{SUBQUERY_STEP}]"
    mem = f"container_memory_working_set_bytes{sel}[{window}]"
    group = "max by (workload, container)"

    def request(resource: str) -> str:
        series = f'kube_pod_container_resource_requests{{namespace={ns}, resource="{resource}"}}'
        return f"{group} ({by_workload(f'last_over_time({series}[{window}])')})"

    now = by_workload(f"container_memory_working_set_bytes{sel}")
    running = f"count by (workload, container) ({now})"
    gpu = f"DCGM_FI_DEV_GPU_UTIL{{exported_namespace={ns}}}[{window}]"

    def gpu_util(over_time: str, across_pods: str) -> str:
        # The exporter's ServiceMonitor keeps its own target labels, so the GPU's pod
        # arrives as exported_pod / exported_container.
        util = f'label_replace({over_time}({gpu}), "container", "$1", "exported_container", "(.+)")'
        return f"{across_pods} by (workload, container) ({by_workload(util, 'exported_pod')})"

    queries = {
        "cpu_p95": f"{group} ({by_workload(f'quantile_over_time(0.95, {cpu})')})",
        "cpu_max": f"{group} ({by_workload(f'max_over_time({cpu})')})",
        "memory_p95": f"{group} ({by_workload(f'quantile_over_time(0.95, {mem})')})",
        "memory_max": f"{group} ({by_workload(f'max_over_time({mem})')})",
        "samples": f"sum by (workload, container) ({by_workload(f'count_over_time({mem})')})",
        "replicas": f"avg_over_time(({running})[{window}:{SUBQUERY_STEP}])",
        "cpu_request": request("cpu"),
        "memory_request": request("memory"),
        "gpu_request": request("nvidia_com_gpu"),
        "gpu_mean": gpu_util("avg_over_time", "avg"),
        "gpu_max": gpu_util("max_over_time", "max"),
    }
    return {name: _keyed(base_url, promql) for name, promql in queries.items()}


def instance_types(base_url: str, namespace: str, window: str) -> dict[str, str]:
    """Return {workload: the instance type most of its pods' nodes were}."""
    ns = json.dumps(namespace)
    pods = f"last_over_time(kube_pod_info{{namespace={ns}}}[{window}])"
    nodes = f"last_over_time(kube_node_labels[{window}])"
    label = INSTANCE_TYPE_LABEL
    node_types = f"max by (node, {label}) ({nodes})"
    joined = f"max by (pod, node, {label}) ({pods} * on (node) group_left ({label}) {node_types})"
    counts: dict[str, Counter[str]] = {}
    for labels, _ in prometheus.instant(base_url, by_workload(joined)):
        kind = labels.get(INSTANCE_TYPE_LABEL)
        if kind:
            counts.setdefault(labels["workload"], Counter())[kind] += 1
    return {workload: c.most_common(1)[0][0] for workload, c in counts.items()}


def _round_up(value: float, step: float) -> float:
    return max(step, math.ceil(value / step - 1e-9) * step)


def _monthly(
    price: InstancePrice | None, cpu: float | None, memory: float | None, gpus: int, n: float
) -> float | None:
    if price is None or cpu is None or memory is None:
        return None
    return round(price.share(cpu, memory, gpus) * price.usd_per_hour * HOURS_PER_MONTH * n, 2)


def evaluate(
    key: Key,
    raw: dict[str, dict[Key, float]],
    instance_type: str | None,
    table: dict[str, InstancePrice],
    *,
    headroom_percent: float,
    min_samples: int,
) -> ContainerUsage:
    """Turn one container's measurements into its usage and recommendation."""
    got = {name: values.get(key) for name, values in raw.items()}
    samples = int(got["samples"] or 0)
    replicas = round(got["replicas"] or 0.0, 2)
    gpus = int(got["gpu_request"] or 0)
    recommendation, note = None, None
    if samples < min_samples:
        note = f"not enough data: {samples} samples < --min-samples {min_samples}"
    else:
        factor = 1.0 + headroom_percent / 100.0
        cpu = round(_round_up((got["cpu_p95"] or 0.0) * factor, CPU_STEP_CORES), 2)
        memory = int(_round_up((got["memory_max"] or 0.0) * factor, MEMORY_STEP_BYTES))
        price = table.get(instance_type) if instance_type else None
        now = _monthly(price, got["cpu_request"], got["memory_request"], gpus, replicas)
        then = _monthly(price, cpu, memory, gpus, replicas)
        saved = None if now is None or then is None else round(now - then, 2)
        recommendation = Recommendation(cpu, memory, now, then, saved)
        if price is None:
            note = f"no price for instance type {instance_type or 'unknown'}: cost not shown"
    return ContainerUsage(
        workload=key[0],
        container=key[1],
        instance_type=instance_type,
        replicas=replicas,
        samples=samples,
        cpu_request_cores=got["cpu_request"],
        cpu_p95_cores=round(got["cpu_p95"] or 0.0, 4),
        cpu_max_cores=round(got["cpu_max"] or 0.0, 4),
        memory_request_bytes=got["memory_request"],
        memory_p95_bytes=got["memory_p95"] or 0.0,
        memory_max_bytes=got["memory_max"] or 0.0,
        gpu_request=gpus,
        gpu_utilisation_mean_percent=got["gpu_mean"],
        gpu_utilisation_max_percent=got["gpu_max"],
        recommendation=recommendation,
        note=note,
    )


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}Mi"


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}m"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(namespace: str, window: str, headroom: float, rows: list[ContainerUsage]) -> str:
    """The human report: one line per container, then its notes."""
    lines = [
        f"Right-sizing of {namespace} over {window} (CPU from p95, memory from max, "
        f"+{headroom:g} % headroom; on-demand {prices.REGION} prices of {prices.PRICES_AS_OF})",
        f"{'workload/container':<32} {'type':<12} {'pods':>5} {'cpu req':>8} {'p95':>7} "
        f"{'max':>7} {'-> cpu':>7} {'mem req':>8} {'p95':>7} {'max':>7} {'-> mem':>7} "
        f"{'gpu %':>6} {'$/mo now':>9} {'-> $/mo':>9} {'saved':>8}",
    ]
    for row in rows:
        rec = row.recommendation
        gpu = row.gpu_utilisation_mean_percent
        lines.append(
            f"{row.workload + '/' + row.container:<32} {row.instance_type or '-':<12} "
            f"{row.replicas:>5.1f} {_cores(row.cpu_request_cores):>8} "
            f"{_cores(row.cpu_p95_cores):>7} {_cores(row.cpu_max_cores):>7} "
            f"{_cores(rec.cpu_cores if rec else None):>7} {_mib(row.memory_request_bytes):>8} "
            f"{_mib(row.memory_p95_bytes):>7} {_mib(row.memory_max_bytes):>7} "
            f"{_mib(rec.memory_bytes if rec else None):>7} "
            f"{'-' if gpu is None else f'{gpu:.0f}':>6} "
            f"{_usd(rec.monthly_usd_now if rec else None):>9} "
            f"{_usd(rec.monthly_usd_recommended if rec else None):>9} "
            f"{_usd(rec.monthly_usd_saved if rec else None):>8}"
        )
    lines += [f"  {row.workload}/{row.container}: {row.note}" for row in rows if row.note]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.rightsizing", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--namespace", default=SERVING_NAMESPACE, help="default %(default)s")
    parser.add_argument("--window", default="7d", help="Prometheus duration (default 7d)")
    parser.add_argument("--headroom", type=float, default=20.0, help="percent (default 20)")
    parser.add_argument(
        "--min-samples", type=int, default=500, help="fewest memory samples (default 500)"
    )
    parser.add_argument("--prices", type=Path, help="JSON price table (see infra/prices.py)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the report; return the exit status (0 printed, 2 error)."""
    args = _parser().parse_args(argv)  # exits 2 on usage errors
    try:
        if not 0 <= args.headroom <= 400:
            raise prometheus.PrometheusError(f"--headroom {args.headroom:g}: must be 0-400 %")
        if args.min_samples < 1:
            raise prometheus.PrometheusError(f"--min-samples {args.min_samples}: must be >= 1")
        prometheus.check_window(args.window)
        prometheus.check_url(args.prometheus)
        price_table = prices.load(args.prices) if args.prices else prices.ON_DEMAND
        raw = measure(args.prometheus, args.namespace, args.window)
        kinds = instance_types(args.prometheus, args.namespace, args.window)
        if not raw["samples"]:
            raise prometheus.PrometheusError(
                f"no container of namespace {args.namespace} seen by Prometheus at "
                f"{args.prometheus} in the last {args.window}"
            )
    except (prometheus.PrometheusError, prices.PriceFileError) as exc:
        print(f"rightsizing: {exc}", file=sys.stderr)
        return 2
    rows = [
        evaluate(
            key,
            raw,
            kinds.get(key[0]),
            price_table,
            headroom_percent=args.headroom,
            min_samples=args.min_samples,
        )
        for key in sorted(raw["samples"])
    ]
    if args.json:
        document = {
            "namespace": args.namespace,
            "window": args.window,
            "headroomPercent": args.headroom,
            "pricesAsOf": prices.PRICES_AS_OF if not args.prices else str(args.prices),
            "containers": [asdict(row) for row in rows],
        }
        print(json.dumps(document, indent=2))
    else:
        print(table(args.namespace, args.window, args.headroom, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
