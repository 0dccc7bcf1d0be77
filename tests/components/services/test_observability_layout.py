"""Values and custom resources of the observability stack, checked against their layouts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.components.layout import problems, values_problems
from tests.components.services.observability_layout import (
    CRD_API_VERSIONS,
    JAEGER_CHART,
    JAEGER_VALUES,
    KUBE_PROMETHEUS_STACK_CHART,
    KUBE_PROMETHEUS_STACK_VALUES,
    OTEL_COLLECTOR_CHART,
    OTEL_COLLECTOR_REQUIRED,
    OTEL_COLLECTOR_VALUES,
    PROMETHEUS_OPERATOR_VERSION,
    PROMETHEUS_RULE_SPEC,
    SERVICE_MONITOR_SPEC,
    otel_required_problems,
)

SYSTEM_TOLERATIONS = [
    {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"},
]
SYSTEM_NODE_SELECTOR = {"mlplatform.io/pool": "system"}


def put(values: dict[str, Any], where: tuple[str, ...], value: object) -> None:
    """Set ``values[where[0]][where[1]]... = value``, creating objects on the way."""
    *parents, last = where
    target = values
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value


def gp3_claim(size: str) -> dict[str, Any]:
    """A Prometheus Operator StorageSpec asking for a gp3 PVC."""
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": "gp3",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            }
        }
    }


def kube_prometheus_stack_values() -> dict[str, Any]:
    return {
        "crds": {"enabled": True},
        "defaultRules": {"create": True, "rules": {"etcd": False, "kubeProxy": False}},
        "kubeStateMetrics": {"enabled": True},
        "nodeExporter": {"enabled": True},
        "prometheusOperator": {
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": SYSTEM_TOLERATIONS,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        },
        "kubeEtcd": {"enabled": False},  # EKS hides the control plane
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "prometheus": {
            "prometheusSpec": {
                "retention": "15d",
                "retentionSize": "45GiB",
                "storageSpec": gp3_claim("50Gi"),
                # Select every PrometheusRule/ServiceMonitor/PodMonitor/Probe in every
                # namespace, not only the chart's own (release-labelled) ones.
                "ruleSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "resources": {
                    "requests": {"cpu": "500m", "memory": "2Gi"},
                    "limits": {"memory": "4Gi"},
                },
                "replicas": 2,
                "nodeSelector": SYSTEM_NODE_SELECTOR,
                "tolerations": SYSTEM_TOLERATIONS,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 1000,
                    "runAsGroup": 2000,
                    "fsGroup": 2000,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        },
        "alertmanager": {
            "config": {
                "route": {"receiver": "null", "group_by": ["namespace"]},
                "receivers": [{"name": "null"}],
            },
            "alertmanagerSpec": {
                "storage": gp3_claim("10Gi"),
                "secrets": ["alertmanager-slack"],
                "alertmanagerConfigSelector": {"matchLabels": {"mlplatform.io/alerting": "true"}},
                "alertmanagerConfigNamespaceSelector": {},
                "nodeSelector": SYSTEM_NODE_SELECTOR,
            },
        },
        "grafana": {
            "enabled": True,
            "admin": {
                "existingSecret": "grafana-admin",
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "grafana.ini": {"server": {"root_url": "https://grafana.example.com"}},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                }
            },
            "persistence": {
                "enabled": True,
                "type": "pvc",
                "storageClassName": "gp3",
                "size": "10Gi",
            },
            "service": {"type": "ClusterIP", "port": 80},
        },
    }


def otel_collector_values() -> dict[str, Any]:
    return {
        "mode": "deployment",
        "image": {
            "repository": (
                "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s"
            )
        },
        "command": {"name": "otelcol-k8s"},
        "replicaCount": 2,
        "presets": {"kubernetesAttributes": {"enabled": True}},
        "config": {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": "${env:MY_POD_IP}:4317"},
                        "http": {"endpoint": "${env:MY_POD_IP}:4318"},
                    }
                }
            },
            "processors": {"batch": {}, "memory_limiter": {"limit_percentage": 80}},
            "exporters": {
                "otlp/jaeger": {
                    "endpoint": "jaeger.observability.svc:4317",
                    "tls": {"insecure": True},
                }
            },
            "service": {
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["memory_limiter", "batch"],
                        "exporters": ["otlp/jaeger"],
                    }
                }
            },
        },
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "nodeSelector": SYSTEM_NODE_SELECTOR,
        "tolerations": SYSTEM_TOLERATIONS,
    }


def jaeger_values() -> dict[str, Any]:
    """Jaeger v2 all-in-one with a badger store on a PVC the platform creates."""
    return {
        "jaeger": {
            "replicas": 1,  # badger is single-writer
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
            "extraVolumes": [
                {"name": "badger-data", "persistentVolumeClaim": {"claimName": "jaeger-badger"}}
            ],
            "extraVolumeMounts": [{"name": "badger-data", "mountPath": "/badger"}],
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": SYSTEM_TOLERATIONS,
        },
        "userconfig": {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                "pipelines": {
                    "traces": {"receivers": ["otlp"], "exporters": ["jaeger_storage_exporter"]}
                },
            },
            "extensions": {
                "healthcheckv2": {"use_v2": True, "http": {"endpoint": "0.0.0.0:13133"}},
                "jaeger_query": {"storage": {"traces": "primary_store"}},
                "jaeger_storage": {
                    "backends": {
                        "primary_store": {
                            "badger": {
                                "directories": {"keys": "/badger/keys", "values": "/badger/data"},
                                "ephemeral": False,
                                "ttl": {"spans": "168h"},
                            }
                        }
                    }
                },
            },
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": "0.0.0.0:4317"},
                        "http": {"endpoint": "0.0.0.0:4318"},
                    }
                }
            },
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "primary_store"}},
        },
    }


def prometheus_rule_spec() -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "mlplatform.serving",
                "interval": "30s",
                "rules": [
                    {
                        "record": "namespace:inference_requests:rate5m",
                        "expr": "sum by (namespace) (rate(inference_requests_total[5m]))",
                    },
                    {
                        "alert": "InferenceErrorRateHigh",
                        "expr": (
                            "sum(rate(inference_requests_total{code=~'5..'}[5m]))"
                            " / sum(rate(inference_requests_total[5m])) > 0.05"
                        ),
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "More than 5% of inference requests fail.",
                            "runbook_url": "https://runbooks.example.com/inference-errors",
                        },
                    },
                ],
            }
        ]
    }


def service_monitor_spec() -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "model-server"}},
        "namespaceSelector": {"matchNames": ["serving"]},
        "endpoints": [
            {
                "port": "metrics",
                "path": "/metrics",
                "interval": "30s",
                "scrapeTimeout": "10s",
                "scheme": "http",
                "relabelings": [
                    {
                        "action": "replace",
                        "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                        "targetLabel": "node",
                    }
                ],
            }
        ],
    }


# --- pins -------------------------------------------------------------------------------


def test_chart_pins() -> None:
    assert KUBE_PROMETHEUS_STACK_CHART == (
        "https://prometheus-community.github.io/helm-charts",
        "kube-prometheus-stack",
        "88.5.3",
    )
    assert OTEL_COLLECTOR_CHART[1:] == ("opentelemetry-collector", "0.170.0")
    assert JAEGER_CHART[1:] == ("jaeger", "4.11.1")
    assert PROMETHEUS_OPERATOR_VERSION == "0.93.1"
    assert set(CRD_API_VERSIONS.values()) == {"monitoring.coreos.com/v1"}


# --- kube-prometheus-stack --------------------------------------------------------------


def test_kube_prometheus_stack_values_pass() -> None:
    assert values_problems(kube_prometheus_stack_values(), KUBE_PROMETHEUS_STACK_VALUES) == []


@pytest.mark.parametrize(
    "where",
    [
        ("prometheus", "prometheusSpec", "retentionsize"),
        ("grafana", "admin", "existingsecret"),
        ("grafana", "sidecar", "dashboards", "labelvalue"),
        ("alertmanager", "alertmanagerSpec", "storageSpec"),  # Alertmanager's is `storage`
        ("crds", "install"),
    ],
)
def test_kube_prometheus_stack_misspelt_key_is_named(where: tuple[str, ...]) -> None:
    values = kube_prometheus_stack_values()
    put(values, where, "x")
    assert values_problems(values, KUBE_PROMETHEUS_STACK_VALUES) == [
        f"{'.'.join(where)}: not a key the chart documents"
    ]


def test_storage_spec_shape_is_checked() -> None:
    values = kube_prometheus_stack_values()
    claim = values["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]
    claim["spec"]["storageClass"] = "gp3"  # the field is storageClassName
    assert values_problems(values, KUBE_PROMETHEUS_STACK_VALUES) == [
        "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClass: "
        "not a key the chart documents"
    ]


def test_alertmanager_config_is_opaque() -> None:
    values = kube_prometheus_stack_values()
    values["alertmanager"]["config"]["inhibit_rules"] = [{"equal": ["namespace"]}]
    assert values_problems(values, KUBE_PROMETHEUS_STACK_VALUES) == []


def test_grafana_admin_password_is_a_documented_key() -> None:
    # Documented (commented out); with admin.existingSecret set it is ignored, so the
    # platform leaves it unset, but the layout alone cannot tell.
    values = kube_prometheus_stack_values()
    values["grafana"]["adminPassword"] = "not-used"
    assert values_problems(values, KUBE_PROMETHEUS_STACK_VALUES) == []


# --- opentelemetry-collector ------------------------------------------------------------


def test_otel_collector_values_pass() -> None:
    values = otel_collector_values()
    assert values_problems(values, OTEL_COLLECTOR_VALUES) == []
    assert otel_required_problems(values) == []


def test_otel_collector_missing_mode_is_not_a_key_error() -> None:
    values = otel_collector_values()
    del values["mode"]
    del values["image"]
    # An absent key is not an undocumented one...
    assert values_problems(values, OTEL_COLLECTOR_VALUES) == []
    # ...but the chart fails to render without them.
    assert OTEL_COLLECTOR_REQUIRED == ("mode", "image.repository")
    found = otel_required_problems(values)
    assert [p.split(":")[0] for p in found] == ["mode", "image.repository"]


def test_otel_collector_bad_mode() -> None:
    values = otel_collector_values()
    values["mode"] = "sidecar"  # the operator's mode, not the chart's
    assert otel_required_problems(values) == [
        "mode: must be one of [daemonset, deployment, statefulset], got 'sidecar'"
    ]


def test_otel_collector_misspelt_keys() -> None:
    values = otel_collector_values()
    values["config"]["service"]["pipeline"] = {}
    values["image"]["respository"] = "otel/opentelemetry-collector-contrib"
    assert values_problems(values, OTEL_COLLECTOR_VALUES) == [
        "image.respository: not a key the chart documents",
        "config.service.pipeline: not a key the chart documents",
    ]


# --- jaeger -----------------------------------------------------------------------------


def test_jaeger_values_pass() -> None:
    assert values_problems(jaeger_values(), JAEGER_VALUES) == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("allInOne",), {"enabled": True}),  # the v1 chart's key
        (("config",), {}),  # the README's Cassandra example; the chart reads `userconfig`
        (("jaeger", "topologySpreadContraints"), []),  # values.yaml's typo, read by nothing
        (("jaeger", "service", "type"), "LoadBalancer"),  # read, never documented
    ],
)
def test_jaeger_undocumented_keys(where: tuple[str, ...], value: object) -> None:
    values = jaeger_values()
    put(values, where, value)
    assert values_problems(values, JAEGER_VALUES) == [
        f"{'.'.join(where)}: not a key the chart documents"
    ]


# --- PrometheusRule / ServiceMonitor ----------------------------------------------------


def test_prometheus_rule_passes() -> None:
    assert problems(prometheus_rule_spec(), PROMETHEUS_RULE_SPEC) == []


def test_prometheus_rule_misspelt_field() -> None:
    spec = prometheus_rule_spec()
    rule = spec["groups"][0]["rules"][0]
    rule["expression"] = rule.pop("expr")
    assert problems(spec, PROMETHEUS_RULE_SPEC) == [
        "groups[0].rules[0].expression: unknown field",
        "groups[0].rules[0].expr: required field is missing",
    ]


def test_prometheus_rule_bad_duration_and_missing_name() -> None:
    spec = prometheus_rule_spec()
    spec["groups"][0]["rules"][1]["for"] = "10 minutes"
    del spec["groups"][0]["name"]
    found = problems(spec, PROMETHEUS_RULE_SPEC)
    assert len(found) == 2
    assert found[0].startswith("groups[0].rules[1].for: '10 minutes' does not match")
    assert found[1] == "groups[0].name: required field is missing"


def test_service_monitor_passes() -> None:
    assert problems(service_monitor_spec(), SERVICE_MONITOR_SPEC) == []


def test_service_monitor_any_namespace_passes() -> None:
    spec = service_monitor_spec()
    spec["namespaceSelector"] = {"any": True}
    assert problems(spec, SERVICE_MONITOR_SPEC) == []


def test_service_monitor_errors_are_named() -> None:
    spec = service_monitor_spec()
    del spec["selector"]
    spec["endpoints"][0]["targetport"] = 8080
    spec["endpoints"][0]["scheme"] = "grpc"
    assert problems(spec, SERVICE_MONITOR_SPEC) == [
        "endpoints[0].scheme: 'grpc' is not one of [http, https, HTTP, HTTPS]",
        "endpoints[0].targetport: unknown field",
        "selector: required field is missing",
    ]
