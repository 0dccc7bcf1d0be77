"""Metrics, alerts, dashboards and traces: kube-prometheus-stack, the OpenTelemetry
Collector and Jaeger.

- ``monitoring``: Prometheus (retention and size limits, an encrypted gp3 volume, picking
  up ServiceMonitors, PodMonitors and PrometheusRules from every namespace), Alertmanager
  (grouped by alert name and namespace, critical inhibits warning, critical alerts to a
  webhook whose URL comes from a Secret, never from values), and Grafana (its admin
  password generated into a Secret the chart references, dashboards from labelled
  ConfigMaps, no anonymous access). The chart installs its CRDs; the SLO PrometheusRule
  and the inference dashboard come after it.
- ``observability``: the OpenTelemetry Collector (OTLP gRPC and HTTP in, memory limiter
  and batching, traces out to Jaeger over OTLP) and Jaeger v2, in memory or on a Badger
  volume with a retention.

One component, one file: past 300 lines because the three charts' values are spelled
out here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components._k8s import (
    ChartPin,
    helm_release,
    namespace,
    system_placement,
)
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.services.dashboards import inference_dashboard
from components.services.observability_rules import SloTargets, slo_problems, slo_rule_groups

PROMETHEUS_STACK_CHART = ChartPin(
    "https://prometheus-community.github.io/helm-charts", "kube-prometheus-stack", "88.5.3"
)
COLLECTOR_CHART = ChartPin(
    "https://open-telemetry.github.io/opentelemetry-helm-charts",
    "opentelemetry-collector",
    "0.170.0",
)
NODE_LABELS_ALLOWLIST = "nodes=[node.kubernetes.io/instance-type,karpenter.sh/capacity-type]"
"""The node labels kube-state-metrics exports on ``kube_node_labels`` (as
``label_node_kubernetes_io_instance_type``, ``label_karpenter_sh_capacity_type``)."""
JAEGER_CHART = ChartPin("https://jaegertracing.github.io/helm-charts", "jaeger", "4.11.1")
# The collector's Kubernetes distribution (the chart has no default image).
COLLECTOR_IMAGE = (
    "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s"
)
JAEGER_PVC = "jaeger-badger-data"
MONITORING = "monitoring"
TRACING = "observability"
DASHBOARD_LABEL = "grafana_dashboard"
WEBHOOK_SECRET = "alert-webhook"
JaegerStorage = Literal["memory", "badger"]


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of :class:`Observability`."""

    storage_class: pulumi.Input[str]
    """The StorageClass of Prometheus', Alertmanager's, Grafana's and Jaeger's volumes
    (encrypted gp3). Required."""
    prometheus_retention: str = "15d"
    """How long Prometheus keeps samples. Default ``15d``."""
    prometheus_retention_size: str = "40GB"
    """Most disk Prometheus uses before dropping the oldest blocks (below the volume).
    Default ``40GB``."""
    prometheus_storage_gib: int = 50
    """Prometheus volume size. Default 50."""
    prometheus_replicas: int = 1
    """Prometheus replicas. Default 1."""
    alert_webhook_url: pulumi.Input[str] | None = None
    """Where critical alerts go (a secret: it is written to a Secret, never to values).
    Default none: alerts stay in Alertmanager."""
    jaeger_storage: JaegerStorage = "memory"
    """``memory`` (lost on restart) or ``badger`` (a volume). Default ``memory``."""
    jaeger_retention: str = "72h"
    """How long Badger keeps traces. Default ``72h``."""
    jaeger_storage_gib: int = 20
    """Badger volume size. Default 20."""
    slo: SloTargets = field(default_factory=SloTargets)
    """The inference service's SLO targets, for the PrometheusRule. Default SloTargets()."""
    runbook_base_url: str = "https://github.com/mlplatform/mlplatform/blob/main/docs/runbooks/"
    """Where the alerts' runbook links point. Default the project's docs."""
    inference_namespace: str = "inference"
    """The namespace the inference pods run in, for the pod-readiness alert. Default
    ``inference``."""
    system_pool: str = "system"
    """Pool label of the nodes the operator, Grafana and the collector run on. Default
    ``system``."""
    prometheus_stack_chart: ChartPin = PROMETHEUS_STACK_CHART
    collector_chart: ChartPin = COLLECTOR_CHART
    jaeger_chart: ChartPin = JAEGER_CHART


def validate_observability_args(args: ObservabilityArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    for label, value in (
        ("prometheus_retention", args.prometheus_retention),
        ("jaeger_retention", args.jaeger_retention),
    ):
        if not value[:-1].isdigit() or value[-1] not in "hdwy":
            problems.append(Problem(label, "must be a duration like 15d or 72h", value))
    size = args.prometheus_retention_size
    if not (size[:-2].isdigit() and size[-2:] in ("MB", "GB", "TB")):
        problems.append(Problem("prometheus_retention_size", "must be a size like 40GB", size))
    elif size.endswith("GB") and int(size[:-2]) >= args.prometheus_storage_gib:
        problems.append(
            Problem(
                "prometheus_retention_size",
                f"must stay below the {args.prometheus_storage_gib} GiB volume, or Prometheus "
                "fills it before it drops old blocks",
                size,
            )
        )
    for label, gib in (
        ("prometheus_storage_gib", args.prometheus_storage_gib),
        ("jaeger_storage_gib", args.jaeger_storage_gib),
    ):
        if not 1 <= gib <= 16384:
            problems.append(Problem(label, "must be from 1 to 16384", gib))
    if args.jaeger_storage not in ("memory", "badger"):
        problems.append(
            Problem("jaeger_storage", "must be 'memory' or 'badger'", args.jaeger_storage)
        )
    problems += slo_problems(args.slo)
    if not 1 <= args.prometheus_replicas <= 3:
        problems.append(
            Problem("prometheus_replicas", "must be from 1 to 3", args.prometheus_replicas)
        )
    return problems


def _volume(storage_class: pulumi.Input[str], gib: int) -> dict[str, object]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{gib}Gi"}},
            }
        }
    }


def alertmanager_config(*, webhook: bool) -> dict[str, object]:
    """Alertmanager's routing: grouped by alert name and namespace; critical alerts to the
    webhook (its URL read from the mounted Secret) when there is one; a critical alert
    silences the warning of the same name and namespace."""
    receivers: list[dict[str, object]] = [{"name": "default"}]
    routes: list[dict[str, object]] = []
    if webhook:
        url_file = f"/etc/alertmanager/secrets/{WEBHOOK_SECRET}/url"
        receivers.append(
            {"name": "critical", "webhook_configs": [{"url_file": url_file, "send_resolved": True}]}
        )
        routes.append({"matchers": ['severity="critical"'], "receiver": "critical"})
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", "namespace"],
            }
        ],
        "receivers": receivers,
    }


def jaeger_badger_config(retention: str) -> dict[str, object]:
    """Jaeger v2's configuration with Badger storage under ``/badger`` keeping spans for
    ``retention``: OTLP in, the storage exporter out, the query UI on the same store."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
        },
        "extensions": {
            # The chart's probes call /status on the pod IP: listen beyond localhost.
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": "0.0.0.0:13133"}},
            "jaeger_query": {"storage": {"traces": "badger_main"}},
            "jaeger_storage": {
                "backends": {
                    "badger_main": {
                        "badger": {
                            "directories": {"keys": "/badger/keys", "values": "/badger/values"},
                            "ephemeral": False,
                            "ttl": {"spans": retention},
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
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "badger_main"}},
    }


def collector_config(jaeger_endpoint: str) -> dict[str, object]:
    """The collector's pipeline: OTLP in, memory limiter and batching, OTLP to Jaeger."""
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": "${env:MY_POD_IP}:4317"},
                    "http": {"endpoint": "${env:MY_POD_IP}:4318"},
                }
            }
        },
        "processors": {
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": 80,
                "spike_limit_percentage": 25,
            },
            "batch": {},
        },
        "exporters": {"otlp/jaeger": {"endpoint": jaeger_endpoint, "tls": {"insecure": True}}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp/jaeger"],
                }
            }
        },
    }


class Observability(pulumi.ComponentResource):
    """Prometheus, Alertmanager, Grafana, the OpenTelemetry Collector and Jaeger.

    ``opts.providers`` must carry the cluster's Kubernetes provider; the releases wait for
    what ``opts.depends_on`` names (the system pool and its add-ons). ``otlp_endpoint``
    is the collector's OTLP/HTTP address for the services (``OTEL_EXPORTER_OTLP_ENDPOINT``)
    and the mesh; ``prometheus_release`` is what custom resources of the operator's kinds
    (ServiceMonitors elsewhere) must depend on. Raises
    :class:`~components._validate.ValidationError` naming every bad field.
    """

    otlp_endpoint: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    prometheus_release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("ObservabilityArgs", validate_observability_args(args))
        super().__init__(type_token("Observability"), name, None, opts)
        after = depends_on_of(opts)
        monitoring = namespace(
            MONITORING,
            parent=self,
            pod_security="privileged",
            reason="node-exporter reads the node's /proc and /sys with host networking and PID",
        )
        tracing = namespace(TRACING, parent=self, pod_security="baseline")
        child = pulumi.ResourceOptions(parent=self)
        placement = system_placement(args.system_pool)

        password = random.RandomPassword(
            f"{name}-grafana-admin", length=32, special=False, opts=child
        )
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": "grafana-admin", "namespace": monitoring.metadata.name},
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=child,
        )
        secrets: list[pulumi.Resource] = [admin]
        webhook = args.alert_webhook_url is not None
        if args.alert_webhook_url is not None:
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{WEBHOOK_SECRET}",
                    metadata={"name": WEBHOOK_SECRET, "namespace": monitoring.metadata.name},
                    string_data={
                        "url": pulumi.Output.secret(
                            pulumi.Output.from_input(args.alert_webhook_url)
                        )
                    },
                    opts=child,
                )
            )
        self.prometheus_release = helm_release(
            f"{name}-prometheus",
            pin=args.prometheus_stack_chart,
            namespace=monitoring.metadata.name,
            release_name="kube-prometheus-stack",
            values={
                "crds": {"enabled": True},
                "prometheusOperator": placement,
                # kube_node_labels carries only the node's name unless told: the
                # right-sizing report prices each pod by its node's instance type.
                "kube-state-metrics": {"metricLabelsAllowlist": [NODE_LABELS_ALLOWLIST]},
                "prometheus": {
                    "prometheusSpec": {
                        "retention": args.prometheus_retention,
                        "retentionSize": args.prometheus_retention_size,
                        "replicas": args.prometheus_replicas,
                        "storageSpec": _volume(args.storage_class, args.prometheus_storage_gib),
                        # Pick up the monitors and rules of every namespace, not only the
                        # release's own.
                        "ruleSelectorNilUsesHelmValues": False,
                        "serviceMonitorSelectorNilUsesHelmValues": False,
                        "podMonitorSelectorNilUsesHelmValues": False,
                        "probeSelectorNilUsesHelmValues": False,
                        **placement,
                    }
                },
                "alertmanager": {
                    "config": alertmanager_config(webhook=webhook),
                    "alertmanagerSpec": {
                        "storage": _volume(args.storage_class, 10),
                        "secrets": [WEBHOOK_SECRET] if webhook else [],
                        **placement,
                    },
                },
                "grafana": {
                    "admin": {
                        "existingSecret": "grafana-admin",
                        "userKey": "admin-user",
                        "passwordKey": "admin-password",
                    },
                    "grafana.ini": {
                        "auth.anonymous": {"enabled": False},
                        "users": {"allow_sign_up": False},
                    },
                    "sidecar": {
                        "dashboards": {
                            "enabled": True,
                            "label": DASHBOARD_LABEL,
                            "labelValue": "1",
                            "searchNamespace": "ALL",
                        }
                    },
                    "persistence": {
                        "enabled": True,
                        "storageClassName": args.storage_class,
                        "size": "10Gi",
                    },
                    **placement,
                },
            },
            parent=self,
            depends_on=[*secrets, *after],
        )
        after_operator = pulumi.ResourceOptions(parent=self, depends_on=[self.prometheus_release])
        k8s.apiextensions.CustomResource(
            f"{name}-slo",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "inference-slo", "namespace": monitoring.metadata.name},
            spec={
                "groups": slo_rule_groups(
                    args.slo,
                    runbook_base_url=args.runbook_base_url,
                    namespace=args.inference_namespace,
                )
            },
            opts=after_operator,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-inference-dashboard",
            metadata={
                "name": "inference-dashboard",
                "namespace": monitoring.metadata.name,
                "labels": {DASHBOARD_LABEL: "1"},
            },
            data={"inference.json": json.dumps(inference_dashboard(), sort_keys=True)},
            opts=after_operator,
        )

        jaeger_values: dict[str, object] = {"jaeger": {"replicas": 1, **placement}}
        if args.jaeger_storage == "badger":
            claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-jaeger-badger",
                metadata={"name": JAEGER_PVC, "namespace": tracing.metadata.name},
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=args.storage_class,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                        requests={"storage": f"{args.jaeger_storage_gib}Gi"}
                    ),
                ),
                # Bound when Jaeger's pod is scheduled (WaitForFirstConsumer).
                opts=child,
            )
            after = [*after, claim]
            jaeger_values = {
                "jaeger": {
                    "replicas": 1,  # Badger is one process on a ReadWriteOnce volume
                    "extraVolumes": [
                        {"name": "badger", "persistentVolumeClaim": {"claimName": JAEGER_PVC}}
                    ],
                    "extraVolumeMounts": [{"name": "badger", "mountPath": "/badger"}],
                    **placement,
                },
                "userconfig": jaeger_badger_config(args.jaeger_retention),
            }
        jaeger = helm_release(
            f"{name}-jaeger",
            pin=args.jaeger_chart,
            namespace=tracing.metadata.name,
            release_name="jaeger",
            values=jaeger_values,
            parent=self,
            depends_on=after,
        )
        helm_release(
            f"{name}-collector",
            pin=args.collector_chart,
            namespace=tracing.metadata.name,
            release_name="otel-collector",
            values={
                "mode": "deployment",
                "image": {"repository": COLLECTOR_IMAGE},
                "command": {"name": "otelcol-k8s"},
                "replicaCount": 2,
                "config": collector_config(f"jaeger.{TRACING}.svc:4317"),
                **placement,
            },
            parent=self,
            depends_on=[jaeger, *after],
        )
        self.otlp_endpoint = pulumi.Output.from_input(
            f"http://otel-collector-opentelemetry-collector.{TRACING}.svc:4318"
        )
        self.grafana_admin_password = pulumi.Output.secret(password.result)
        self.register_outputs(
            {
                "otlp_endpoint": self.otlp_endpoint,
                "grafana_admin_password": self.grafana_admin_password,
            }
        )
