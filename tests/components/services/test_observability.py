"""The observability stack on the mock engine: pinned charts with documented values only,
secrets by reference, the SLO rule and dashboard after the operator, Jaeger's storage."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.services import observability as obs
from components.services.observability import Observability, ObservabilityArgs
from components.services.observability_rules import RUNBOOKS
from infra.offline import CapturedResource, ProgramRun
from tests.components.layout import problems, values_problems
from tests.components.services import observability_layout as documented
from tests.components.support import assert_valid, one, plan

ROOT = Path(__file__).resolve().parents[3]
ARGS = ObservabilityArgs(storage_class="gp3-encrypted", prometheus_storage_gib=50)
WEBHOOK = "https://hooks.example.org/services/T000/B000/s3cr3t-token"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: Observability("obs", ARGS))


@pytest.fixture(scope="module")
def prod_like() -> ProgramRun:
    args = replace(ARGS, jaeger_storage="badger", alert_webhook_url=pulumi.Output.secret(WEBHOOK))
    return plan(lambda: Observability("obs", args))


def releases(run: ProgramRun) -> dict[str, CapturedResource]:
    return {r.inputs["name"]: r for r in run.by_type("kubernetes:helm.sh/v3:Release")}


def test_the_charts_are_pinned_and_their_values_documented(run, prod_like) -> None:
    for case in (run, prod_like):
        found = releases(case)
        pins = {
            "kube-prometheus-stack": (
                obs.PROMETHEUS_STACK_CHART,
                documented.KUBE_PROMETHEUS_STACK_CHART,
                documented.KUBE_PROMETHEUS_STACK_VALUES,
            ),
            "otel-collector": (
                obs.COLLECTOR_CHART,
                documented.OTEL_COLLECTOR_CHART,
                documented.OTEL_COLLECTOR_VALUES,
            ),
            "jaeger": (obs.JAEGER_CHART, documented.JAEGER_CHART, documented.JAEGER_VALUES),
        }
        for release, (pin, expected, layout) in pins.items():
            inputs = found[release].inputs
            assert (pin.repository, pin.chart, pin.version) == expected
            assert inputs["version"] == expected[2] and inputs["repositoryOpts"] == {
                "repo": expected[0]
            }
            assert values_problems(inputs["values"], layout) == [], release
        assert documented.otel_required_problems(found["otel-collector"].inputs["values"]) == []


def test_prometheus_keeps_bounded_data_on_an_encrypted_volume_and_sees_every_namespace(run) -> None:
    spec = releases(run)["kube-prometheus-stack"].inputs["values"]["prometheus"]["prometheusSpec"]
    assert (spec["retention"], spec["retentionSize"]) == ("15d", "40GB")
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3-encrypted"
    assert claim["resources"] == {"requests": {"storage": "50Gi"}}
    for kind in ("rule", "serviceMonitor", "podMonitor", "probe"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind


def test_grafana_gets_its_password_only_through_a_secret(run) -> None:
    values = releases(run)["kube-prometheus-stack"].inputs["values"]
    grafana = values["grafana"]
    assert grafana["admin"] == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert "adminPassword" not in grafana
    assert grafana["grafana.ini"]["auth.anonymous"] == {"enabled": False}
    (secret,) = [
        s
        for s in run.by_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == "grafana-admin"
    ]
    assert "stringData" in secret.secret_inputs
    password = secret.inputs["stringData"]["admin-password"]
    assert len(password) == 32 and password not in json.dumps(values)
    assert one(run, "random:index/randomPassword:RandomPassword").inputs["length"] == 32


def test_alerts_are_grouped_inhibited_and_routed_to_a_webhook_read_from_a_secret(
    run, prod_like
) -> None:
    values = releases(prod_like)["kube-prometheus-stack"].inputs["values"]["alertmanager"]
    config = values["config"]
    assert config["route"]["group_by"] == ["alertname", "namespace"]
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "namespace"],
        }
    ]
    (critical,) = [r for r in config["receivers"] if r["name"] == "critical"]
    assert critical["webhook_configs"] == [
        {"url_file": "/etc/alertmanager/secrets/alert-webhook/url", "send_resolved": True}
    ]
    assert values["alertmanagerSpec"]["secrets"] == ["alert-webhook"]
    (secret,) = [
        s
        for s in prod_like.by_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == "alert-webhook"
    ]
    assert "stringData" in secret.secret_inputs and secret.inputs["stringData"]["url"] == WEBHOOK
    everything_else = [r.inputs for r in prod_like.resources if r is not secret]
    assert "s3cr3t-token" not in json.dumps(everything_else)
    # Without a webhook no receiver is invented and no Secret is mounted.
    quiet = releases(run)["kube-prometheus-stack"].inputs["values"]["alertmanager"]
    assert [r["name"] for r in quiet["config"]["receivers"]] == ["default"]
    assert quiet["alertmanagerSpec"]["secrets"] == []


def test_the_slo_rule_matches_its_crd_links_existing_runbooks_and_follows_the_operator(run) -> None:
    rule = one(run, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert problems(rule.inputs["spec"], documented.PROMETHEUS_RULE_SPEC) == []
    release = releases(run)["kube-prometheus-stack"]
    assert release.urn in rule.dependencies
    alerts = [r for g in rule.inputs["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 6
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert (ROOT / "docs" / "runbooks" / url.rsplit("/", 1)[-1]).is_file(), url
        assert url.endswith(RUNBOOKS[alert["alert"]])


def test_the_dashboard_is_a_labelled_config_map_after_the_operator(run) -> None:
    (config_map,) = [
        c
        for c in run.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["name"] == "inference-dashboard"
    ]
    assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    dashboard = json.loads(config_map.inputs["data"]["inference.json"])
    assert dashboard["panels"] and dashboard["uid"]
    assert releases(run)["kube-prometheus-stack"].urn in config_map.dependencies
    assert_valid({"apiVersion": "v1", "kind": "ConfigMap", **config_map.inputs})


def test_traces_flow_from_the_collector_to_jaeger(run) -> None:
    collector = releases(run)["otel-collector"].inputs["values"]
    assert collector["mode"] == "deployment"
    pipeline = collector["config"]["service"]["pipelines"]["traces"]
    assert pipeline == {
        "receivers": ["otlp"],
        "processors": ["memory_limiter", "batch"],
        "exporters": ["otlp/jaeger"],
    }
    assert (
        collector["config"]["exporters"]["otlp/jaeger"]["endpoint"]
        == "jaeger.observability.svc:4317"
    )
    assert releases(run)["jaeger"].urn in releases(run)["otel-collector"].dependencies


def test_jaeger_keeps_traces_in_memory_in_dev_and_on_badger_with_a_volume_otherwise(
    run, prod_like
) -> None:
    assert "userconfig" not in releases(run)["jaeger"].inputs["values"]
    assert run.by_type("kubernetes:core/v1:PersistentVolumeClaim") == []
    values = releases(prod_like)["jaeger"].inputs["values"]
    badger = values["userconfig"]["extensions"]["jaeger_storage"]["backends"]["badger_main"][
        "badger"
    ]
    assert badger["ephemeral"] is False and badger["ttl"] == {"spans": "72h"}
    claim = one(prod_like, "kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.inputs["spec"]["storageClassName"] == "gp3-encrypted"
    assert values["jaeger"]["extraVolumes"][0]["persistentVolumeClaim"] == {
        "claimName": "jaeger-badger-data"
    }
    assert claim.urn in releases(prod_like)["jaeger"].dependencies
    assert_valid({"apiVersion": "v1", "kind": "PersistentVolumeClaim", **claim.inputs})


def test_namespaces_say_why_monitoring_is_privileged(run) -> None:
    namespaces = {
        n.inputs["metadata"]["name"]: n.inputs["metadata"]
        for n in run.by_type("kubernetes:core/v1:Namespace")
    }
    assert namespaces["monitoring"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert (
        "node-exporter"
        in namespaces["monitoring"]["annotations"]["mlplatform.io/pod-security-reason"]
    )
    assert namespaces["observability"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prometheus_retention": "forever"}, "prometheus_retention"),
        ({"prometheus_retention_size": "60GB"}, "prometheus_retention_size"),
        ({"jaeger_storage": "cassandra"}, "jaeger_storage"),
        ({"prometheus_replicas": 0}, "prometheus_replicas"),
    ],
)
def test_invalid_args_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"{field}: "):
        Observability("obs", replace(ARGS, **change))


def test_kube_state_metrics_exports_each_nodes_instance_type(run) -> None:
    values = releases(run)["kube-prometheus-stack"].inputs["values"]["kube-state-metrics"]
    assert values == {
        "metricLabelsAllowlist": [
            "nodes=[node.kubernetes.io/instance-type,karpenter.sh/capacity-type]"
        ]
    }
