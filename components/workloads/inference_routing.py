"""Traffic to an inference service: the Istio routes, the releases' subsets, and the edge
(JWT, authorization, rate limit, body size) at the ingress gateway. Plain specs with the
CRDs' camelCase keys (Istio 1.30: ``networking.istio.io/v1``, ``security.istio.io/v1``;
``EnvoyFilter`` exists in ``v1alpha3`` only).

Paths the gateway routes to a service:

- ``/v2/models/<model>`` and ``/v2/models/<model>/...`` for each of its models (model
  names are unique across services, so the path alone picks the service);
- ``/<service>/invocations`` -> ``/invocations`` (the MLflow scoring protocol, for the
  service's first model) and ``/<service>/v2/health/...`` -> ``/v2/health/...``.

Retries only where the request cannot have been processed: the connection failed, the
stream was refused, or the pod answered 503 (not ready or draining, sent before any
work). Never on 429 (back-pressure) or 504 (the deadline passed: retrying doubles load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.workloads.inference_args import (
    MAX_BODY_BYTES,
    PORT,
    InferenceServiceArgs,
    route_timeout_ms,
)
from components.workloads.inference_pods import RELEASE_LABEL

RETRY_ON = "connect-failure,refused-stream,503"
RETRY_ATTEMPTS = 2
HEALTH_PREFIX = "/v2/health/"
LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
_LOCAL_RATE_LIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
_BUFFER = "envoy.filters.http.buffer"
_BUFFER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"


def host(service: str, namespace: str) -> str:
    """The service's in-mesh name."""
    return f"{service}.{namespace}.svc.cluster.local"


def inference_route_name(service: str) -> str:
    """The name of the route carrying inference calls (the rate limit's match)."""
    return f"{service}-inference"


def inference_paths(service: str, models: Sequence[str]) -> list[str]:
    """The authorization paths of the service's inference calls (Istio path globs)."""
    paths = [f"/{service}/invocations"]
    for model in models:
        paths += [f"/v2/models/{model}", f"/v2/models/{model}/*"]
    return paths


def _destinations(
    args: InferenceServiceArgs, service: str, namespace: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The weighted destinations and, under ``shadow``, the mirror fields."""
    rollout = args.rollout
    target = host(service, namespace)
    weights = rollout.weights()
    routes = [
        {"destination": {"host": target, "subset": colour, "port": {"number": PORT}}, "weight": w}
        for colour, w in weights.items()
    ]
    mirror: dict[str, Any] = {}
    if rollout.strategy == "shadow" and rollout.mirror_percent > 0:
        mirror = {
            "mirror": {"host": target, "subset": rollout.idle, "port": {"number": PORT}},
            "mirrorPercentage": {"value": float(rollout.mirror_percent)},
        }
    return routes, mirror


def virtual_service_spec(
    args: InferenceServiceArgs, service: str, namespace: str, models: Sequence[str]
) -> dict[str, Any]:
    """The VirtualService on the ingress Gateway: inference, scoring and health routes."""
    routes, mirror = _destinations(args, service, namespace)
    timeout = f"{route_timeout_ms() / 1000:g}s"
    matches: list[dict[str, Any]] = []
    for model in models:
        matches += [
            {"uri": {"exact": f"/v2/models/{model}"}},
            {"uri": {"prefix": f"/v2/models/{model}/"}},
        ]
    retries = {
        "attempts": RETRY_ATTEMPTS,
        "perTryTimeout": timeout,
        "retryOn": RETRY_ON,
    }
    return {
        "hosts": list(args.hosts),
        "gateways": [args.gateway],
        "http": [
            {
                "name": inference_route_name(service),
                "match": matches,
                "route": routes,
                "timeout": timeout,
                "retries": retries,
                **mirror,
            },
            {
                "name": f"{service}-invocations",
                "match": [{"uri": {"exact": f"/{service}/invocations"}}],
                "rewrite": {"uri": "/invocations"},
                "route": routes,
                "timeout": timeout,
                "retries": retries,
                **mirror,
            },
            {
                "name": f"{service}-health",
                "match": [{"uri": {"prefix": f"/{service}{HEALTH_PREFIX}"}}],
                "rewrite": {"uri": HEALTH_PREFIX},
                "route": routes,
                "timeout": "2s",
            },
        ],
    }


def destination_rule_spec(
    args: InferenceServiceArgs, service: str, namespace: str
) -> dict[str, Any]:
    """One subset per running release; requests spread to the least-loaded pod (batches
    fill per pod, so round robin over uneven pods queues on the slow one)."""
    return {
        "host": host(service, namespace),
        "trafficPolicy": {
            "loadBalancer": {"simple": "LEAST_REQUEST"},
            "tls": {"mode": "ISTIO_MUTUAL"},
        },
        "subsets": [
            {"name": colour, "labels": {RELEASE_LABEL: colour}} for colour in args.rollout.colours()
        ],
    }


def request_authentication_spec(args: InferenceServiceArgs) -> dict[str, Any]:
    """The gateway validates tokens of the configured issuer (a token present and invalid
    is refused with 401; a missing one is left to the authorization policy)."""
    auth = args.auth
    return {
        "selector": {"matchLabels": dict(args.gateway_labels)},
        "jwtRules": [
            {
                "issuer": auth.issuer,
                "jwksUri": auth.jwks_uri,
                "audiences": list(auth.audiences),
                "forwardOriginalToken": False,
            }
        ],
    }


def gateway_authorization_spec(
    args: InferenceServiceArgs, service: str, models: Sequence[str]
) -> dict[str, Any]:
    """DENY, at the gateway, inference calls without a valid token of the issuer or
    without an allowed audience. Health paths stay open. A DENY policy (not an ALLOW one)
    so that other services behind the same gateway keep their own rules."""
    paths = inference_paths(service, models)
    return {
        "selector": {"matchLabels": dict(args.gateway_labels)},
        "action": "DENY",
        "rules": [
            {
                "from": [{"source": {"notRequestPrincipals": [f"{args.auth.issuer}/*"]}}],
                "to": [{"operation": {"paths": paths}}],
            },
            {
                "to": [{"operation": {"paths": paths}}],
                "when": [{"key": "request.auth.audiences", "notValues": list(args.auth.audiences)}],
            },
        ],
    }


def pod_authorization_spec(
    args: InferenceServiceArgs, service: str, gateway_namespace: str
) -> dict[str, Any]:
    """ALLOW the gateway's mTLS identity to the pods' port (the namespace allows nothing
    by default)."""
    principal = f"cluster.local/ns/{gateway_namespace}/sa/{args.gateway_service_account}"
    return {
        "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": [principal]}}],
                "to": [{"operation": {"ports": [str(PORT)]}}],
            }
        ],
    }


def _filter_match() -> dict[str, Any]:
    return {
        "context": "GATEWAY",
        "listener": {
            "filterChain": {
                "filter": {
                    "name": "envoy.filters.network.http_connection_manager",
                    "subFilter": {"name": "envoy.filters.http.router"},
                }
            }
        },
    }


def gateway_filters_spec(gateway_labels: Mapping[str, str]) -> dict[str, Any]:
    """The gateway's HTTP filters the inference routes configure, inserted once per
    gateway: Envoy's local rate limit with no bucket of its own (it limits only routes
    that carry one) and the buffer filter capping request bodies at the service's
    ``--max-body-bytes`` (413 above it, before a pod sees the request)."""
    filters = (
        (
            LOCAL_RATE_LIMIT,
            {"@type": _LOCAL_RATE_LIMIT_TYPE, "stat_prefix": "http_local_rate_limiter"},
        ),
        (_BUFFER, {"@type": _BUFFER_TYPE, "max_request_bytes": MAX_BODY_BYTES}),
    )
    return {
        "workloadSelector": {"labels": dict(gateway_labels)},
        "configPatches": [
            {
                "applyTo": "HTTP_FILTER",
                "match": _filter_match(),
                "patch": {
                    "operation": "INSERT_BEFORE",
                    "value": {"name": name, "typed_config": config},
                },
            }
            for name, config in filters
        ],
    }


def _fraction(runtime_key: str) -> dict[str, Any]:
    return {
        "runtime_key": runtime_key,
        "default_value": {"numerator": 100, "denominator": "HUNDRED"},
    }


def route_filters_spec(args: InferenceServiceArgs, service: str) -> dict[str, Any]:
    """The token bucket of the service's inference routes at the gateway (per gateway
    replica): past it, 429 with ``Retry-After: 1`` (the bucket's fill interval)."""
    limit = args.rate_limit
    retry_after = {
        "header": {"key": "retry-after", "value": "1"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }
    route_limit = {
        "@type": _LOCAL_RATE_LIMIT_TYPE,
        "stat_prefix": f"{service.replace('-', '_')}_rate_limit",
        "token_bucket": {
            "max_tokens": limit.burst,
            "tokens_per_fill": limit.requests_per_second,
            "fill_interval": "1s",
        },
        "filter_enabled": _fraction(f"{service}_rate_limit_enabled"),
        "filter_enforced": _fraction(f"{service}_rate_limit_enforced"),
        "response_headers_to_add": [retry_after],
    }
    return {
        "workloadSelector": {"labels": dict(args.gateway_labels)},
        "configPatches": [
            {
                "applyTo": "HTTP_ROUTE",
                "match": {
                    "context": "GATEWAY",
                    "routeConfiguration": {"vhost": {"route": {"name": name}}},
                },
                "patch": {
                    "operation": "MERGE",
                    "value": {"typed_per_filter_config": {LOCAL_RATE_LIMIT: route_limit}},
                },
            }
            for name in (inference_route_name(service), f"{service}-invocations")
        ],
    }


def weights_of(spec: Mapping[str, Any]) -> list[int]:
    """The weights of each route of a VirtualService spec that carries weights."""
    return [sum(r.get("weight", 0) for r in route["route"]) for route in spec["http"]]


@dataclass(frozen=True)
class MeshObject:
    """One Istio custom resource of a service: kind, API version, name suffix, namespace
    and spec."""

    kind: str
    api_version: str
    suffix: str
    namespace: str
    spec: dict[str, Any]


def mesh_objects(
    args: InferenceServiceArgs, service: str, gateway_namespace: str, models: Sequence[str]
) -> list[MeshObject]:
    """The routes and subsets in the service's namespace, the allow of the gateway's
    identity to its pods, and at the gateway the JWT rules, the authorization of
    inference paths and the rate limit of its routes."""
    ns = args.namespace
    net, sec = "networking.istio.io/v1", "security.istio.io/v1"
    return [
        MeshObject(
            "VirtualService", net, "routes", ns, virtual_service_spec(args, service, ns, models)
        ),
        MeshObject("DestinationRule", net, "subsets", ns, destination_rule_spec(args, service, ns)),
        MeshObject(
            "AuthorizationPolicy",
            sec,
            "from-gateway",
            ns,
            pod_authorization_spec(args, service, gateway_namespace),
        ),
        MeshObject(
            "RequestAuthentication",
            sec,
            "jwt",
            gateway_namespace,
            request_authentication_spec(args),
        ),
        MeshObject(
            "AuthorizationPolicy",
            sec,
            "require-jwt",
            gateway_namespace,
            gateway_authorization_spec(args, service, models),
        ),
        MeshObject(
            "EnvoyFilter",
            "networking.istio.io/v1alpha3",
            "rate-limit",
            gateway_namespace,
            route_filters_spec(args, service),
        ),
    ]
