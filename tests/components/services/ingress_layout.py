"""Field layouts of cert-manager's and the AWS Load Balancer Controller's Helm values and
of cert-manager's custom resources, for offline checks.

Read by hand from:

* cert-manager/cert-manager at tag ``v1.21.1``: ``deploy/charts/cert-manager/values.yaml``
  and ``values.schema.json`` (``additionalProperties: false`` at the top level and in the
  objects opened below, so Helm itself rejects unknown keys there), and
  ``deploy/crds/cert-manager.io_certificates.yaml`` / ``cert-manager.io_clusterissuers.yaml``
  (``cert-manager.io/v1``; the chart renders the same CRDs with ``crds.enabled``). The
  published chart is ``cert-manager`` ``v1.21.1`` on ``https://charts.jetstack.io``.
* kubernetes-sigs/aws-load-balancer-controller at tag ``v3.5.0``:
  ``helm/aws-load-balancer-controller/values.yaml`` and ``Chart.yaml`` (chart 3.5.0, app
  v3.5.0), published from aws/eks-charts (``stable/aws-load-balancer-controller``) on
  ``https://aws.github.io/eks-charts``.

Only the CRD branches the platform uses are spelled out; the rest are ``AnyValue``.
When a pin moves, re-read those files at the new tag and update this module by hand.
"""

from __future__ import annotations

from tests.components.layout import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    AnyValue,
    Arr,
    Bool,
    Int,
    Layout,
    Obj,
    Str,
    req,
)

CERT_MANAGER_CHART = ("https://charts.jetstack.io", "cert-manager", "v1.21.1")
LOAD_BALANCER_CONTROLLER_CHART = (
    "https://aws.github.io/eks-charts",
    "aws-load-balancer-controller",
    "3.5.0",
)

_PDB = frozenset({"enabled", "minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy"})
_ACCOUNT = frozenset({"create", "name", "annotations", "labels", "automountServiceAccountToken"})
_PLACED = ("nodeSelector", "affinity", "tolerations", "topologySpreadConstraints")
_COMPONENT = [
    "replicaCount",
    "config",
    "strategy",
    "extraArgs",
    "extraEnv",
    "featureGates",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "runtimeClassName",
    "podLabels",
    "serviceLabels",
    "image",
    "volumes",
    "volumeMounts",
    "enableServiceLinks",
    "deploymentAnnotations",
    "podAnnotations",
    "serviceAnnotations",
    "networkPolicy",
]

CERT_MANAGER_VALUES: Layout = {
    **dict.fromkeys(
        [
            "affinity",
            "approveSignerNames",
            "automountServiceAccountToken",
            "clusterResourceNamespace",
            "config",
            "creator",
            "deploymentAnnotations",
            "disableAutoApproval",
            "dns01RecursiveNameservers",
            "dns01RecursiveNameserversOnly",
            "enableCertificateOwnerRef",
            "enableServiceLinks",
            "enabled",
            "extraArgs",
            "extraContainers",
            "extraEnv",
            "extraObjects",
            "featureGates",
            "fullnameOverride",
            "global",
            "hostAliases",
            "http_proxy",
            "https_proxy",
            "image",
            "imageNamespace",
            "imageRegistry",
            "ingressShim",
            "installCRDs",
            "livenessProbe",
            "maxConcurrentChallenges",
            "nameOverride",
            "namespace",
            "networkPolicy",
            "no_proxy",
            "nodeSelector",
            "podAnnotations",
            "podDnsConfig",
            "podDnsPolicy",
            "podLabels",
            "prometheus",
            "replicaCount",
            "resources",
            "runtimeClassName",
            "serviceAnnotations",
            "serviceIPFamilies",
            "serviceIPFamilyPolicy",
            "serviceLabels",
            "strategy",
            "tolerations",
            "topologySpreadConstraints",
            "volumeMounts",
            "volumes",
        ]
    ),
    "crds": {"enabled", "keep"},
    "podDisruptionBudget": _PDB,
    "serviceAccount": _ACCOUNT,
    "securityContext": POD_SECURITY_CONTEXT,
    "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
    "webhook": {
        **dict.fromkeys(
            (
                *_COMPONENT,
                *_PLACED,
                *[
                    "timeoutSeconds",
                    "validatingWebhookConfiguration",
                    "mutatingWebhookConfiguration",
                    "securePort",
                    "hostNetwork",
                    "serviceType",
                    "url",
                    "serviceIPFamilyPolicy",
                    "serviceIPFamilies",
                    "enableClientVerification",
                    "clientCAFile",
                    "apiserverClientCertSubjects",
                    "securityContext",
                    "containerSecurityContext",
                ],
            )
        ),
        "podDisruptionBudget": _PDB,
        "serviceAccount": _ACCOUNT,
    },
    "cainjector": {
        **dict.fromkeys(
            (*_COMPONENT, *_PLACED, "enabled", "securityContext", "containerSecurityContext")
        ),
        "podDisruptionBudget": _PDB,
        "serviceAccount": _ACCOUNT,
    },
    "startupapicheck": {
        **dict.fromkeys(
            [
                "enabled",
                "securityContext",
                "containerSecurityContext",
                "timeout",
                "backoffLimit",
                "jobAnnotations",
                "podAnnotations",
                "extraArgs",
                "extraEnv",
                "resources",
                "runtimeClassName",
                "podLabels",
                "image",
                "rbac",
                "volumes",
                "volumeMounts",
                "enableServiceLinks",
                "ttlSecondsAfterFinished",
                "nodeSelector",
                "affinity",
                "tolerations",
            ]
        ),
        "serviceAccount": _ACCOUNT,
    },
    "acmesolver": {"image", "runtimeClassName"},
}

LOAD_BALANCER_CONTROLLER_VALUES: Layout = {
    **dict.fromkeys(
        [
            "replicaCount",
            "revisionHistoryLimit",
            "image",
            "runtimeClassName",
            "imagePullSecrets",
            "nameOverride",
            "fullnameOverride",
            "autoscaling",
            "rbac",
            "terminationGracePeriodSeconds",
            "resources",
            "priorityClassName",
            "nodeSelector",
            "tolerations",
            "affinity",
            "configureDefaultAffinity",
            "topologySpreadConstraints",
            "updateStrategy",
            "serviceAnnotations",
            "deploymentAnnotations",
            "podAnnotations",
            "podLabels",
            "additionalLabels",
            "enableCertManager",
            "certManager",
            "clusterName",
            "cluster",
            "ingressClass",
            "ingressClassParams",
            "createIngressClassResource",
            "region",
            "vpcId",
            "vpcTags",
            "awsApiEndpoints",
            "awsApiThrottle",
            "awsMaxRetries",
            "defaultTargetType",
            "defaultLoadBalancerScheme",
            "enablePodReadinessGateInject",
            "enableShield",
            "enableWaf",
            "enableWafv2",
            "ingressMaxConcurrentReconciles",
            "logLevel",
            "metricsBindAddr",
            "webhookConfig",
            "webhookBindPort",
            "webhookTLS",
            "keepTLSSecret",
            "webhookNamespaceSelectors",
            "serviceMaxConcurrentReconciles",
            "targetgroupbindingMaxConcurrentReconciles",
            "targetgroupbindingMaxExponentialBackoffDelay",
            "targetgroupbindingRequeueDuration",
            "albGatewayMaxConcurrentReconciles",
            "nlbGatewayMaxConcurrentReconciles",
            "globalAcceleratorMaxConcurrentReconciles",
            "globalAcceleratorMaxExponentialBackoffDelay",
            "lbStabilizationMonitorInterval",
            "syncPeriod",
            "watchNamespace",
            "disableIngressClassAnnotation",
            "disableIngressGroupNameAnnotation",
            "tolerateNonExistentBackendService",
            "tolerateNonExistentBackendAction",
            "defaultSSLPolicy",
            "livenessProbe",
            "readinessProbe",
            "env",
            "hostNetwork",
            "dnsPolicy",
            "extraVolumeMounts",
            "extraVolumes",
            "defaultTags",
            "externalManagedTags",
            "enableEndpointSlices",
            "enableBackendSecurityGroup",
            "enableManageBackendSecurityGroupRules",
            "backendSecurityGroup",
            "disableRestrictedSecurityGroupRules",
            "maxTargetsPerTargetGroup",
            "controllerConfig",
            "certManagement",
            "certDiscovery",
            "objectSelector",
            "serviceMonitor",
            "clusterSecretsPermissions",
            "ingressClassConfig",
            "enableServiceMutatorWebhook",
            "serviceMutatorWebhookConfig",
            "podMutatorWebhookConfig",
            "serviceTargetENISGTags",
            "loadBalancerClass",
        ]
    ),
    "serviceAccount": {
        "create",
        "annotations",
        "name",
        "automountServiceAccountToken",
        "imagePullSecrets",
    },
    "podDisruptionBudget": {"maxUnavailable", "minAvailable"},
    "podSecurityContext": POD_SECURITY_CONTEXT,
    "securityContext": CONTAINER_SECURITY_CONTEXT,
}

# --- CRDs (cert-manager.io/v1) ------------------------------------------------------------

_ISSUER_REF = Obj({"group": Str(), "kind": Str(), "name": Str()}, required=req("name"))
_SECRET_REF = Obj({"key": Str(), "name": Str()}, required=req("name"))
CERTIFICATE_SPEC = Obj(
    {
        "additionalOutputFormats": AnyValue(),
        "commonName": Str(),
        "dnsNames": Arr(Str()),
        "duration": Str(),
        "emailAddresses": Arr(Str()),
        "encodeUsagesInRequest": Bool(),
        "ipAddresses": Arr(Str()),
        "isCA": Bool(),
        "issuerRef": _ISSUER_REF,
        "keystores": AnyValue(),
        "literalSubject": Str(),
        "nameConstraints": AnyValue(),
        "otherNames": AnyValue(),
        "privateKey": Obj(
            {
                "algorithm": Str(enum=("RSA", "ECDSA", "Ed25519")),
                "encoding": Str(enum=("PKCS1", "PKCS8")),
                "rotationPolicy": Str(enum=("Never", "Always")),
                "size": Int(),
            }
        ),
        "renewBefore": Str(),
        "renewBeforePercentage": Int(),
        "renewal": AnyValue(),
        "revisionHistoryLimit": Int(),
        "secretName": Str(),
        "secretTemplate": AnyValue(),
        "signatureAlgorithm": Str(),
        "subject": AnyValue(),
        "uris": Arr(Str()),
        "usages": Arr(Str()),
    },
    required=req("issuerRef", "secretName"),
)
_ROUTE53 = Obj(
    {
        "accessKeyID": Str(),
        "accessKeyIDSecretRef": _SECRET_REF,
        "auth": AnyValue(),
        "hostedZoneID": Str(),
        "region": Str(),
        "role": Str(),
        "secretAccessKeySecretRef": _SECRET_REF,
    }
)
_DNS01 = Obj(
    {
        "route53": _ROUTE53,
        "cnameStrategy": Str(enum=("None", "Follow")),
        **dict.fromkeys(
            (
                "acmeDNS",
                "akamai",
                "azureDNS",
                "cloudDNS",
                "cloudflare",
                "digitalocean",
                "rfc2136",
                "webhook",
            ),
            AnyValue(),
        ),
    }
)
_SOLVER = Obj(
    {
        "dns01": _DNS01,
        "http01": AnyValue(),
        "selector": Obj(
            {"dnsNames": Arr(Str()), "dnsZones": Arr(Str()), "matchLabels": AnyValue()}
        ),
        "waitInsteadOfSelfCheck": Str(),
    }
)
_ACME = Obj(
    {
        "caBundle": Str(),
        "disableAccountKeyGeneration": Bool(),
        "email": Str(),
        "enableDurationFeature": Bool(),
        "externalAccountBinding": AnyValue(),
        "preferredChain": Str(),
        "privateKeySecretRef": _SECRET_REF,
        "profile": Str(),
        "server": Str(),
        "skipTLSVerify": Bool(),
        "solvers": Arr(_SOLVER),
    },
    required=req("privateKeySecretRef", "server"),
)
_CA = Obj(
    {
        "crlDistributionPoints": Arr(Str()),
        "issuingCertificateURLs": Arr(Str()),
        "ocspServers": Arr(Str()),
        "secretName": Str(),
    },
    required=req("secretName"),
)
CLUSTER_ISSUER_SPEC = Obj(
    {
        "acme": _ACME,
        "ca": _CA,
        "selfSigned": Obj({"crlDistributionPoints": Arr(Str())}),
        "vault": AnyValue(),
        "venafi": AnyValue(),
    }
)
CRD_SPECS = {
    "Certificate": ("cert-manager.io/v1", CERTIFICATE_SPEC),
    "ClusterIssuer": ("cert-manager.io/v1", CLUSTER_ISSUER_SPEC),
}
"""Kind -> (apiVersion, spec layout)."""
