"""Field layouts of Istio's Helm values and custom resources at 1.30.3, for offline checks.

Read by hand from istio/istio at tag ``1.30.3``:

* ``manifests/charts/base/values.yaml``, ``manifests/charts/istio-cni/values.yaml``,
  ``manifests/charts/istio-control/istio-discovery/values.yaml`` and
  ``manifests/charts/gateway/values.yaml`` (+ its ``values.schema.json``). Each file keeps
  its defaults under ``_internal_defaults_do_not_set`` (``templates/zzz_profile.yaml``
  folds them in); users set the keys beneath it directly, which is what these layouts
  list. ``profile``, ``platform``, ``compatibilityVersion`` and ``revision`` are read by
  ``zzz_profile.yaml`` in every chart. The published charts are versioned ``1.30.3``
  (``Chart.yaml`` in git says ``1.0.0``; the release tooling stamps the version).

and from istio/api at tag ``v1.30.3``: ``kubernetes/customresourcedefinitions.gen.yaml``
(the CRDs the ``base`` chart renders) for ``PeerAuthentication``, ``AuthorizationPolicy``
(``security.istio.io/v1``) and ``Gateway`` (``networking.istio.io/v1``); and
``mesh/v1alpha1/config.proto`` / ``proxy.proto`` for the ``meshConfig`` fields.

When the pin moves, re-read those files at the new tag and update this module by hand.
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

ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
ISTIO_VERSION = "1.30.3"
CHARTS = ("base", "cni", "istiod", "gateway")
"""The published chart names (the CNI chart is ``cni``, not ``istio-cni``)."""

_PROFILE = {"profile": None, "platform": None, "compatibilityVersion": None, "revision": None}

BASE_VALUES: Layout = {
    **_PROFILE,
    "global": {"imagePullSecrets", "istioNamespace", "resourceScope", "enableReaderRBAC"},
    "base": {
        "excludedCRDs",
        "enableCRDTemplates",
        "validationURL",
        "validationCABundle",
        "enableIstioConfigCRDs",
    },
    "defaultRevision": None,
    "experimental": {"stableValidationPolicy"},
}

CNI_VALUES: Layout = {
    **_PROFILE,
    **dict.fromkeys(
        [
            "hub",
            "tag",
            "variant",
            "image",
            "pullPolicy",
            "logging",
            "cniBinDir",
            "cniConfDir",
            "cniConfFileName",
            "cniNetnsDir",
            "istioOwnedCNIConfigFileName",
            "istioOwnedCNIConfig",
            "excludeNamespaces",
            "affinity",
            "daemonSetLabels",
            "podAnnotations",
            "podLabels",
            "chained",
            "provider",
            "ambient",
            "repair",
            "seccompProfile",
            "seLinuxOptions",
            "useAppArmorAnnotation",
            "resources",
            "resourceQuotas",
            "tolerations",
            "updateStrategy",
            "terminationGracePeriodSeconds",
            "ownerName",
            "global",
            "env",
        ]
    ),
}

_PROXY = frozenset(
    [
        "image",
        "autoInject",
        "clusterDomain",
        "componentLogLevel",
        "excludeInboundPorts",
        "includeInboundPorts",
        "includeIPRanges",
        "excludeIPRanges",
        "includeOutboundPorts",
        "excludeOutboundPorts",
        "logLevel",
        "outlierLogPath",
        "privileged",
        "seccompProfile",
        "readinessFailureThreshold",
        "readinessInitialDelaySeconds",
        "readinessPeriodSeconds",
        "startupProbe",
        "resources",
        "statusPort",
        "tracer",
    ]
)
ISTIOD_GLOBAL: Layout = {
    **dict.fromkeys(
        [
            "istioNamespace",
            "certSigners",
            "defaultPodDisruptionBudget",
            "defaultResources",
            "hub",
            "tag",
            "variant",
            "imagePullPolicy",
            "imagePullSecrets",
            "istiod",
            "logAsJson",
            "nativeNftables",
            "logging",
            "networkPolicy",
            "omitSidecarInjectorConfigMap",
            "resourceScope",
            "operatorManageWebhooks",
            "priorityClassName",
            "proxy_init",
            "remotePilotAddress",
            "caAddress",
            "externalIstiod",
            "configCluster",
            "configValidation",
            "meshID",
            "meshNetworks",
            "mountMtlsCerts",
            "multiCluster",
            "network",
            "pilotCertProvider",
            "sds",
            "sts",
            "caName",
            "waypoint",
        ]
    ),
    "proxy": _PROXY,
}
ISTIOD_VALUES: Layout = {
    **_PROFILE,
    **dict.fromkeys(
        [
            "autoscaleEnabled",
            "autoscaleMin",
            "autoscaleMax",
            "autoscaleBehavior",
            "replicaCount",
            "rollingMaxSurge",
            "rollingMaxUnavailable",
            "hub",
            "tag",
            "variant",
            "image",
            "traceSampling",
            "resources",
            "seccompProfile",
            "extraContainerArgs",
            "env",
            "envVarFrom",
            "taint",
            "affinity",
            "tolerations",
            "cpu",
            "memory",
            "volumeMounts",
            "volumes",
            "initContainers",
            "nodeSelector",
            "podAnnotations",
            "serviceAnnotations",
            "serviceAccountAnnotations",
            "sidecarInjectorWebhookAnnotations",
            "topologySpreadConstraints",
            "jwksResolverExtraRootCA",
            "keepaliveMaxServerConnectionAge",
            "deploymentLabels",
            "deploymentAnnotations",
            "configMap",
            "podLabels",
            "ipFamilyPolicy",
            "ipFamilies",
            "trustedZtunnelNamespace",
            "trustedZtunnelName",
            "sidecarInjectorWebhook",
            "istiodRemote",
            "telemetry",
            "revisionTags",
            "ownerName",
            "experimental",
            "base",
            "gateways",
            "gatewayClasses",
            "pdb",
        ]
    ),
    "cni": {"enabled", "provider"},
    "global": ISTIOD_GLOBAL,
    # Any MeshConfig field: checked against MESH_CONFIG instead.
    "meshConfig": None,
}

GATEWAY_VALUES: Layout = {
    **_PROFILE,
    **dict.fromkeys(
        [
            "global",
            "enabled",
            "affinity",
            "containerSecurityContext",
            "kind",
            "annotations",
            "env",
            "envVarFrom",
            "strategy",
            "minReadySeconds",
            "readinessProbe",
            "labels",
            "name",
            "nodeSelector",
            "podAnnotations",
            "replicaCount",
            "resources",
            "defaultRevision",
            "pilot",
            "runAsRoot",
            "unprivilegedPort",
            "rbac",
            "tolerations",
            "topologySpreadConstraints",
            "networkGateway",
            "networkGatewayPorts",
            "imagePullPolicy",
            "imagePullSecrets",
            "podDisruptionBudget",
            "terminationGracePeriodSeconds",
            "volumes",
            "volumeMounts",
            "initContainers",
            "additionalContainers",
            "priorityClassName",
            "lifecycle",
        ]
    ),
    "securityContext": {
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "seccompProfile",
        "sysctls",
        "supplementalGroups",
    },
    "autoscaling": {
        "enabled",
        "minReplicas",
        "maxReplicas",
        "targetCPUUtilizationPercentage",
        "targetMemoryUtilizationPercentage",
        "autoscaleBehavior",
    },
    "serviceAccount": {"create", "annotations", "name"},
    "service": {
        "type",
        "clusterIP",
        "selectorLabels",
        "ports",
        "annotations",
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "externalTrafficPolicy",
        "externalIPs",
        "ipFamilyPolicy",
        "ipFamilies",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "internalTrafficPolicy",
    },
}
"""The gateway chart's ``values.schema.json`` rejects any other top-level key."""

# --- meshConfig (mesh/v1alpha1/config.proto, proxy.proto) ---------------------------------

_TRACING = Obj(
    {
        "zipkin": Obj({"address": Str()}),
        "datadog": Obj({"address": Str()}),
        "sampling": Num(),
        "maxPathTagLength": Int(minimum=0),
        "customTags": Map(AnyValue()),
        "enableIstioTags": Bool(),
    }
)
_OPENTELEMETRY = Obj(
    {
        "service": Str(),
        "port": Int(minimum=1, maximum=65535),
        "maxTagLength": Int(minimum=0),
        "http": Obj({"path": Str(), "timeout": Str(), "headers": Arr(AnyValue())}),
        "grpc": Obj({"timeout": Str(), "initialMetadata": Arr(AnyValue())}),
        "resourceDetectors": AnyValue(),
        "dynatraceSampler": AnyValue(),
    },
    required=req("service", "port"),
)
_PROVIDER_KINDS = [
    "envoyExtAuthzHttp",
    "envoyExtAuthzGrpc",
    "zipkin",
    "datadog",
    "skywalking",
    "prometheus",
    "envoyFileAccessLog",
    "envoyHttpAls",
    "envoyTcpAls",
    "envoyOtelAls",
    "sds",
]
EXTENSION_PROVIDER = Obj(
    {"name": Str(pattern=r"."), "opentelemetry": _OPENTELEMETRY}
    | {kind: AnyValue() for kind in _PROVIDER_KINDS},
    required=req("name"),
)
MESH_CONFIG = Obj(
    {
        "accessLogFile": Str(),
        "accessLogFormat": Str(),
        "accessLogEncoding": Str(enum=("TEXT", "JSON")),
        "enableTracing": Bool(),
        "enableEnvoyAccessLogService": Bool(),
        "enablePrometheusMerge": Bool(),
        "enableAutoMtls": Bool(),
        "rootNamespace": Str(),
        "trustDomain": Str(),
        "outboundTrafficPolicy": Obj({"mode": Str(enum=("REGISTRY_ONLY", "ALLOW_ANY"))}),
        "defaultConfig": Obj(
            {
                "tracing": _TRACING,
                "holdApplicationUntilProxyStarts": Bool(),
                "proxyMetadata": Map(Str()),
                "terminationDrainDuration": Str(),
                "discoveryAddress": Str(),
            }
        ),
        "extensionProviders": Arr(EXTENSION_PROVIDER),
        "defaultProviders": Obj(
            {"tracing": Arr(Str()), "metrics": Arr(Str()), "accessLogging": Arr(Str())}
        ),
    }
)
"""The MeshConfig fields the platform sets or may set (the message has more)."""

# --- CRDs -------------------------------------------------------------------------------

_LABELS = Map(Str(pattern=r"^[^*]*$"))
_SELECTOR = Obj({"matchLabels": _LABELS})
_MTLS_MODE = Str(enum=("UNSET", "DISABLE", "PERMISSIVE", "STRICT"))
PEER_AUTHENTICATION_SPEC = Obj(
    {
        "selector": _SELECTOR,
        "mtls": Obj({"mode": _MTLS_MODE}),
        "portLevelMtls": Map(Obj({"mode": _MTLS_MODE})),
    }
)
_TARGET_REF = Obj(
    {"group": Str(), "kind": Str(), "name": Str(), "namespace": Str()},
    required=req("kind", "name"),
)
_STRINGS = Arr(Str())
_SOURCE = Obj(
    {
        key: _STRINGS
        for base in (
            "principals",
            "requestPrincipals",
            "namespaces",
            "ipBlocks",
            "remoteIpBlocks",
            "serviceAccounts",
            "trustDomains",
        )
        for key in (base, "not" + base[0].upper() + base[1:])
    }
)
_OPERATION = Obj(
    {
        key: _STRINGS
        for base in ("hosts", "ports", "methods", "paths")
        for key in (base, "not" + base[0].upper() + base[1:])
    }
)
_CONDITION = Obj({"key": Str(), "values": _STRINGS, "notValues": _STRINGS}, required=req("key"))
AUTHORIZATION_POLICY_SPEC = Obj(
    {
        "selector": _SELECTOR,
        "targetRef": _TARGET_REF,
        "targetRefs": Arr(_TARGET_REF),
        "action": Str(enum=("ALLOW", "DENY", "AUDIT", "CUSTOM")),
        "provider": Obj({"name": Str()}),
        "rules": Arr(
            Obj(
                {
                    "from": Arr(Obj({"source": _SOURCE})),
                    "to": Arr(Obj({"operation": _OPERATION})),
                    "when": Arr(_CONDITION),
                }
            )
        ),
    }
)
_TLS_VERSION = Str(enum=("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"))
_SERVER_TLS = Obj(
    {
        "httpsRedirect": Bool(),
        "mode": Str(
            enum=(
                "PASSTHROUGH",
                "SIMPLE",
                "MUTUAL",
                "AUTO_PASSTHROUGH",
                "ISTIO_MUTUAL",
                "OPTIONAL_MUTUAL",
            )
        ),
        "credentialName": Str(),
        "credentialNames": _STRINGS,
        "tlsCertificates": Arr(AnyValue()),
        "serverCertificate": Str(),
        "privateKey": Str(),
        "caCertificates": Str(),
        "caCrl": Str(),
        "caCertCredentialName": Str(),
        "subjectAltNames": _STRINGS,
        "verifyCertificateSpki": _STRINGS,
        "verifyCertificateHash": _STRINGS,
        "minProtocolVersion": _TLS_VERSION,
        "maxProtocolVersion": _TLS_VERSION,
        "cipherSuites": _STRINGS,
    }
)
GATEWAY_PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS")
"""``port.protocol``: the proto's list (the CRD has no enum)."""
GATEWAY_SPEC = Obj(
    {
        "selector": _LABELS,
        "servers": Arr(
            Obj(
                {
                    "port": Obj(
                        {
                            "number": Int(minimum=0, maximum=4294967295),
                            "name": Str(),
                            "protocol": Str(enum=GATEWAY_PROTOCOLS),
                            "targetPort": Int(minimum=0),
                        },
                        required=req("number", "name", "protocol"),
                    ),
                    "hosts": _STRINGS,
                    "bind": Str(),
                    "defaultEndpoint": Str(),
                    "name": Str(),
                    "tls": _SERVER_TLS,
                },
                required=req("port", "hosts"),
            )
        ),
    }
)
CRD_SPECS = {
    "PeerAuthentication": ("security.istio.io/v1", PEER_AUTHENTICATION_SPEC),
    "AuthorizationPolicy": ("security.istio.io/v1", AUTHORIZATION_POLICY_SPEC),
    "Gateway": ("networking.istio.io/v1", GATEWAY_SPEC),
}
"""Kind -> (the served apiVersion used, its spec layout)."""
