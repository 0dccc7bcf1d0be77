"""The values keys the two NVIDIA Helm charts document, for checking values offline.

There is no cluster or chart repository in the tests, so values the platform hands to Helm
are checked against the keys each chart documents at the version it pins:

* ``nvidia-device-plugin`` 0.20.0: ``deployments/helm/nvidia-device-plugin/values.yaml`` and
  ``Chart.yaml`` at tag ``v0.20.0`` of NVIDIA/k8s-device-plugin. Its ``nfd`` sub-object is
  the node-feature-discovery 0.19.0 subchart (``values.yaml`` inside
  ``charts/node-feature-discovery-0.19.0.tgz`` at the same tag); its ``nfd.enabled`` key is
  the dependency condition in ``Chart.yaml``.
* ``dcgm-exporter`` 4.8.2: ``deployment/values.yaml`` and ``deployment/Chart.yaml`` at tag
  ``4.5.3-4.8.2`` of NVIDIA/dcgm-exporter.

Keys a values file only documents in a comment but the templates read
(``devicePlugin.enableHostNetwork``, ``gfd.enableHostNetwork``, ``mps.enableHostNetwork``,
dcgm-exporter's ``customMetrics``) count as documented. Keys the templates read that no
values file mentions (``nvidiaDevRoot`` in the device plugin, ``initContainers`` in
dcgm-exporter) do not.

A layout maps each documented key to what lies under it:

* ``None``: a leaf, or a free-form object (Kubernetes placement, resources, annotations,
  labels, env lists...) whose contents the chart passes through and this check does not open;
* a set of names: an object whose own keys are exactly those, each treated as a leaf;
* a nested layout: an object checked key by key in turn.
"""

from __future__ import annotations

from tests.components.layout import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    Layout,
    values_problems,
)

__all__ = [
    "CONTAINER_SECURITY_CONTEXT",
    "DCGM_EXPORTER_CHART",
    "DCGM_EXPORTER_VALUES",
    "DEVICE_PLUGIN_CHART",
    "DEVICE_PLUGIN_VALUES",
    "POD_SECURITY_CONTEXT",
    "Layout",
    "values_problems",
]

DEVICE_PLUGIN_CHART = (
    "https://nvidia.github.io/k8s-device-plugin",
    "nvidia-device-plugin",
    "0.20.0",
)
DCGM_EXPORTER_CHART = (
    "https://nvidia.github.io/dcgm-exporter/helm-charts",
    "dcgm-exporter",
    "4.8.2",
)

IMAGE: frozenset[str] = frozenset({"repository", "pullPolicy", "tag"})

# node-feature-discovery 0.19.0, the subchart the device plugin deploys as `nfd`. Each of its
# components is listed one level deep; what lies under those keys is left opaque.
_NFD_COMPONENT_COMMON = {
    "affinity",
    "annotations",
    "dnsPolicy",
    "enable",
    "extraArgs",
    "extraEnvs",
    "hostNetwork",
    "hostUsers",
    "initContainers",
    "labels",
    "livenessProbe",
    "networkPolicy",
    "nodeSelector",
    "podSecurityContext",
    "port",
    "rbac",
    "readinessProbe",
    "resources",
    "revisionHistoryLimit",
    "serviceAccount",
    "tolerations",
}
NFD: Layout = {
    # Not an NFD key: the device plugin's Chart.yaml condition `nfd.enabled,gfd.enabled`.
    "enabled": None,
    "image": IMAGE,
    "imagePullSecrets": None,
    "nameOverride": None,
    "fullnameOverride": None,
    "namespaceOverride": None,
    "featureGates": None,
    "checksumValuesOnly": None,
    "priorityClassName": None,
    "postDeleteCleanup": None,
    "global": None,
    "master": frozenset(
        _NFD_COMPONENT_COMMON
        | {
            "config",
            "denyLabelNs",
            "deploymentAnnotations",
            "enableTaints",
            "extraLabelNs",
            "instance",
            "nfdApiParallelism",
            "podDisruptionBudget",
            "replicaCount",
            "resyncPeriod",
            "securityContext",
            "startupProbe",
        }
    ),
    "worker": frozenset(
        _NFD_COMPONENT_COMMON
        | {
            "config",
            "daemonsetAnnotations",
            "mountUsrSrc",
            "ownerRefs",
            "priorityClassName",
            "securityContext",
            "updateStrategy",
        }
    ),
    "topologyUpdater": frozenset(
        _NFD_COMPONENT_COMMON
        | {
            "config",
            "createCRDs",
            "daemonsetAnnotations",
            "kubeletConfigPath",
            "kubeletPodResourcesSockPath",
            "kubeletStateDir",
            "podSetFingerprint",
            "securityContext",
            "updateInterval",
            "watchNamespace",
        }
    ),
    "gc": frozenset(
        _NFD_COMPONENT_COMMON
        | {"deploymentAnnotations", "interval", "podDisruptionBudget", "replicaCount"}
    ),
    "prometheus": frozenset({"enable", "labels", "scrapeInterval"}),
}

DEVICE_PLUGIN_VALUES: Layout = {
    "config": {
        "name": None,
        "map": None,  # named plugin config files, free-form
        "default": None,
        "fallbackStrategies": None,
    },
    # Plugin flags: null in values.yaml, passed as env only when set to a string/bool.
    "compatWithCPUManager": None,
    "migStrategy": None,
    "failOnInitError": None,
    "deviceListStrategy": None,
    "deviceIDStrategy": None,
    "nvidiaDriverRoot": None,
    "gdrcopyEnabled": None,
    "gdsEnabled": None,
    "mofedEnabled": None,
    "deviceDiscoveryStrategy": None,
    "nameOverride": None,
    "fullnameOverride": None,
    "namespaceOverride": None,
    "selectorLabelsOverride": None,
    "allowDefaultNamespace": None,
    "imagePullSecrets": None,
    "image": IMAGE,
    "updateStrategy": None,
    "podAnnotations": None,
    "podSecurityContext": POD_SECURITY_CONTEXT,
    "securityContext": CONTAINER_SECURITY_CONTEXT,
    "resources": None,
    "nodeSelector": None,
    "affinity": None,
    "tolerations": None,
    "priorityClassName": None,
    "runtimeClassName": None,
    "devicePlugin": frozenset({"enabled", "enableHostNetwork"}),
    "gfd": {
        "enabled": None,
        "nameOverride": None,
        "namespaceOverride": None,
        # Documented here, but the v0.20.0 GFD template reads top-level
        # `.Values.noTimestamp` / `.Values.sleepInterval`, so these two have no effect.
        "noTimestamp": None,
        "sleepInterval": None,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "enableHostNetwork": None,
    },
    "nfd": NFD,
    "mps": frozenset({"root", "enableHostPID", "enableHostNetwork"}),
    "cdi": frozenset({"nvidiaHookPath", "featureFlags"}),
}

DCGM_EXPORTER_VALUES: Layout = {
    "image": IMAGE,
    "arguments": None,
    "imagePullSecrets": None,
    "nameOverride": None,
    "fullnameOverride": None,
    "namespaceOverride": None,
    "hostPID": None,
    "runtimeClassName": None,
    "priorityClassName": None,
    "hostNetwork": None,
    "serviceAccount": frozenset({"create", "annotations", "name"}),
    "rollingUpdate": frozenset({"maxUnavailable", "maxSurge"}),
    "podLabels": None,
    "podAnnotations": None,
    "podSecurityContext": POD_SECURITY_CONTEXT,
    "securityContext": CONTAINER_SECURITY_CONTEXT,
    "service": frozenset(
        {"enable", "type", "internalTrafficPolicy", "clusterIP", "port", "address", "annotations"}
    ),
    "resources": None,
    "serviceMonitor": frozenset(
        {
            "apiVersion",
            "enabled",
            "interval",
            "scrapeTimeout",
            "honorLabels",
            "additionalLabels",
            "relabelings",
            "metricRelabelings",
        }
    ),
    "nodeSelector": None,
    "tolerations": None,
    "affinity": None,
    "extraHostVolumes": None,
    "extraConfigMapVolumes": None,
    "extraVolumeMounts": None,
    "extraEnv": None,
    "kubeletPath": None,
    "tlsServerConfig": frozenset(
        {
            "enabled",
            "autoGenerated",
            "existingSecret",
            "certFilename",
            "keyFilename",
            "caFilename",
            "clientAuthType",
            "key",
            "cert",
            "ca",
        }
    ),
    "basicAuth": frozenset({"users"}),
    "kubernetes": {
        "enablePodLabels": None,
        "enablePodUID": None,
        "podLabelAllowlistRegex": None,
        "rbac": frozenset({"create"}),
    },
    "debugDump": frozenset({"enabled", "directory", "retention", "compression"}),
    "kubernetesDRA": frozenset({"enabled"}),
    "customMetrics": None,  # commented out in values.yaml; the metrics ConfigMap reads it
    # The DaemonSet template reads only these probe fields.
    "livenessProbe": frozenset({"initialDelaySeconds", "periodSeconds"}),
    "readinessProbe": frozenset({"initialDelaySeconds"}),
}
