"""The pods of an inference release: command line, environment, probes, placement and the
termination sequence, as the Deployment's spec (plain dicts, the API's camelCase keys).

Every value the service runs with is a flag here, and the numbers that depend on them
(grace period, startup budget) come from ``inference_args``, so they cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pulumi

from components._k8s import (
    GPU_RESOURCE,
    GPU_TAINT,
    pool_selector,
    restricted_container_security_context,
    restricted_pod_security_context,
    system_placement,
)
from components.workloads.inference_args import (
    DRAIN_TIMEOUT_S,
    MAX_BODY_BYTES,
    PORT,
    PRESTOP_S,
    REQUEST_TIMEOUT_MS,
    Colour,
    InferenceServiceArgs,
    release_models,
    startup_failure_threshold,
    termination_grace_s,
)
from components.workloads.mlflow_command import CLIENT_PASSWORD_ENV, CLIENT_USERNAME_ENV

APP_LABEL = "app.kubernetes.io/name"
RELEASE_LABEL = "mlplatform.io/release"
PART_OF_LABEL = "app.kubernetes.io/part-of"
PART_OF = "mlplatform-inference"
MODELS_ANNOTATION = "mlplatform.io/models"
MODEL_PINS_ANNOTATION = "mlplatform.io/model-pins"
"""``versions`` (every model a pinned version) or ``aliases-allowed``; the policy pack
holds a Deployment to it."""
STARTUP_PERIOD_S = 5
ZONE_KEY = "topology.kubernetes.io/zone"


def service_labels(service: str) -> dict[str, str]:
    """Labels every pod of ``service`` carries (the Service's selector)."""
    return {APP_LABEL: service, PART_OF_LABEL: PART_OF}


def release_labels(service: str, colour: Colour) -> dict[str, str]:
    """Labels of the pods of one release (a DestinationRule subset's selector)."""
    return {**service_labels(service), RELEASE_LABEL: colour}


def deployment_name(service: str, colour: Colour, two_releases: bool) -> str:
    """``<service>`` under rolling, ``<service>-<colour>`` with two releases."""
    return f"{service}-{colour}" if two_releases else service


def command(args: InferenceServiceArgs, colour: Colour) -> list[str]:
    """The container's command line: the models, batching and the timeouts the grace
    period and the routes are computed from. Host and port come from the environment."""
    batch = args.batching
    line = ["python", "-m", "serving"]
    for name, uri in release_models(args, colour).items():
        line += ["--model", f"{name}={uri}"]
    line += [
        *("--max-batch-size", str(batch.max_batch_size)),
        *("--max-batch-delay-ms", str(batch.max_delay_ms)),
        *("--max-queue", str(batch.max_queue)),
        *("--workers", str(batch.workers)),
        *("--request-timeout-ms", str(REQUEST_TIMEOUT_MS)),
        *("--drain-timeout-s", str(DRAIN_TIMEOUT_S)),
        *("--max-body-bytes", str(MAX_BODY_BYTES)),
    ]
    processes = predict_processes(args)
    if processes:
        line += ["--predict-processes", str(processes)]
    return line


def _cores(quantity: str) -> int:
    """A CPU quantity (``4``, ``2.5``, ``1500m``) rounded up to whole cores."""
    millicores = float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000
    return max(1, math.ceil(millicores / 1000))


def predict_processes(args: InferenceServiceArgs) -> int:
    """Predict processes per pod (``--predict-processes``): 1 on a GPU (more would only
    copy the model onto it); the CPU limit in whole cores otherwise, so predict uses
    every core the pod may; 0, predict in the service's own process, without a CPU limit
    (the pod's cores are then unknown, and every process loads its own model)."""
    if args.placement == "gpu":
        return 1
    limit = args.resources.cpu_limit
    return _cores(limit) if limit is not None else 0


def mlflow_secret_name(service: str) -> str:
    """The Secret holding ``service``'s registry credentials (keys ``username``,
    ``password``)."""
    return f"{service}-mlflow"


def environment(args: InferenceServiceArgs, service: str, colour: Colour) -> list[dict[str, Any]]:
    """The container's environment: bind address, MLflow (its credentials from the
    service's Secret, never a literal), tracing."""
    env: list[dict[str, Any]] = [
        {"name": "SERVING_HOST", "value": "0.0.0.0"},
        {"name": "SERVING_PORT", "value": str(PORT)},
        {"name": "MLFLOW_TRACKING_URI", "value": args.mlflow_tracking_uri},
    ]
    if args.mlflow_credentials is not None:
        env += [
            {
                "name": name,
                "valueFrom": {"secretKeyRef": {"name": mlflow_secret_name(service), "key": key}},
            }
            for name, key in (
                (CLIENT_USERNAME_ENV, "username"),
                (CLIENT_PASSWORD_ENV, "password"),
            )
        ]
    return [
        *env,
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": args.otlp_endpoint},
        {"name": "OTEL_SERVICE_NAME", "value": f"{service}-{colour}"},
    ]


def _probe(path: str, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "timeoutSeconds": 2, **timing}


def probes() -> dict[str, Any]:
    """Startup sized for the model load, readiness and liveness on the V2 health paths."""
    return {
        "startupProbe": _probe(
            "/v2/health/ready",
            periodSeconds=STARTUP_PERIOD_S,
            failureThreshold=startup_failure_threshold(STARTUP_PERIOD_S),
        ),
        "readinessProbe": _probe("/v2/health/ready", periodSeconds=5, failureThreshold=2),
        "livenessProbe": _probe("/v2/health/live", periodSeconds=10, failureThreshold=3),
    }


def resources(args: InferenceServiceArgs) -> dict[str, Any]:
    res = args.resources
    requests: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, Any] = {"memory": res.memory_limit or res.memory}
    if res.cpu_limit:
        limits["cpu"] = res.cpu_limit
    if args.placement == "gpu":
        requests[GPU_RESOURCE] = str(res.gpu)
        limits[GPU_RESOURCE] = str(res.gpu)
    return {"requests": requests, "limits": limits}


def placement(args: InferenceServiceArgs) -> dict[str, Any]:
    """``nodeSelector`` and ``tolerations`` of the configured pool."""
    if args.placement == "system":
        return system_placement(args.pool)
    if args.placement == "gpu":
        return {"nodeSelector": pool_selector(args.pool), "tolerations": [GPU_TAINT.toleration()]}
    # The spot pool carries no taint (the node contract taints GPU nodes only).
    return {"nodeSelector": pool_selector(args.pool)}


def pod_spec(
    args: InferenceServiceArgs,
    *,
    service: str,
    colour: Colour,
    image: pulumi.Input[str],
    service_account: str,
) -> dict[str, Any]:
    """The pod template's spec of release ``colour``."""
    container = {
        "name": "serving",
        "image": image,
        "command": command(args, colour),
        "env": environment(args, service, colour),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": resources(args),
        "securityContext": restricted_container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        # Longer than the endpoints' propagation, so no gateway sends to a stopping pod.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_S}}},
        **probes(),
    }
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": True,
        "securityContext": restricted_pod_security_context(),
        "terminationGracePeriodSeconds": termination_grace_s(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE_KEY,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": release_labels(service, colour)},
            }
        ],
        **placement(args),
    }


def pod_annotations(models: Mapping[str, str], *, aliases: bool) -> dict[str, str]:
    """The pods' annotations: Istio's metrics merge (the sidecar serves the app's
    ``/metrics`` with its own on 15020, reachable without mTLS), the models served and
    whether they must be pinned versions."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics",
        MODELS_ANNOTATION: ",".join(f"{n}={u}" for n, u in models.items()),
        MODEL_PINS_ANNOTATION: "aliases-allowed" if aliases else "versions",
    }


def deployment_spec(
    args: InferenceServiceArgs,
    *,
    service: str,
    colour: Colour,
    image: pulumi.Input[str],
    service_account: str,
) -> Any:
    """The Deployment's spec (the API's camelCase keys): surge one pod, never one
    unavailable; the replica count is the autoscaler's (``replicas`` is its floor at
    creation only)."""
    labels = release_labels(service, colour)
    return {
        "replicas": args.min_replicas,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": labels},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": pod_annotations(
                    release_models(args, colour), aliases=args.allow_model_aliases
                ),
            },
            "spec": pod_spec(
                args, service=service, colour=colour, image=image, service_account=service_account
            ),
        },
    }
