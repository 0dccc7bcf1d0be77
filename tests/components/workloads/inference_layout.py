"""Field layouts of the custom resources an inference service creates, for offline checks.

Written by hand (the notation of ``tests/components/layout.py``) from:

* Istio ``VirtualService``, ``DestinationRule`` (``networking.istio.io/v1``),
  ``RequestAuthentication`` and ``AuthorizationPolicy`` (``security.istio.io/v1``) and
  ``EnvoyFilter`` (``networking.istio.io/v1alpha3``, the only version served) at istio/api
  tag ``v1.30.3``, ``kubernetes/customresourcedefinitions.gen.yaml`` (the CRDs the Istio
  ``base`` chart 1.30.3 installs). Only the branches the platform writes are opened; their
  siblings are listed, so a misspelt field fails.
* The ``keda`` chart 2.20.2: ``keda/values.yaml`` at tag ``v2.20.2`` of kedacore/charts.
* KEDA ``ScaledObject`` (``keda.sh/v1alpha1``) at kedacore/keda tag ``v2.20.2``,
  ``config/crd/bases/keda.sh_scaledobjects.yaml`` (the CRD the ``keda`` chart 2.20.2
  installs); the trigger ``metadata`` is a free string map, its keys read from
  ``pkg/scalers/prometheus_scaler.go`` and ``cpu_memory_scaler.go`` at the same tag.

The ``AuthorizationPolicy`` layout is the mesh's (``tests/components/services/istio_layout.py``).

When a pin moves, re-read those files at the new tag and update this module by hand.
"""

from __future__ import annotations

from tests.components.layout import (
    AnyValue,
    Arr,
    Bool,
    Int,
    Layout,
    Map,
    Num,
    Obj,
    Str,
    req,
)
from tests.components.services.istio_layout import AUTHORIZATION_POLICY_SPEC

KEDA_VERSION = "2.20.2"

_STRING_MATCH = Obj({"exact": Str(), "prefix": Str(), "regex": Str()})
_DESTINATION = Obj(
    {"host": Str(), "subset": Str(), "port": Obj({"number": Int(0, 4294967295)})},
    required=req("host"),
)
_HEADERS = Obj(
    {
        "request": Obj({"add": Map(Str()), "remove": Arr(Str()), "set": Map(Str())}),
        "response": Obj({"add": Map(Str()), "remove": Arr(Str()), "set": Map(Str())}),
    }
)
_HTTP_ROUTE = Obj(
    {
        "name": Str(),
        "match": Arr(
            Obj(
                {
                    "name": Str(),
                    "uri": _STRING_MATCH,
                    "scheme": _STRING_MATCH,
                    "method": _STRING_MATCH,
                    "authority": _STRING_MATCH,
                    "headers": Map(_STRING_MATCH),
                    "port": Int(),
                    "sourceLabels": Map(Str()),
                    "gateways": Arr(Str()),
                    "queryParams": Map(_STRING_MATCH),
                    "ignoreUriCase": Bool(),
                    "withoutHeaders": Map(_STRING_MATCH),
                    "sourceNamespace": Str(),
                    "statPrefix": Str(),
                }
            )
        ),
        "route": Arr(
            Obj(
                {"destination": _DESTINATION, "weight": Int(), "headers": _HEADERS},
                req("destination"),
            )
        ),
        "redirect": AnyValue(),
        "directResponse": AnyValue(),
        "delegate": AnyValue(),
        "rewrite": Obj({"uri": Str(), "authority": Str(), "uriRegexRewrite": AnyValue()}),
        "timeout": Str(),
        "retries": Obj(
            {
                "attempts": Int(),
                "perTryTimeout": Str(),
                "retryOn": Str(),
                "retryRemoteLocalities": Bool(),
                "retryIgnorePreviousHosts": Bool(),
                "backoff": Str(),
            }
        ),
        "fault": AnyValue(),
        "mirror": _DESTINATION,
        "mirrors": Arr(AnyValue()),
        "mirrorPercentage": Obj({"value": Num()}),
        "mirrorPercent": Int(),
        "mirror_percent": Int(),
        "corsPolicy": AnyValue(),
        "headers": _HEADERS,
    }
)
VIRTUAL_SERVICE_SPEC = Obj(
    {
        "hosts": Arr(Str()),
        "gateways": Arr(Str()),
        "http": Arr(_HTTP_ROUTE),
        "tls": Arr(AnyValue()),
        "tcp": Arr(AnyValue()),
        "exportTo": Arr(Str()),
    }
)
_TRAFFIC_POLICY = Obj(
    {
        "loadBalancer": Obj(
            {
                "simple": Str(
                    enum=(
                        "UNSPECIFIED",
                        "RANDOM",
                        "PASSTHROUGH",
                        "ROUND_ROBIN",
                        "LEAST_REQUEST",
                        "LEAST_CONN",
                    )
                ),
                "consistentHash": AnyValue(),
                "localityLbSetting": AnyValue(),
                "warmupDurationSecs": Str(),
                "warmup": AnyValue(),
            }
        ),
        "connectionPool": AnyValue(),
        "outlierDetection": AnyValue(),
        "tls": Obj(
            {
                "mode": Str(enum=("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL")),
                "clientCertificate": Str(),
                "privateKey": Str(),
                "caCertificates": Str(),
                "caCrl": Str(),
                "credentialName": Str(),
                "subjectAltNames": Arr(Str()),
                "sni": Str(),
                "insecureSkipVerify": Bool(),
            }
        ),
        "portLevelSettings": Arr(AnyValue()),
        "tunnel": AnyValue(),
        "proxyProtocol": AnyValue(),
        "retryBudget": AnyValue(),
    }
)
DESTINATION_RULE_SPEC = Obj(
    {
        "host": Str(),
        "trafficPolicy": _TRAFFIC_POLICY,
        "subsets": Arr(
            Obj(
                {"name": Str(), "labels": Map(Str()), "trafficPolicy": _TRAFFIC_POLICY}, req("name")
            )
        ),
        "exportTo": Arr(Str()),
        "workloadSelector": Obj({"matchLabels": Map(Str())}),
    },
    required=req("host"),
)
_SELECTOR = Obj({"matchLabels": Map(Str())})
_TARGET_REF = Obj(
    {"group": Str(), "kind": Str(), "name": Str(), "namespace": Str()}, req("kind", "name")
)
REQUEST_AUTHENTICATION_SPEC = Obj(
    {
        "selector": _SELECTOR,
        "targetRef": _TARGET_REF,
        "targetRefs": Arr(_TARGET_REF),
        "jwtRules": Arr(
            Obj(
                {
                    "issuer": Str(pattern=".+"),
                    "audiences": Arr(Str()),
                    "jwksUri": Str(pattern="^https?://"),
                    "jwks_uri": Str(),
                    "jwks": Str(),
                    "fromHeaders": Arr(Obj({"name": Str(), "prefix": Str()}, req("name"))),
                    "fromParams": Arr(Str()),
                    "fromCookies": Arr(Str()),
                    "outputPayloadToHeader": Str(),
                    "outputClaimToHeaders": Arr(AnyValue()),
                    "forwardOriginalToken": Bool(),
                    "spaceDelimitedClaims": Arr(Str()),
                    "timeout": Str(),
                },
                required=req("issuer"),
            )
        ),
    }
)
_STRINGS = Arr(Str())
_PATCH_CONTEXT = Str(enum=("ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"))
ENVOY_FILTER_SPEC = Obj(
    {
        "workloadSelector": Obj({"labels": Map(Str())}),
        "targetRefs": Arr(_TARGET_REF),
        "priority": Int(),
        "configPatches": Arr(
            Obj(
                {
                    "applyTo": Str(
                        enum=(
                            "INVALID",
                            "LISTENER",
                            "FILTER_CHAIN",
                            "NETWORK_FILTER",
                            "HTTP_FILTER",
                            "ROUTE_CONFIGURATION",
                            "VIRTUAL_HOST",
                            "HTTP_ROUTE",
                            "CLUSTER",
                            "EXTENSION_CONFIG",
                            "BOOTSTRAP",
                            "LISTENER_FILTER",
                        )
                    ),
                    "match": Obj(
                        {
                            "context": _PATCH_CONTEXT,
                            "proxy": AnyValue(),
                            "listener": Obj(
                                {
                                    "portNumber": Int(),
                                    "filterChain": Obj(
                                        {
                                            "name": Str(),
                                            "sni": Str(),
                                            "transportProtocol": Str(),
                                            "applicationProtocols": Str(),
                                            "filter": Obj(
                                                {"name": Str(), "subFilter": Obj({"name": Str()})}
                                            ),
                                            "destinationPort": Int(),
                                        }
                                    ),
                                    "listenerFilter": Str(),
                                    "name": Str(),
                                }
                            ),
                            "routeConfiguration": Obj(
                                {
                                    "portNumber": Int(),
                                    "portName": Str(),
                                    "gateway": Str(),
                                    "vhost": Obj(
                                        {
                                            "name": Str(),
                                            "domainName": Str(),
                                            "route": Obj(
                                                {
                                                    "name": Str(),
                                                    "action": Str(
                                                        enum=(
                                                            "ANY",
                                                            "ROUTE",
                                                            "REDIRECT",
                                                            "DIRECT_RESPONSE",
                                                        )
                                                    ),
                                                }
                                            ),
                                        }
                                    ),
                                    "name": Str(),
                                }
                            ),
                            "cluster": AnyValue(),
                        }
                    ),
                    "patch": Obj(
                        {
                            "operation": Str(
                                enum=(
                                    "INVALID",
                                    "MERGE",
                                    "ADD",
                                    "REMOVE",
                                    "INSERT_BEFORE",
                                    "INSERT_AFTER",
                                    "INSERT_FIRST",
                                    "REPLACE",
                                )
                            ),
                            "value": AnyValue(),
                            "filterClass": Str(enum=("UNSPECIFIED", "AUTHN", "AUTHZ", "STATS")),
                        }
                    ),
                }
            )
        ),
    }
)
_POLICIES = Arr(
    Obj(
        {"type": Str(), "value": Int(), "periodSeconds": Int()},
        req("type", "value", "periodSeconds"),
    )
)
_SCALING_RULES = Obj(
    {
        "policies": _POLICIES,
        "selectPolicy": Str(),
        "stabilizationWindowSeconds": Int(),
        "tolerance": AnyValue(),
    }
)
SCALED_OBJECT_SPEC = Obj(
    {
        "advanced": Obj(
            {
                "horizontalPodAutoscalerConfig": Obj(
                    {
                        "behavior": Obj({"scaleDown": _SCALING_RULES, "scaleUp": _SCALING_RULES}),
                        "name": Str(),
                    }
                ),
                "restoreToOriginalReplicaCount": Bool(),
                "scalingModifiers": AnyValue(),
            }
        ),
        "cooldownPeriod": Int(),
        "fallback": AnyValue(),
        "idleReplicaCount": Int(),
        "initialCooldownPeriod": Int(),
        "maxReplicaCount": Int(),
        "minReplicaCount": Int(),
        "pollingInterval": Int(),
        "scaleTargetRef": Obj(
            {"apiVersion": Str(), "envSourceContainerName": Str(), "kind": Str(), "name": Str()},
            required=req("name"),
        ),
        "triggers": Arr(
            Obj(
                {
                    "authenticationRef": AnyValue(),
                    "metadata": Map(Str()),
                    "metricType": Str(),
                    "name": Str(),
                    "type": Str(),
                    "useCachedMetrics": Bool(),
                },
                required=req("metadata", "type"),
            )
        ),
    },
    required=req("scaleTargetRef", "triggers"),
)
PROMETHEUS_TRIGGER_KEYS = frozenset(
    {
        "serverAddress",
        "query",
        "queryParameters",
        "threshold",
        "activationThreshold",
        "namespace",
        "customHeaders",
        "ignoreNullValues",
        "unsafeSsl",
        "awsRegion",
        "timeout",
        "identityOwner",
    }
)
CPU_TRIGGER_KEYS = frozenset({"value", "containerName"})

SPECS = {
    ("networking.istio.io/v1", "VirtualService"): VIRTUAL_SERVICE_SPEC,
    ("networking.istio.io/v1", "DestinationRule"): DESTINATION_RULE_SPEC,
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): ENVOY_FILTER_SPEC,
    ("security.istio.io/v1", "RequestAuthentication"): REQUEST_AUTHENTICATION_SPEC,
    ("security.istio.io/v1", "AuthorizationPolicy"): AUTHORIZATION_POLICY_SPEC,
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT_SPEC,
}
"""(apiVersion, kind) -> spec layout."""

KEDA_CHART = ("https://kedacore.github.io/charts", "keda", KEDA_VERSION)
_KEDA_PROMETHEUS = {"enabled", "podMonitor", "port", "serviceMonitor"}
KEDA_VALUES: Layout = {
    **{
        key: None
        for key in (
            "additionalAnnotations", "additionalLabels", "affinity", "asciiArt", "certificates",
            "clusterDomain", "clusterName", "customManagedBy", "enableServiceLinks", "env",
            "extraArgs", "extraObjects", "global", "grpcTLSCertsSecret", "hashiCorpVaultTLS",
            "hostAliases", "http", "image", "imagePullSecrets", "logging", "networkPolicy",
            "nodeSelector", "opentelemetry", "permissions", "podAnnotations", "podIdentity",
            "podLabels", "podSecurityContext", "priorityClassName", "profiling", "rbac",
            "resources", "securityContext", "service", "serviceAccount", "tolerations",
            "topologySpreadConstraints", "upgradeStrategy", "volumes", "watchNamespace",
        )
    },
    "crds": {"additionalAnnotations", "install"},
    "operator": {
        "affinity", "disableCompression", "dnsConfig", "dnsPolicy", "extraContainers",
        "extraInitContainers", "livenessProbe", "name", "nodeSelector", "readinessProbe",
        "replicaCount", "revisionHistoryLimit", "tolerations", "useHostNetwork",
    },
    "metricsServer": {
        "affinity", "disableCompression", "dnsConfig", "dnsPolicy", "enabled", "livenessProbe",
        "nodeSelector", "readinessProbe", "replicaCount", "revisionHistoryLimit", "tolerations",
        "useHostNetwork",
    },
    "webhooks": {
        "affinity", "dnsConfig", "enabled", "failurePolicy", "healthProbePort", "livenessProbe",
        "name", "nodeSelector", "port", "readinessProbe", "replicaCount", "revisionHistoryLimit",
        "timeoutSeconds", "tolerations", "useHostNetwork",
    },
    "podDisruptionBudget": {"metricServer": None, "operator": None, "webhooks": None},
    "prometheus": {
        "operator": {key: None for key in (*_KEDA_PROMETHEUS, "prometheusRules")},
        "metricServer": {key: None for key in (*_KEDA_PROMETHEUS, "portName")},
        "webhooks": None,
    },
}  # fmt: skip
"""The ``keda`` chart's values at 2.20.2 (``keda/values.yaml`` at tag ``v2.20.2`` of
kedacore/charts): every top-level key, the objects the platform sets opened."""
