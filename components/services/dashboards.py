"""The inference service's Grafana dashboard, as JSON built in code.

``inference_dashboard()`` returns the dashboard model (Grafana schema version 39, stable
uid ``mlplatform-inference``) that the observability component ships in a ConfigMap
for Grafana's dashboard sidecar; ``dashboard_exprs(dashboard)`` lists every PromQL
expression in it, so tests can parse each one and check each metric name exists.

Variables: ``datasource`` (any Prometheus data source) and ``model`` (multi-select,
``label_values(serving_requests_total, model)``, "All" by default). Rates use Grafana's
``$__rate_interval``. Metric names come from ``serving/metrics.py``, the NVIDIA DCGM
exporter (GPU panels) and kube-state-metrics (replicas).
"""

from __future__ import annotations

from typing import Any, cast

DASHBOARD_UID = "mlplatform-inference"
SCHEMA_VERSION = 39
_DS = {"type": "prometheus", "uid": "${datasource}"}
_M = 'model=~"$model"'
_RI = "$__rate_interval"
_WIDTH = 12
_HEIGHT = 8


def _target(expr: str, legend: str, ref: str, kind: str) -> dict[str, Any]:
    target = {"datasource": _DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if kind == "heatmap":  # buckets as rows of the heatmap, not as separate lines
        target["format"] = "heatmap"
    return target


def _panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": [
            _target(expr, legend, chr(ord("A") + i), kind)
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _quantiles(metric: str, by: str, legend: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{_M}}}[{_RI}])))",
            f"{legend} p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _panels() -> list[dict[str, Any]]:
    by_model = "{{model}}"
    return [
        _panel(
            "Request rate by model and status",
            [
                (
                    f"sum by (model, code) (rate(serving_requests_total{{{_M}}}[{_RI}]))",
                    "{{model}} {{code}}",
                )
            ],
            unit="reqps",
        ),
        _panel(
            "Server errors (5xx) ratio by model",
            [
                (
                    "sum by (model) "
                    f'(rate(serving_requests_total{{{_M}, code=~"5.."}}[{_RI}]))\n/\n'
                    f"sum by (model) (rate(serving_requests_total{{{_M}}}[{_RI}]))",
                    by_model,
                )
            ],
            unit="percentunit",
            description="Burns the availability SLO; 4xx answers do not.",
        ),
        _panel(
            "Request latency p50 / p95 / p99",
            _quantiles("serving_request_duration_seconds", "model", by_model),
            unit="s",
        ),
        _panel(
            "Queue wait p95",
            [
                (
                    f"histogram_quantile(0.95, sum by (model, le) "
                    f"(rate(serving_queue_wait_seconds_bucket{{{_M}}}[{_RI}])))",
                    by_model,
                )
            ],
            unit="s",
        ),
        _panel(
            "Batch size (rows) distribution",
            [(f"sum by (le) (increase(serving_batch_size_rows_bucket{{{_M}}}[{_RI}]))", "{{le}}")],
            kind="heatmap",
            description="Rows per dispatched batch; compare with --max-batch-size.",
        ),
        _panel(
            "Batch size p50 / p95 / p99 (rows) and requests per batch",
            [
                *_quantiles("serving_batch_size_rows", "model", f"{by_model} rows"),
                (
                    f"sum by (model) (rate(serving_batch_requests_sum{{{_M}}}[{_RI}]))\n/\n"
                    f"sum by (model) (rate(serving_batch_requests_count{{{_M}}}[{_RI}]))",
                    f"{by_model} requests/batch",
                ),
            ],
        ),
        _panel(
            "Batch predict time p95 by outcome",
            [
                (
                    f"histogram_quantile(0.95, sum by (model, outcome, le) "
                    f"(rate(serving_batch_duration_seconds_bucket{{{_M}}}[{_RI}])))",
                    "{{model}} {{outcome}}",
                )
            ],
            unit="s",
        ),
        _panel(
            "Batch dispatch reasons",
            [
                (
                    f"sum by (model, reason) (rate(serving_batch_dispatch_total{{{_M}}}[{_RI}]))",
                    "{{model}} {{reason}}",
                )
            ],
            unit="ops",
            description="full: max batch size reached; delay: oldest request waited "
            "max-batch-delay; idle: nothing else queued; drain: shutting down.",
        ),
        _panel(
            "Queue depth and batches in flight",
            [
                (f"sum by (model) (serving_queue_depth{{{_M}}})", f"{by_model} queued"),
                (f"sum by (model) (serving_batches_in_flight{{{_M}}})", f"{by_model} in flight"),
            ],
        ),
        _panel(
            "Rejections: queue full (429)",
            [(f"sum by (model) (rate(serving_rejected_total{{{_M}}}[{_RI}]))", by_model)],
            unit="reqps",
        ),
        _panel(
            "Deadline expiries (504)",
            [(f"sum by (model) (rate(serving_expired_total{{{_M}}}[{_RI}]))", by_model)],
            unit="reqps",
        ),
        _panel(
            "Cancellations (client gone)",
            [(f"sum by (model) (rate(serving_cancelled_total{{{_M}}}[{_RI}]))", by_model)],
            unit="reqps",
        ),
        _panel(
            "Log records dropped",
            [(f"sum by (pod) (rate(serving_log_dropped_total[{_RI}]))", "{{pod}}")],
            unit="cps",
            description="The log queue was full (a flood of requests): records are dropped, "
            "not queued without bound.",
        ),
        _panel(
            "Drift: features whose inputs drifted",
            [
                (
                    f"max by (model, feature) (serving_drift_detected{{{_M}}})",
                    "{{model}} {{feature}}",
                )
            ],
            description="1 when at least 3 of the 5 drift tests agree (the service's "
            "consensus); ModelDriftDetected fires after 30 minutes of it.",
        ),
        _panel(
            "Drift score",
            [(f"max by (model, feature) (serving_drift_score{{{_M}}})", "{{model}} {{feature}}")],
            unit="percentunit",
            description="Share of the five drift tests voting drift, per feature "
            "(GET /v2/models/{name}/drift has each test's figure).",
        ),
        _panel(
            "Startup to ready, by phase",
            [
                ("max by (pod, phase) (serving_startup_phase_seconds)", "{{pod}} {{phase}}"),
                ("max by (pod) (serving_startup_seconds)", "{{pod}} total"),
            ],
            unit="s",
            description="From process start to ready: imports, resolve, download, load, "
            "workers, warm_up, serve (they sum to the total); set once per pod at ready.",
        ),
        _panel(
            "GPU utilisation",
            [("avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}} gpu {{gpu}}")],
            unit="percent",
        ),
        _panel(
            "GPU memory used",
            [
                ("sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED)", "{{Hostname}} gpu {{gpu}} used"),
                (
                    "sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
                    "{{Hostname}} gpu {{gpu}} total",
                ),
            ],
            unit="decmbytes",
            description="Framebuffer memory (MiB); the GPU memory alert fires above 90 %.",
        ),
        _panel(
            "Replicas available",
            [
                (
                    "sum by (namespace, deployment) (kube_deployment_status_replicas_available"
                    '{namespace=~"$namespace"})',
                    "{{namespace}}/{{deployment}}",
                )
            ],
        ),
    ]


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two panels per row; ids by position so the JSON is stable across builds."""
    for i, panel in enumerate(panels):
        panel["id"] = i + 1
        panel["gridPos"] = {"h": _HEIGHT, "w": _WIDTH, "x": (i % 2) * _WIDTH, "y": (i // 2) * 8}
    return panels


def _variable(name: str, query: str, *, include_all: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": _DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "multi": include_all,
        "includeAll": include_all,
        "current": {"text": "All", "value": "$__all"} if include_all else {},
        "sort": 1,
    }


def inference_dashboard() -> dict[str, Any]:
    """Return the Grafana dashboard JSON of the inference service.

    Panels: request rate by model and status, 5xx ratio, latency p50/p95/p99, queue
    wait p95, batch size heatmap and quantiles, predict time, dispatch reasons, queue
    depth, 429 rejections, 504 expiries, cancellations, drift (features drifted and
    score), startup to ready by phase, GPU utilisation and memory (DCGM) and available
    replicas (kube-state-metrics). Pure: no I/O, same JSON each call.
    """
    templating = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        _variable("model", "label_values(serving_requests_total, model)"),
        _variable(
            "namespace", "label_values(kube_deployment_status_replicas_available, namespace)"
        ),
    ]
    return {
        "uid": DASHBOARD_UID,
        "title": "Inference service",
        "description": "Requests, latency, batching, queue and GPUs of the inference service.",
        "tags": ["mlplatform", "inference"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "templating": {"list": templating},
        "annotations": {"list": []},
        "panels": _layout(_panels()),
    }


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Return every PromQL expression of ``dashboard``: panel targets, then the
    ``label_values(...)`` metric queries of its query variables (as ``metric`` selectors
    would be read: the metric name only)."""
    exprs: list[str] = []
    for panel in cast(list[dict[str, Any]], dashboard.get("panels", [])):
        for target in cast(list[dict[str, Any]], panel.get("targets", [])):
            if "expr" in target:
                exprs.append(str(target["expr"]))
    variables = cast(dict[str, Any], dashboard.get("templating", {})).get("list", [])
    for variable in cast(list[dict[str, Any]], variables):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, dict):
            text = str(cast(dict[str, Any], query)["query"])
            # label_values(metric, label): the metric part is a PromQL selector.
            inner = text.removeprefix("label_values(").rstrip(")")
            exprs.append(inner.rsplit(",", 1)[0].strip())
    return exprs
