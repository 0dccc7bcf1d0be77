"""Rules for the observability stack: Grafana's credentials, Prometheus' storage, alerts
that say what to do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    chart_name,
    dig,
    is_unknown,
    iter_mappings,
    mandatory_rule,
)

RELEASE = "kubernetes:helm.sh/v3:Release"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
_GRAFANA_CHARTS = frozenset({"grafana", "kube-prometheus-stack"})


def _grafana_values(props: Mapping[str, Any]) -> Any:
    values = dig(props, "values")
    return values if chart_name(props) == "grafana" else dig(values, "grafana")


def _grafana_password(_: str, props: Mapping[str, Any]) -> list[str]:
    if chart_name(props) not in _GRAFANA_CHARTS:
        return []
    grafana = _grafana_values(props)
    password = dig(grafana, "adminPassword")
    if password is MISSING or is_unknown(password) or password in (None, ""):
        return []
    return [
        "grafana adminPassword is a literal in the release values (visible in the Helm "
        "release and the state): generate it into a Secret and set admin.existingSecret"
    ]


def _prometheus_storage(_: str, props: Mapping[str, Any]) -> list[str]:
    if chart_name(props) != "kube-prometheus-stack":
        return []
    spec = dig(props, "values", "prometheus", "prometheusSpec")
    storage = dig(spec, "storageSpec")
    if is_unknown(storage) or dig(storage, "volumeClaimTemplate") is not MISSING:
        return []
    return [
        "prometheus.prometheusSpec.storageSpec has no volumeClaimTemplate: metrics live in an "
        "emptyDir and are lost with the pod"
    ]


def _runbooks(_: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for group in iter_mappings(dig(props, "spec", "groups")):
        for rule in iter_mappings(dig(group, "rules")):
            alert = dig(rule, "alert")
            if alert is MISSING or is_unknown(alert):
                continue
            url = dig(rule, "annotations", "runbook_url")
            if is_unknown(url) or (
                isinstance(url, str) and url.startswith(("https://", "http://"))
            ):
                continue
            problems.append(f"alert {alert!r} has no annotations.runbook_url")
    return problems


RULES: list[ResourceRule] = [
    mandatory_rule(
        "grafana-no-literal-password",
        {RELEASE},
        "Grafana's admin password is never a literal in Helm values (admin.existingSecret).",
        "Release values are stored in the Helm release Secret and the Pulumi state in plain "
        "text; a Secret reference keeps the password in one protected place.",
        "Grafana Helm chart (admin.existingSecret); CIS Kubernetes 5.4.1 (secrets as files)",
        _grafana_password,
    ),
    mandatory_rule(
        "prometheus-persistent-storage",
        {RELEASE},
        "Prometheus keeps its data on a persistent volume (storageSpec.volumeClaimTemplate).",
        "Without one, every restart or reschedule loses the metrics an SLO report and an "
        "incident review need.",
        "kube-prometheus-stack docs (storage); Prometheus Operator storage guide",
        _prometheus_storage,
    ),
    mandatory_rule(
        "alert-runbook-url",
        {PROMETHEUS_RULE},
        "Every alert of a PrometheusRule links a runbook (annotations.runbook_url).",
        "An alert that does not say what to do wakes someone up without helping them.",
        "Google SRE workbook (Alerting on SLOs); Prometheus Operator runbooks convention",
        _runbooks,
    ),
]
