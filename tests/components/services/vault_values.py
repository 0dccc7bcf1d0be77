"""The values keys the ``hashicorp/vault`` chart documents, for checking values offline.

Read by hand from ``values.yaml`` and ``Chart.yaml`` at tag ``v0.34.1`` of
hashicorp/vault-helm (chart 0.34.1, appVersion 2.0.4). Every key of the sections the
platform sets (``global``, ``injector``, ``server``, ``ui``, ``csi``) is listed; what the
chart passes through to Kubernetes (placement, resources, annotations, volumes, the
NetworkPolicy rules, the raft HCL) is a leaf.
"""

from __future__ import annotations

from tests.components.layout import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT, Layout

VAULT_CHART = ("https://helm.releases.hashicorp.com", "vault", "0.34.1")

_IMAGE = frozenset({"repository", "tag", "pullPolicy"})
_SECURITY = {"pod": POD_SECURITY_CONTEXT, "container": CONTAINER_SECURITY_CONTEXT}
_PROBE = frozenset(
    {
        "failureThreshold",
        "initialDelaySeconds",
        "periodSeconds",
        "successThreshold",
        "timeoutSeconds",
    }
)
_VOLUME = frozenset(
    {"enabled", "size", "mountPath", "storageClass", "accessMode", "annotations", "labels"}
)

VAULT_VALUES: Layout = {
    "global": {
        "enabled": None,
        "namespace": None,
        "imagePullSecrets": None,
        "tlsDisable": None,
        "externalVaultAddr": None,
        "openshift": None,
        "psp": {"enable": None, "annotations": None},
        "serverTelemetry": {"prometheusOperator": None},
    },
    "injector": {
        "enabled": None,
        "replicas": None,
        "port": None,
        "leaderElector": {"enabled": None},
        "metrics": {"enabled": None},
        "externalVaultAddr": None,
        "image": _IMAGE,
        "agentImage": {"repository": None, "tag": None},
        "agentDefaults": {
            "cpuLimit": None,
            "cpuRequest": None,
            "memLimit": None,
            "memRequest": None,
            "template": None,
            "templateConfig": {"exitOnRetryFailure": None, "staticSecretRenderInterval": None},
        },
        "livenessProbe": _PROBE,
        "readinessProbe": _PROBE,
        "startupProbe": _PROBE,
        "authPath": None,
        "logLevel": None,
        "logFormat": None,
        "revokeOnShutdown": None,
        "webhook": {
            "failurePolicy": None,
            "matchPolicy": None,
            "timeoutSeconds": None,
            "namespaceSelector": None,
            "objectSelector": None,
            "annotations": None,
        },
        "failurePolicy": None,
        "namespaceSelector": None,
        "objectSelector": None,
        "webhookAnnotations": None,
        "certs": {"secretName": None, "caBundle": None, "certName": None, "keyName": None},
        "securityContext": _SECURITY,
        "resources": None,
        "extraEnvironmentVars": None,
        "affinity": None,
        "topologySpreadConstraints": None,
        "tolerations": None,
        "nodeSelector": None,
        "priorityClassName": None,
        "annotations": None,
        "extraLabels": None,
        "hostNetwork": None,
        "service": {"annotations": None},
        "serviceAccount": {"annotations": None},
        "podDisruptionBudget": None,
        "strategy": None,
    },
    "server": {
        "enabled": None,
        "enterpriseLicense": {"secretName": None, "secretKey": None},
        "serviceCA": {"enabled": None, "secretName": None, "configMapName": None},
        "image": _IMAGE,
        "updateStrategyType": None,
        "logLevel": None,
        "logFormat": None,
        "resources": None,
        "ingress": None,
        "httproute": None,
        "hostAliases": None,
        "route": None,
        "authDelegator": {"enabled": None},
        "extraInitContainers": None,
        "extraContainers": None,
        "shareProcessNamespace": None,
        "extraArgs": None,
        "extraPorts": None,
        "readinessProbe": None,
        "livenessProbe": None,
        "terminationGracePeriodSeconds": None,
        "preStopSleepSeconds": None,
        "preStop": None,
        "postStart": None,
        "extraEnvironmentVars": None,
        "extraSecretEnvironmentVars": None,
        "extraVolumes": None,
        "volumes": None,
        "volumeMounts": None,
        "affinity": None,
        "topologySpreadConstraints": None,
        "tolerations": None,
        "nodeSelector": None,
        "networkPolicy": {"enabled": None, "egress": None, "ingress": None},
        "priorityClassName": None,
        "extraLabels": None,
        "annotations": None,
        "includeConfigAnnotation": None,
        "service": None,
        "dataStorage": _VOLUME,
        "persistentVolumeClaimRetentionPolicy": None,
        "auditStorage": _VOLUME,
        "dev": {"enabled": None, "devRootToken": None},
        "standalone": {"enabled": None, "config": None},
        "ha": {
            "enabled": None,
            "replicas": None,
            "apiAddr": None,
            "clusterAddr": None,
            "raft": {
                "enabled": None,
                "setNodeId": None,
                "redundancyZones": {"enabled": None},
                "config": None,
            },
            "config": None,
            "disruptionBudget": {"enabled": None, "maxUnavailable": None},
        },
        "serviceAccount": {
            "create": None,
            "name": None,
            "createSecret": None,
            "annotations": None,
            "extraLabels": None,
            "serviceDiscovery": {"enabled": None},
        },
        "statefulSet": {"annotations": None, "securityContext": _SECURITY},
        "hostNetwork": None,
    },
    "ui": {
        "enabled": None,
        "publishNotReadyAddresses": None,
        "activeVaultPodOnly": None,
        "serviceType": None,
        "serviceNodePort": None,
        "externalPort": None,
        "targetPort": None,
        "serviceIPFamilyPolicy": None,
        "serviceIPFamilies": None,
        "externalTrafficPolicy": None,
        "annotations": None,
    },
    "csi": None,
    "serverTelemetry": None,
}
