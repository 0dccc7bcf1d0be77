"""The dashboard and the rules query metrics that exist, with PromQL that parses.

Every expression (dashboard targets and variables, every rule) is written as a
recording rule into a temporary file and checked with ``promtool check rules``. Every
metric name an expression reads must be in the inference service's real exposition
(``serving.metrics`` built in-process, one sample of each collector observed) or in
the exporter metric sets below, or be recorded by the rules themselves.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from components.services.dashboards import DASHBOARD_UID, dashboard_exprs, inference_dashboard
from components.services.observability_rules import SloTargets, slo_rule_groups
from serving import drift
from serving.demo import FEATURES, synthetic_metrics
from serving.drift_service import DriftCollector
from serving.metrics import ServiceMetrics
from tests.binaries import binary

#: NVIDIA DCGM exporter (default counters of dcgm-exporter's default-counters.csv).
DCGM_METRICS = {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"}
#: kube-state-metrics (pod and deployment collectors).
KUBE_STATE_METRICS = {"kube_pod_status_ready", "kube_deployment_status_replicas_available"}
#: Grafana's built-in interval variables, substituted as Grafana does before querying.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promtool() -> str:
    return binary("promtool")


def exposed_metric_names() -> set[str]:
    """Sample names of the service's real ``/metrics`` body after one event of each kind."""
    metrics = ServiceMetrics()
    observer = metrics.observer("anomaly")
    observer.on_admitted(1)
    observer.on_rejected()
    observer.on_expired()
    observer.on_cancelled()
    observer.on_dispatch(size=4, items=2, reason="full", queue_waits_s=[0.001], queue_depth=0)
    observer.on_batch_done(0.01, ok=True)
    metrics.observe_request("anomaly", "infer", 200, 0.02)
    frame = synthetic_metrics(400, seed=1)
    reference = drift.parse_reference(drift.reference_profile(frame))
    monitor = drift.DriftMonitor(
        "anomaly", reference, FEATURES, window_rows=400, thresholds=drift.Thresholds()
    )
    monitor.window.observe({f: frame[f].to_numpy() for f in FEATURES}, len(frame))
    monitor.check()
    metrics.registry.register(DriftCollector({"anomaly": monitor}))
    metrics.record_startup({"imports": 1.5, "load": 2.0}, 3.5)
    text = metrics.render().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def metric_names(expr: str) -> set[str]:
    """Metric names read by ``expr``: identifiers that are not functions, keywords,
    label names (inside ``{}`` or grouping clauses), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    grouping = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    text = re.sub(grouping, "", text)
    # Numbers and durations (0.95, 1e3, offset 1h30m): not names.
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*", "", text)
    names = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function call or a keyword
        names.add(word)
    return names


def _rule_groups() -> list[dict[str, Any]]:
    return slo_rule_groups(SloTargets(), runbook_base_url="https://example.org/runbooks")


def _as_promql(expr: str) -> str:
    for variable, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, value)
    return expr


def _check_parses(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    rules = [{"record": f"check:expr:{i}", "expr": _as_promql(e)} for i, e in enumerate(exprs)]
    path = tmp_path / "exprs.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    return subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )


def test_dashboard_shape() -> None:
    dashboard = inference_dashboard()
    assert dashboard["uid"] == DASHBOARD_UID == inference_dashboard()["uid"]
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["model"]["query"]["query"] == "label_values(serving_requests_total, model)"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("latency", "queue wait", "batch size", "dispatch", "429", "504", "gpu"):
        assert topic in titles, topic
    assert any(p["type"] == "heatmap" for p in dashboard["panels"])


def test_every_expression_parses(tmp_path: Path) -> None:
    rule_exprs = [r["expr"] for g in _rule_groups() for r in g["rules"]]
    exprs = dashboard_exprs(inference_dashboard()) + rule_exprs
    result = _check_parses(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_parse_check_rejects_bad_promql(tmp_path: Path) -> None:
    result = _check_parses(["sum by (model) (rate(serving_requests_total[5m])"], tmp_path)
    assert result.returncode != 0


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (model, le) (rate(x_bucket{code=~"5..", a="b c"}[5m])))'
        " / on (model) group_left y_total offset 1h and bool z"
    )
    assert metric_names(expr) == {"x_bucket", "y_total", "z"}


def test_every_metric_exists() -> None:
    exposed = exposed_metric_names()
    assert "serving_requests_total" in exposed  # the exposition is the real one
    groups = _rule_groups()
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = exposed | DCGM_METRICS | KUBE_STATE_METRICS
    assert metric_names("rate(serving_request_total[5m])") - known, "a misspelt name is caught"
    sources = {
        "dashboard": dashboard_exprs(inference_dashboard()),
        "rules": [r["expr"] for g in groups for r in g["rules"]],
    }
    for source, exprs in sources.items():
        for expr in exprs:
            allowed = known | recorded if source == "rules" else known
            unknown = metric_names(expr) - allowed
            assert not unknown, f"{source}: {sorted(unknown)} not exposed, in {expr!r}"


def test_every_service_metric_has_a_panel() -> None:
    """Each collector of serving/metrics.py appears on the dashboard."""
    used = {name for e in dashboard_exprs(inference_dashboard()) for name in metric_names(e)}
    families = {re.sub(r"_(bucket|sum|count|total|created)$", "", n) for n in used}
    collected = [family.name for family in ServiceMetrics().registry.collect()]
    assert len(collected) >= 12
    for name in [*collected, "serving_drift_detected", "serving_drift_score"]:
        assert name in families, f"{name} has no panel"
