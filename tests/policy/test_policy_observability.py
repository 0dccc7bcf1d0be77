"""Observability rules: Grafana's password, Prometheus' storage, alerts with runbooks."""

from __future__ import annotations

from typing import Any

import pytest

from policy.rules import check_resource

RELEASE = "kubernetes:helm.sh/v3:Release"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
VOLUME = {"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "50Gi"}}}}}


def fired(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    return {f.policy: f.level for f in check_resource(resource_type, props)}


def stack(grafana: dict[str, Any], storage: Any = VOLUME) -> dict[str, Any]:
    return {
        "chart": "kube-prometheus-stack",
        "version": "80.0.0",
        "values": {"grafana": grafana, "prometheus": {"prometheusSpec": {"storageSpec": storage}}},
    }


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (stack({"admin": {"existingSecret": "grafana-admin"}}), {}),
        (
            stack({"adminPassword": "admin123"}),
            {"grafana-no-literal-password": "mandatory", "helm-no-literal-secret": "mandatory"},
        ),
        (
            {"chart": "grafana", "version": "10.1.0", "values": {"adminPassword": "admin123"}},
            {"grafana-no-literal-password": "mandatory", "helm-no-literal-secret": "mandatory"},
        ),
        (stack({"adminPassword": UNKNOWN}), {}),
        (stack({}, storage={}), {"prometheus-persistent-storage": "mandatory"}),
        (stack({}, storage=UNKNOWN), {}),
        (
            {"chart": "cert-manager", "version": "v1.21.1", "values": {"adminPassword": "x"}},
            {"helm-no-literal-secret": "mandatory"},
        ),
    ],
)
def test_grafana_password_and_prometheus_storage(
    props: dict[str, Any], expected: dict[str, str]
) -> None:
    assert fired(RELEASE, props) == expected


def alerts(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "spec": {
            "groups": [
                {
                    "name": "slo",
                    "rules": [
                        {"record": "slo:ratio", "expr": "1"},
                        {"alert": "HighLatency", "expr": "1", "annotations": annotations},
                    ],
                }
            ]
        }
    }


def test_every_alert_links_a_runbook() -> None:
    assert (
        fired(RULE, alerts({"runbook_url": "https://example.org/runbooks/high-latency.md"})) == {}
    )
    assert fired(RULE, alerts({"summary": "slow"})) == {"alert-runbook-url": "mandatory"}
    assert fired(RULE, alerts({"runbook_url": "see wiki"})) == {"alert-runbook-url": "mandatory"}
    (finding,) = check_resource(RULE, alerts({}))
    assert "'HighLatency'" in finding.message
