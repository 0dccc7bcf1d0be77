"""How an inference release grows and who may reach it: the KEDA ``ScaledObject`` (queued
requests per pod from the service's own ``serving_queue_depth``, CPU as a floor) and the
NetworkPolicies (the gateway and Prometheus in; MLflow and HTTPS out). Plain specs with
the APIs' camelCase keys."""

from __future__ import annotations

from typing import Any

from components.workloads.inference_args import PORT, InferenceServiceArgs
from components.workloads.inference_pods import RELEASE_LABEL, service_labels

MERGED_METRICS_PORT = 15020
"""The sidecar's merged metrics port (the app's ``/metrics`` with Envoy's): scraped in
plain HTTP under STRICT mTLS."""
PROMETHEUS_NAMESPACE = "monitoring"
MLFLOW_NAMESPACE = "mlflow"
MLFLOW_PORT = 5000
_NS_LABEL = "kubernetes.io/metadata.name"


def release_metric_label() -> str:
    """The label Prometheus gives a pod's release (the ServiceMonitor's podTargetLabels)."""
    return RELEASE_LABEL.replace(".", "_").replace("/", "_")


def scaled_object_spec(
    args: InferenceServiceArgs, *, service: str, colour: str, deployment: str
) -> dict[str, Any]:
    """Scale on queued requests per pod (``serving_queue_depth``), CPU as a floor; add
    pods fast, remove them one a minute after five quiet minutes."""
    query = (
        f'sum(serving_queue_depth{{namespace="{args.namespace}", service="{service}", '
        f'{release_metric_label()}="{colour}"}})'
    )
    return {
        "scaleTargetRef": {"name": deployment},
        "minReplicaCount": args.min_replicas,
        "maxReplicaCount": args.max_replicas,
        "pollingInterval": 15,
        "cooldownPeriod": 300,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleDown": {
                        "stabilizationWindowSeconds": 300,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                    },
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 30}],
                    },
                }
            }
        },
        "triggers": [
            {
                "type": "prometheus",
                "name": "queue-depth",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": args.prometheus_url,
                    "query": query,
                    "threshold": str(args.queue_target),
                },
            },
            {
                "type": "cpu",
                "name": "cpu-floor",
                "metricType": "Utilization",
                "metadata": {"value": str(args.cpu_target_percent), "containerName": "serving"},
            },
        ],
    }


def _from(namespace: str, pods: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {_NS_LABEL: namespace}},
                "podSelector": {"matchLabels": pods},
            }
        ],
        "ports": [{"protocol": "TCP", "port": port}],
    }


def network_policy_specs(
    service: str, args: InferenceServiceArgs, gateway_namespace: str
) -> dict[str, Any]:
    """{name suffix: spec}: admit the ingress gateway (the service port) and Prometheus
    (the merged metrics port) only; let the pods reach the MLflow server and HTTPS (S3,
    STS for the role; S3's gateway endpoint has no fixed address range to name)."""
    pods = {"matchLabels": service_labels(service)}
    return {
        "ingress": {
            "podSelector": pods,
            "policyTypes": ["Ingress"],
            "ingress": [
                _from(gateway_namespace, dict(args.gateway_labels), PORT),
                _from(
                    PROMETHEUS_NAMESPACE,
                    {"app.kubernetes.io/name": "prometheus"},
                    MERGED_METRICS_PORT,
                ),
            ],
        },
        "egress": {
            "podSelector": pods,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {_NS_LABEL: MLFLOW_NAMESPACE}}}],
                    "ports": [{"protocol": "TCP", "port": MLFLOW_PORT}],
                },
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
            ],
        },
    }
