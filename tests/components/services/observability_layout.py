"""Field layouts of the observability stack's Helm values and CRDs, for offline checks.

There is no cluster or chart repository in the tests, so the values the platform hands to Helm
are checked against the keys each chart documents at the version it pins, and its custom
resources against the field layout of their CRDs. Read by hand from:

* ``kube-prometheus-stack`` 88.5.3 (appVersion / Prometheus Operator ``v0.93.1``):
  ``charts/kube-prometheus-stack/values.yaml`` and ``Chart.yaml`` at tag
  ``kube-prometheus-stack-88.5.3`` of prometheus-community/helm-charts.
* Its ``grafana`` subchart 12.11.1 (Grafana 13.2.0): ``charts/grafana/values.yaml`` at tag
  ``grafana-12.11.1`` of grafana-community/helm-charts. kube-prometheus-stack 88.5.3 depends
  on it from ``https://grafana-community.github.io/helm-charts``; grafana/helm-charts stops at
  ``grafana-10.5.15``.
* ``opentelemetry-collector`` 0.170.0 (collector 0.158.0):
  ``charts/opentelemetry-collector/values.yaml`` and ``values.schema.json`` at tag
  ``opentelemetry-collector-0.170.0`` of open-telemetry/opentelemetry-helm-charts.
* ``jaeger`` 4.11.1 (Jaeger 2.19.0): ``charts/jaeger/values.yaml`` and its templates at tag
  ``jaeger-4.11.1`` of jaegertracing/helm-charts.
* ``PrometheusRule`` and ``ServiceMonitor`` (``monitoring.coreos.com/v1``) at operator
  0.93.1: ``charts/kube-prometheus-stack/charts/crds/crds/crd-prometheusrules.yaml`` and
  ``crd-servicemonitors.yaml`` at tag ``kube-prometheus-stack-88.5.3`` (copies of
  prometheus-operator ``v0.93.1`` ``example/prometheus-operator-crd/``).

The values layouts use the notation of ``nvidia_values`` (``None`` is a leaf or an opaque
object, a set lists an object's own keys, a nested layout is checked key by key); the CRD
layouts use the schema notation of ``karpenter_layout``. As there, keys a values file
documents only in a comment but the templates read count as documented (Grafana's
``adminPassword``, ``persistence.storageClassName``/``existingClaim``, Jaeger's
``jaeger.resources``/``jaeger.ingress.hosts``); keys the templates read that the values file
never mentions do not (Grafana's ``service.nodePort``, Jaeger's ``jaeger.service.type``,
``jaeger.strategy``, ``jaeger.podLabels``).

Every top-level key of each chart is listed; only the objects a platform sets are opened.
The opentelemetry-collector chart also ships a ``values.schema.json`` with
``additionalProperties: false`` at the top level, so Helm itself rejects unknown top-level
keys there; this check catches them before Helm does.

When a pin moves, re-read those files at the new tag and update this module by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.components.layout import (
    AnyValue,
    Arr,
    Bool,
    Int,
    IntOrStr,
    Map,
    Obj,
    Schema,
    Str,
)
from tests.components.services.nvidia_values import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    Layout,
)

__all__ = [
    "CRD_API_VERSIONS",
    "CRD_SPECS",
    "GRAFANA_CHART_VERSION",
    "JAEGER_CHART",
    "JAEGER_VALUES",
    "KUBE_PROMETHEUS_STACK_CHART",
    "KUBE_PROMETHEUS_STACK_VALUES",
    "OTEL_COLLECTOR_CHART",
    "OTEL_COLLECTOR_MODES",
    "OTEL_COLLECTOR_REQUIRED",
    "OTEL_COLLECTOR_VALUES",
    "PROMETHEUS_OPERATOR_VERSION",
    "PROMETHEUS_RULE_SPEC",
    "SERVICE_MONITOR_SPEC",
    "otel_required_problems",
]

KUBE_PROMETHEUS_STACK_CHART = (
    "https://prometheus-community.github.io/helm-charts",
    "kube-prometheus-stack",
    "88.5.3",
)
OTEL_COLLECTOR_CHART = (
    "https://open-telemetry.github.io/opentelemetry-helm-charts",
    "opentelemetry-collector",
    "0.170.0",
)
JAEGER_CHART = (
    "https://jaegertracing.github.io/helm-charts",
    "jaeger",
    "4.11.1",
)
"""(repository, chart name, version) of each chart."""

PROMETHEUS_OPERATOR_VERSION = "0.93.1"
"""kube-prometheus-stack 88.5.3's appVersion; its ``crds`` subchart ships these CRDs."""

GRAFANA_CHART_VERSION = "12.11.1"
"""The grafana subchart kube-prometheus-stack 88.5.3 depends on."""

CRD_API_VERSIONS = {
    "PrometheusRule": "monitoring.coreos.com/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
}

# --- shared value shapes ----------------------------------------------------------------

RESOURCES: frozenset[str] = frozenset({"claims", "limits", "requests"})
"""core/v1 ResourceRequirements, copied verbatim into the pod spec."""

_OPERATOR_IMAGE: frozenset[str] = frozenset({"registry", "repository", "tag", "sha", "pullPolicy"})

# The Prometheus and Alertmanager CRDs' StorageSpec, which ``storageSpec`` / ``storage``
# are copied into. The PVC template's own ``spec`` is a core/v1 PersistentVolumeClaimSpec.
STORAGE_SPEC: Layout = {
    "disableMountSubPath": None,
    "emptyDir": None,
    "ephemeral": None,
    "volumeClaimTemplate": {
        "apiVersion": None,
        "kind": None,
        "metadata": None,
        "status": None,
        "spec": frozenset(
            {
                "accessModes",
                "dataSource",
                "dataSourceRef",
                "resources",
                "selector",
                "storageClassName",
                "volumeAttributesClassName",
                "volumeMode",
                "volumeName",
            }
        ),
    },
}

# --- kube-prometheus-stack 88.5.3 -------------------------------------------------------

PROMETHEUS_SPEC: Layout = {
    "additionalAlertManagerConfigs": None,
    "additionalAlertManagerConfigsSecret": None,
    "additionalAlertRelabelConfigs": None,
    "additionalAlertRelabelConfigsSecret": None,
    "additionalArgs": None,
    "additionalConfig": None,
    "additionalConfigString": None,
    "additionalPrometheusSecretsAnnotations": None,
    "additionalRemoteRead": None,
    "additionalRemoteWrite": None,
    "additionalScrapeConfigs": None,
    "additionalScrapeConfigsSecret": None,
    "affinity": None,
    "alertingEndpoints": None,
    "allowOverlappingBlocks": None,
    "apiserverConfig": None,
    "arbitraryFSAccessThroughSMs": None,
    "automountServiceAccountToken": None,
    "bodySizeLimit": None,
    "configMaps": None,
    "containers": None,
    "convertClassicHistogramsToNHCB": None,
    "disableAlerting": None,
    "disableCompaction": None,
    "dnsConfig": None,
    "dnsPolicy": None,
    "enableAdminAPI": None,
    "enableFeatures": None,
    "enableOTLPReceiver": None,
    "enableRemoteWriteReceiver": None,
    "enableServiceLinks": None,
    "enforcedBodySizeLimit": None,
    "enforcedKeepDroppedTargets": None,
    "enforcedLabelLimit": None,
    "enforcedLabelNameLengthLimit": None,
    "enforcedLabelValueLengthLimit": None,
    "enforcedNamespaceLabel": None,
    "enforcedSampleLimit": None,
    "enforcedTargetLimit": None,
    "evaluationInterval": None,
    "excludedFromEnforcement": None,
    "exemplars": None,
    "externalLabels": None,
    "externalUrl": None,
    "hostAliases": None,
    "hostNetwork": None,
    "hostUsers": None,
    "ignoreNamespaceSelectors": None,
    "image": _OPERATOR_IMAGE,
    "initContainers": None,
    "keepDroppedTargets": None,
    "labelLimit": None,
    "labelNameLengthLimit": None,
    "labelValueLengthLimit": None,
    "listenLocal": None,
    "logFormat": None,
    "logLevel": None,
    "maximumStartupDurationSeconds": None,
    "minReadySeconds": None,
    "nameEscapingScheme": None,
    "nameValidationScheme": None,
    "nodeSelector": None,
    "otlp": None,
    "overrideHonorLabels": None,
    "overrideHonorTimestamps": None,
    "paused": None,
    "persistentVolumeClaimRetentionPolicy": None,
    "podAntiAffinity": None,
    "podAntiAffinityTopologyKey": None,
    "podManagementPolicy": None,
    "podMetadata": None,
    "podMonitorNamespaceSelector": None,
    "podMonitorSelector": None,
    "podMonitorSelectorNilUsesHelmValues": None,
    "podTargetLabels": None,
    "portName": None,
    "priorityClassName": None,
    "probeNamespaceSelector": None,
    "probeSelector": None,
    "probeSelectorNilUsesHelmValues": None,
    "prometheusExternalLabelName": None,
    "prometheusExternalLabelNameClear": None,
    "prometheusRulesExcludedFromEnforce": None,
    "query": None,
    "queryLogFile": None,
    "reloadStrategy": None,
    "remoteRead": None,
    "remoteWrite": None,
    "remoteWriteDashboards": None,
    "remoteWriteReceiverMessageVersions": None,
    "replicaExternalLabelName": None,
    "replicaExternalLabelNameClear": None,
    "replicas": None,
    "resources": RESOURCES,
    "retention": None,  # default "10d"
    "retentionSize": None,  # default "" (no size limit); e.g. "45GiB"
    "routePrefix": None,
    "ruleNamespaceSelector": None,
    "ruleQueryOffset": None,
    "ruleSelector": None,
    "ruleSelectorNilUsesHelmValues": None,
    "runtime": None,
    "sampleLimit": None,
    "schedulerName": None,
    "scrapeClasses": None,
    "scrapeClassicHistograms": None,
    "scrapeConfigNamespaceSelector": None,
    "scrapeConfigSelector": None,
    "scrapeConfigSelectorNilUsesHelmValues": None,
    "scrapeFailureLogFile": None,
    "scrapeInterval": None,
    "scrapeNativeHistograms": None,
    "scrapeProtocols": None,
    "scrapeTimeout": None,
    "secrets": None,
    # A core/v1 PodSecurityContext in the Prometheus CRD.
    "securityContext": POD_SECURITY_CONTEXT,
    "serviceDiscoveryRole": None,
    "serviceMonitorNamespaceSelector": None,
    "serviceMonitorSelector": None,
    "serviceMonitorSelectorNilUsesHelmValues": None,
    "serviceName": None,
    "shardRetentionPolicy": None,
    "shardingStrategy": None,
    "shards": None,
    "storageSpec": STORAGE_SPEC,
    "targetLimit": None,
    "terminationGracePeriodSeconds": None,
    "thanos": None,
    "tolerations": None,
    "topologySpreadConstraints": None,
    "tracingConfig": None,
    "tsdb": None,
    "updateStrategy": None,
    "version": None,
    "volumeMounts": None,
    "volumes": None,
    "walCompression": None,
    "web": None,
}

ALERTMANAGER_SPEC: Layout = {
    "additionalArgs": None,
    "additionalConfig": None,
    "additionalConfigString": None,
    "additionalPeers": None,
    "affinity": None,
    "alertmanagerConfigMatcherStrategy": None,
    "alertmanagerConfigNamespaceSelector": None,
    "alertmanagerConfigSelector": None,
    "alertmanagerConfiguration": None,
    "automountServiceAccountToken": None,
    "clusterAdvertiseAddress": None,
    "clusterGossipInterval": None,
    "clusterLabel": None,
    "clusterPeerTimeout": None,
    "clusterPushpullInterval": None,
    "clusterTLS": None,
    "configMaps": None,
    "containers": None,
    "dnsConfig": None,
    "dnsPolicy": None,
    "enableServiceLinks": None,
    "externalUrl": None,
    "forceEnableClusterMode": None,
    "hostAliases": None,
    "hostNetwork": None,
    "hostUsers": None,
    "image": _OPERATOR_IMAGE,
    "initContainers": None,
    "limits": None,
    "listenLocal": None,
    "logFormat": None,
    "logLevel": None,
    "minReadySeconds": None,
    "nodeSelector": None,
    "paused": None,
    "persistentVolumeClaimRetentionPolicy": None,
    "podAntiAffinity": None,
    "podAntiAffinityTopologyKey": None,
    "podManagementPolicy": None,
    "podMetadata": None,
    "portName": None,
    "priorityClassName": None,
    "replicas": None,
    "resources": RESOURCES,
    "retention": None,
    "routePrefix": None,
    "schedulerName": None,
    "scheme": None,
    "secrets": None,
    "securityContext": POD_SECURITY_CONTEXT,
    "serviceName": None,
    "storage": STORAGE_SPEC,
    "terminationGracePeriodSeconds": None,
    "tlsConfig": None,
    "tolerations": None,
    "topologySpreadConstraints": None,
    "updateStrategy": None,
    "useExistingSecret": None,
    "volumeMounts": None,
    "volumes": None,
    "web": None,
}

PROMETHEUS: Layout = {
    "additionalLabels": None,
    "additionalPodMonitors": None,
    "additionalRulesForClusterRole": None,
    "additionalServiceMonitors": None,
    "agentMode": None,
    "annotations": None,
    "enabled": None,
    "extraSecret": None,
    "ingress": None,
    "ingressPerReplica": None,
    "networkPolicy": None,
    "podDisruptionBudget": None,
    "prometheusSpec": PROMETHEUS_SPEC,
    "route": None,
    "routePerReplica": None,
    "service": None,
    "serviceAccount": None,
    "serviceMonitor": None,
    "servicePerReplica": None,
    "thanosIngress": None,
    "thanosService": None,
    "thanosServiceExternal": None,
    "thanosServiceMonitor": None,
    "verticalPodAutoscaler": None,
}

ALERTMANAGER: Layout = {
    "additionalLabels": None,
    "alertmanagerSpec": ALERTMANAGER_SPEC,
    "annotations": None,
    "apiVersion": None,
    # The Alertmanager configuration file itself (global, route, receivers,
    # inhibit_rules, templates): present, but its contents are Alertmanager's, not the chart's.
    "config": None,
    "enableFeatures": None,
    "enabled": None,
    "extraSecret": None,
    "forceDeployDashboards": None,
    "ingress": None,
    "ingressPerReplica": None,
    "namespaceOverride": None,
    "networkPolicy": None,
    "podDisruptionBudget": None,
    "route": None,
    "routePerReplica": None,
    "secret": None,
    "service": None,
    "serviceAccount": None,
    "serviceMonitor": None,
    "servicePerReplica": None,
    "stringConfig": None,
    "templateFiles": None,
    "tplConfig": None,
    "verticalPodAutoscaler": None,
}

# The dashboards sidecar: kube-prometheus-stack's own keys (annotations,
# enableNewTablePanelSyntax, multicluster, provider) and the grafana chart's.
_GRAFANA_SIDECAR_DASHBOARDS: frozenset[str] = frozenset(
    {
        "SCProvider",
        "annotations",
        "defaultFolderName",
        "enableNewTablePanelSyntax",
        "enabled",
        "env",
        "envValueFrom",
        "extraMounts",
        "folder",
        "folderAnnotation",
        "initDashboards",
        "label",  # default "grafana_dashboard" in both charts
        "labelValue",  # "" in the grafana chart, "1" in kube-prometheus-stack
        "multicluster",
        "provider",
        "reloadURL",
        "resource",
        "resourceName",
        "script",
        "searchNamespace",  # "ALL" in kube-prometheus-stack
        "sizeLimit",
        "skipReload",
        "watchMethod",
    }
)
_GRAFANA_SIDECAR_DATASOURCES: frozenset[str] = frozenset(
    {
        # kube-prometheus-stack's keys (they build its Prometheus/Alertmanager datasources).
        "alertmanager",
        "annotations",
        "createPrometheusReplicasDatasources",
        "defaultDatasourceEnabled",
        "exemplarTraceIdDestinations",
        "httpMethod",
        "isDefaultDatasource",
        "name",
        "prometheusServiceName",
        "uid",
        # The grafana chart's.
        "enabled",
        "env",
        "envValueFrom",
        "extraMounts",
        "initDatasources",
        "label",
        "labelValue",
        "reloadURL",
        "resource",
        "resourceName",
        "script",
        "searchNamespace",
        "sizeLimit",
        "skipReload",
        "watchMethod",
    }
)

KUBE_STATE_METRICS: Layout = {
    "affinity": None,
    "annotations": None,
    "authFilter": None,
    "automountServiceAccountToken": None,
    "autosharding": None,
    "collectors": None,
    "collectorsExclude": None,
    "collectorsExtra": None,
    "containers": None,
    "containerSecurityContext": None,
    "customLabels": None,
    "customResourceState": None,
    "dnsConfig": None,
    "dnsPolicy": None,
    "env": None,
    "extraArgs": None,
    "extraManifests": None,
    "fullnameOverride": None,
    "global": None,
    "hostNetwork": None,
    "hostUsers": None,
    "image": None,
    "imagePullSecrets": None,
    "initContainers": None,
    "kubeconfig": None,
    "kubeRBACProxy": None,
    "labels": None,
    "livenessProbe": None,
    "metricAllowlist": None,
    "metricAnnotationsAllowList": None,
    "metricDenylist": None,
    "metricLabelsAllowlist": None,
    "nameOverride": None,
    "namespaceOverride": None,
    "namespaces": None,
    "namespacesDenylist": None,
    "networkPolicy": None,
    "nodeSelector": None,
    "podAnnotations": None,
    "podDisruptionBudget": None,
    "podLabels": None,
    "prometheus": None,
    "prometheusScrape": None,
    "rbac": None,
    "readinessProbe": None,
    "releaseLabel": None,
    "releaseNamespace": None,
    "replicas": None,
    "resources": None,
    "revisionHistoryLimit": None,
    "securityContext": None,
    "selectorOverride": None,
    "selfMonitor": None,
    "service": None,
    "serviceAccount": None,
    "startupProbe": None,
    "tolerations": None,
    "topologySpreadConstraints": None,
    "verticalPodAutoscaler": None,
    "volumeMounts": None,
    "volumes": None,
}
"""The top-level keys kube-state-metrics 8.4.0 (kube-prometheus-stack 88.5.3's
dependency) documents, each opaque."""


GRAFANA: Layout = {
    # kube-prometheus-stack's own keys under `grafana` (`enabled` is the dependency condition).
    "additionalDataSources": None,
    "additionalDataSourcesString": None,
    "defaultDashboardsEditable": None,
    "defaultDashboardsEnabled": None,
    "defaultDashboardsInterval": None,
    "defaultDashboardsTimezone": None,
    "deleteDatasources": None,
    "enabled": None,
    "forceDeployDashboards": None,
    "forceDeployDatasources": None,
    "operator": None,
    "prune": None,
    # The grafana 12.11.1 chart's keys.
    "admin": frozenset({"existingSecret", "userKey", "passwordKey"}),
    "adminUser": None,
    # Commented out in values.yaml; ignored (no admin Secret is rendered) once
    # admin.existingSecret is set.
    "adminPassword": None,
    "affinity": None,
    "alerting": None,
    "annotations": None,  # commented out; the templates read it
    "args": None,  # commented out
    "assertNoLeakedSecrets": None,
    "automountServiceAccountToken": None,
    "autoscaling": None,
    "command": None,  # commented out
    "configMapAnnotations": None,  # commented out
    "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
    "createConfigmap": None,
    "dashboardProviders": None,
    "dashboards": None,
    "dashboardsConfigMaps": None,
    "datasources": None,
    "defaultCurlOptions": None,
    "deploymentStrategy": None,
    "dnsConfig": None,
    "dnsPolicy": None,
    "downloadDashboards": None,
    "downloadDashboardsImage": None,
    "enableKubeBackwardCompatibility": None,
    "enableServiceLinks": None,
    "env": None,
    "envFromConfigMaps": None,
    "envFromSecret": None,
    "envFromSecrets": None,
    "envRenderSecret": None,
    "envValueFrom": None,
    "extraConfigmapMounts": None,
    "extraContainerVolumes": None,
    "extraContainers": None,
    "extraEmptyDirMounts": None,
    "extraExposePorts": None,
    "extraInitContainers": None,
    "extraLabels": None,
    "extraObjects": None,
    "extraSecretMounts": None,
    "extraVolumeMounts": None,
    "extraVolumes": None,
    "global": None,
    "gossipPortName": None,
    "grafana.ini": None,  # Grafana's own ini sections: opaque
    "headlessService": None,
    "hostAliases": None,
    "hostUsers": None,
    "image": frozenset({"registry", "repository", "tag", "sha", "pullPolicy", "pullSecrets"}),
    "imageRenderer": None,
    "ingress": None,
    "initChownData": None,
    "ldap": None,
    "lifecycleHooks": None,
    "listenerSet": None,
    "livenessProbe": None,
    "namespaceOverride": None,
    "networkPolicy": None,
    "nodeSelector": None,
    "notifiers": None,
    "persistence": frozenset(
        {
            "accessModes",
            "annotations",  # commented out
            "disableWarning",
            "enabled",
            "existingClaim",  # commented out
            "extraPvcLabels",
            "finalizers",
            "inMemory",
            "lookupVolumeName",
            "persistentVolumeClaimRetentionPolicy",
            "selectorLabels",  # commented out
            "size",
            "storageClassName",  # commented out
            "subPath",  # commented out
            "type",
            "volumeName",
        }
    ),
    "plugins": None,
    "podAnnotations": None,  # commented out
    "podDisruptionBudget": None,
    "podLabels": None,  # commented out
    "podPortName": None,
    "priorityClassName": None,  # commented out
    "progressDeadlineSeconds": None,
    "rbac": None,
    "readinessProbe": None,
    "replicas": None,
    "resources": RESOURCES,
    "revisionHistoryLimit": None,
    "route": None,
    "schedulerName": None,  # commented out
    "securityContext": POD_SECURITY_CONTEXT,
    # The grafana chart's keys; kube-prometheus-stack sets ipFamilies/ipFamilyPolicy/portName.
    # The service template also reads clusterIP, externalIPs, externalTrafficPolicy and
    # nodePort, which values.yaml never mentions.
    "service": frozenset(
        {
            "annotations",
            "appProtocol",
            "enabled",
            "ipFamilies",
            "ipFamilyPolicy",
            "labels",
            "loadBalancerClass",
            "loadBalancerIP",
            "loadBalancerSourceRanges",
            "port",
            "portName",
            "sessionAffinity",
            "targetPort",
            "trafficDistribution",
            "type",
        }
    ),
    "serviceAccount": None,
    "serviceMonitor": None,
    "shadowBundledPlugins": None,
    "shareProcessNamespace": None,
    "sidecar": {
        "alerts": None,
        "dashboards": _GRAFANA_SIDECAR_DASHBOARDS,
        "datasources": _GRAFANA_SIDECAR_DATASOURCES,
        "enableUniqueFilenames": None,
        "image": None,
        "imagePullPolicy": None,
        "livenessProbe": None,
        "notifiers": None,
        "plugins": None,
        "readinessProbe": None,
        "resources": RESOURCES,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
    },
    "smtp": None,
    "startupProbe": None,
    "testFramework": None,
    "tolerations": None,
    "topologySpreadConstraints": None,
    "useStatefulSet": None,
    "verticalPodAutoscaler": None,
}

PROMETHEUS_OPERATOR: Layout = {
    "admissionWebhooks": None,
    "affinity": None,
    "alertmanagerConfigNamespaces": None,
    "alertmanagerInstanceNamespaces": None,
    "alertmanagerInstanceSelector": None,
    "annotations": None,
    "automountServiceAccountToken": None,
    "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
    "denyNamespaces": None,
    "dnsConfig": None,
    "enabled": None,
    "env": None,
    "extraArgs": None,
    "extraVolumeMounts": None,
    "extraVolumes": None,
    "featureGates": None,
    "fullnameOverride": None,
    "hostNetwork": None,
    "hostUsers": None,
    "image": _OPERATOR_IMAGE,  # tag "" = the chart's appVersion
    "kubeletEndpointSliceEnabled": None,
    "kubeletEndpointsEnabled": None,
    "kubeletService": None,
    "labels": None,
    "lifecycle": None,
    "livenessProbe": None,
    "namespaces": None,
    "networkPolicy": None,
    "nodeSelector": None,
    "podAnnotations": None,
    "podDisruptionBudget": None,
    "podLabels": None,
    "prometheusConfigReloader": None,
    "prometheusInstanceNamespaces": None,
    "prometheusInstanceSelector": None,
    "readinessProbe": None,
    "resources": RESOURCES,
    "revisionHistoryLimit": None,
    "secretFieldSelector": None,
    "securityContext": POD_SECURITY_CONTEXT,
    "service": None,
    "serviceAccount": None,
    "serviceMonitor": None,
    "strategy": None,
    "terminationGracePeriodSeconds": None,
    "thanosImage": None,
    "thanosRulerInstanceNamespaces": None,
    "thanosRulerInstanceSelector": None,
    "tls": None,
    "tolerations": None,
    "verticalPodAutoscaler": None,
}

KUBE_PROMETHEUS_STACK_VALUES: Layout = {
    "additionalPrometheusRulesMap": None,
    "alertmanager": ALERTMANAGER,
    "cleanPrometheusOperatorObjectNames": None,
    "commonLabels": None,
    "coreDns": None,
    # The `crds` subchart's condition (`crds.enabled`, default true) and its preview
    # pre-install/pre-upgrade hook Job that server-side-applies the CRDs (default off).
    "crds": {
        "enabled": None,
        "upgradeJob": frozenset(
            {
                "affinity",
                "annotations",
                "automountServiceAccountToken",
                "containerSecurityContext",
                "enabled",
                "env",
                "extraVolumeMounts",
                "extraVolumes",
                "forceConflicts",
                "image",
                "labels",
                "nodeSelector",
                "podAnnotations",
                "podLabels",
                "podSecurityContext",
                "resources",
                "serviceAccount",
                "tolerations",
                "topologySpreadConstraints",
            }
        ),
    },
    "customRules": None,
    "defaultRules": {
        "additionalAggregationLabels": None,
        "additionalRuleAnnotations": None,
        "additionalRuleGroupAnnotations": None,
        "additionalRuleGroupLabels": None,
        "additionalRuleLabels": None,
        "annotations": None,
        "appNamespacesOperator": None,
        "appNamespacesTarget": None,
        "create": None,
        "disabled": None,
        "keepFiringFor": None,
        "kubeletClientCertificateExpiration": None,
        "kubeletServerCertificateExpiration": None,
        "labels": None,
        "node": frozenset({"fsSelector"}),
        # Per-group switches (alertmanager, etcd, kubeApiserverSlos, node, ...): opaque.
        "rules": None,
        "runbookUrl": None,
    },
    "extraManifests": None,
    "fullnameOverride": None,
    "global": None,
    "grafana": GRAFANA,
    # The kube-state-metrics subchart (8.4.0)'s own values, of which the program sets
    # one; `kubeStateMetrics` below is only its dependency condition.
    "kube-state-metrics": KUBE_STATE_METRICS,
    "kubeApiServer": None,
    "kubeControllerManager": None,
    "kubeDns": None,
    "kubeEtcd": None,
    "kubeProxy": None,
    "kubeScheduler": None,
    "kubeStateMetrics": frozenset({"enabled"}),
    "kubeTargetVersionOverride": None,
    "kubeVersionOverride": None,
    "kubelet": None,
    "kubernetesServiceMonitors": None,
    "nameOverride": None,
    "namespaceOverride": None,
    "nodeExporter": frozenset({"enabled", "forceDeployDashboards", "operatingSystems"}),
    "prometheus": PROMETHEUS,
    "prometheus-node-exporter": None,
    "prometheus-windows-exporter": None,
    "prometheusOperator": PROMETHEUS_OPERATOR,
    "thanosRuler": None,
    "windowsMonitoring": None,
}
"""The keys kube-prometheus-stack 88.5.3 (with grafana 12.11.1 under ``grafana``) documents."""

# --- opentelemetry-collector 0.170.0 ----------------------------------------------------

OTEL_COLLECTOR_REQUIRED: tuple[str, ...] = ("mode", "image.repository")
"""Keys the chart refuses to render without (``fail`` in ``templates/NOTES.txt``).

Both default to ``""``: ``mode`` must be ``daemonset``, ``deployment`` or ``statefulset`` and
``image.repository`` a collector distribution (the README's example is
``ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s``;
``otel/opentelemetry-collector-contrib`` is the other common one).
A missing key is not an unknown key, so ``values_problems`` does not report them;
``otel_required_problems`` does.
"""

OTEL_COLLECTOR_MODES: tuple[str, ...] = ("daemonset", "deployment", "statefulset")

OTEL_COLLECTOR_VALUES: Layout = {
    "additionalLabels": None,
    "affinity": None,
    "alternateConfig": None,
    "annotations": None,
    "apiVersion": None,
    "autoscaling": None,
    "clusterRole": frozenset({"annotations", "clusterRoleBinding", "create", "name", "rules"}),
    # The binary to run; "" keeps the image's entrypoint. The README pairs the k8s
    # distribution with `otelcol-k8s`; the core image needs `otelcol`.
    "command": frozenset({"name", "extraArgs"}),
    # The collector configuration, deep-merged over the chart's default (otlp/jaeger/zipkin/
    # prometheus receivers, memory_limiter + batch processors, a debug exporter, the
    # health_check extension the chart insists on, and traces/metrics/logs pipelines).
    # The component maps and the pipelines (named `traces`, `metrics`, `logs`,
    # `traces/<name>`, ...) are free-form.
    "config": {
        "connectors": None,
        "exporters": None,
        "extensions": None,
        "processors": None,
        "receivers": None,
        "service": frozenset({"extensions", "pipelines", "telemetry"}),
    },
    "configMap": None,
    "dnsConfig": None,
    "dnsPolicy": None,
    "enableConfigChecksumAnnotation": None,
    "enabled": None,  # in values.schema.json only (a dependency condition)
    "extraContainers": None,
    "extraEnvs": None,
    "extraEnvsFrom": None,
    "extraManifests": None,
    "extraVolumeMounts": None,
    "extraVolumes": None,
    "fullnameOverride": None,
    "global": None,  # in values.schema.json only
    "hostAliases": None,
    "hostNetwork": None,
    "hostPID": None,
    "httproute": None,
    # `registry` is in values.schema.json, not values.yaml.
    "image": frozenset({"registry", "repository", "pullPolicy", "tag", "digest"}),
    "imagePullSecrets": None,
    "ingress": None,
    "initContainers": None,
    "internalTelemetryViaOTLP": None,
    "lifecycleHooks": None,
    "livenessProbe": None,
    "mode": None,
    "nameOverride": None,
    "namespaceOverride": None,
    "networkPolicy": None,
    "nodeSelector": None,
    "podAnnotations": None,
    "podDisruptionBudget": None,
    "podLabels": None,
    "podMonitor": None,
    "podSecurityContext": POD_SECURITY_CONTEXT,
    "ports": None,  # named ports (otlp, otlp-http, jaeger-*, zipkin, metrics, ...)
    "presets": frozenset(
        {
            "annotationDiscovery",
            "clusterMetrics",
            "hostMetrics",
            "kubeletMetrics",
            "kubernetesAttributes",
            "kubernetesEvents",
            "kubernetesObjects",
            "logsCollection",
            "profiling",
            "resourceDetection",
        }
    ),
    "priorityClassName": None,
    "prometheusRule": None,
    "readinessProbe": None,
    "replicaCount": None,
    "resizePolicy": None,
    "resources": frozenset({"limits", "requests"}),  # the schema allows only these two
    "revisionHistoryLimit": None,
    "rewriteDeprecatedComponentNames": None,
    "rollout": None,
    "runtimeClassName": None,
    "schedulerName": None,
    "securityContext": CONTAINER_SECURITY_CONTEXT,
    "service": frozenset(
        {
            "annotations",
            "clusterIP",
            "enabled",
            "externalTrafficPolicy",
            "internalTrafficPolicy",
            "loadBalancerIP",
            "loadBalancerSourceRanges",
            "trafficDistribution",
            "type",
        }
    ),
    "serviceAccount": frozenset({"annotations", "automountServiceAccountToken", "create", "name"}),
    "serviceMonitor": None,
    "shareProcessNamespace": None,
    "startupProbe": None,
    "statefulset": None,
    "terminationGracePeriodSeconds": None,
    "tolerations": None,
    "topologySpreadConstraints": None,
    "useGOMEMLIMIT": None,
}
"""The keys opentelemetry-collector 0.170.0 documents."""


def otel_required_problems(values: Mapping[str, object]) -> list[str]:
    """The chart's render-time requirements ``values`` does not meet (``mode``, image)."""
    found: list[str] = []
    mode = values.get("mode")
    if mode not in OTEL_COLLECTOR_MODES:
        allowed = ", ".join(OTEL_COLLECTOR_MODES)
        found.append(f"mode: must be one of [{allowed}], got {mode!r}")
    image = values.get("image")
    repository = image.get("repository") if isinstance(image, Mapping) else None
    if not isinstance(repository, str) or not repository:
        found.append("image.repository: must be set (the chart has no default image)")
    return found


# --- jaeger 4.11.1 (Jaeger v2) ----------------------------------------------------------

_JAEGER_JOB: frozenset[str] = frozenset(
    {
        "affinity",
        "annotations",
        "cmdlineParams",
        "concurrencyPolicy",
        "enabled",
        "extraConfigmapMounts",
        "extraEnv",
        "extraSecretMounts",
        "failedJobsHistoryLimit",
        "image",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "podSecurityContext",
        "resources",
        "schedule",
        "securityContext",
        "serviceAccount",
        "successfulJobsHistoryLimit",
        "tolerations",
    }
)

JAEGER_VALUES: Layout = {
    "commonAnnotations": None,
    "commonLabels": None,
    "esIndexCleaner": _JAEGER_JOB | {"numberOfDays"},
    "esLookback": None,
    "esRollover": None,
    "extraObjects": None,
    "fullnameOverride": None,
    "global": frozenset({"imageRegistry"}),
    # The single all-in-one Deployment (there is no `allInOne`, `collector` or `query` key in
    # the v2 chart).
    "jaeger": {
        "enabled": None,
        "replicas": None,
        "image": frozenset(
            {"registry", "repository", "tag", "digest", "pullPolicy", "pullSecrets"}
        ),
        "extraEnv": None,
        "args": None,
        "serviceAccount": frozenset({"annotations", "automountServiceAccountToken"}),
        "service": frozenset({"labels", "annotations", "extraPorts"}),
        "ingress": frozenset(
            {"enabled", "annotations", "labels", "pathType", "ingressClassName", "hosts", "tls"}
        ),
        "httproute": frozenset(
            {
                "enabled",
                "apiVersion",
                "annotations",
                "parentRefs",
                "hostnames",
                "matches",
                "filters",
                "additionalRules",
            }
        ),
        "resources": RESOURCES,  # commented out; the Deployment reads it
        "nodeSelector": None,
        "tolerations": None,
        "affinity": None,
        # values.yaml spells it `topologySpreadContraints`, which nothing reads; the
        # Deployment template reads `topologySpreadConstraints`, so only that is accepted.
        "topologySpreadConstraints": None,
        "podSecurityContext": POD_SECURITY_CONTEXT,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        # Where a badger backend's PVC goes (the chart creates no PVC itself).
        "extraVolumes": None,
        "extraVolumeMounts": None,
    },
    "nameOverride": None,
    "networkPolicy": None,
    "spark": None,
    # Only the Spark and Elasticsearch maintenance jobs read `storage`; the Jaeger
    # process's storage is its own config (`userconfig`, `extensions.jaeger_storage`).
    "storage": {
        "type": None,  # cassandra | elasticsearch (default elasticsearch)
        "cassandra": None,
        "elasticsearch": frozenset({"tls", "url", "user", "password"}),
    },
    "tag": None,
    "uiconfig": None,  # the UI's JSON config, opaque
    # The whole Jaeger v2 (OTel collector-style) configuration file, mounted and passed with
    # --config. Unset, the image runs its built-in all-in-one config with memory storage.
    "userconfig": None,
}
"""The keys jaeger 4.11.1 documents. Its README's ``config:`` example is not a key."""

# --- Prometheus Operator CRDs (monitoring.coreos.com/v1 at v0.93.1) --------------------

_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_NON_EMPTY = r"(?s)."  # minLength: 1
_LABELS = Map(Str())

_RULE = Obj(
    fields={
        "record": Str(),
        "alert": Str(),
        "expr": IntOrStr(),
        "for": Str(pattern=_DURATION),
        "keep_firing_for": Str(pattern=_DURATION),
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    required=frozenset({"expr"}),
)

PROMETHEUS_RULE_SPEC = Obj(
    fields={
        "groups": Arr(
            Obj(
                fields={
                    "name": Str(pattern=_NON_EMPTY),
                    "interval": Str(pattern=_DURATION),
                    "labels": _LABELS,
                    "limit": Int(),
                    "partial_response_strategy": Str(pattern=r"^(?i)(abort|warn)?$"),
                    "query_offset": Str(pattern=_DURATION),
                    "rules": Arr(_RULE),
                },
                required=frozenset({"name"}),
            )
        ),
    }
)
"""``spec`` of a ``monitoring.coreos.com/v1`` PrometheusRule at operator 0.93.1.

The CRD does not enforce "exactly one of record or alert"; Prometheus does when it loads
the rules.
"""

_SECRET_KEY = Obj(
    fields={"key": Str(), "name": Str(), "optional": Bool()},
    required=frozenset({"key"}),
)
_CONFIGMAP_OR_SECRET = Obj(fields={"configMap": _SECRET_KEY, "secret": _SECRET_KEY})
_TLS_VERSION = Str(enum=("TLS10", "TLS11", "TLS12", "TLS13"))

_TLS_CONFIG = Obj(
    fields={
        "ca": _CONFIGMAP_OR_SECRET,
        "caFile": Str(),
        "cert": _CONFIGMAP_OR_SECRET,
        "certFile": Str(),
        "insecureSkipVerify": Bool(),
        "keyFile": Str(),
        "keySecret": _SECRET_KEY,
        "maxVersion": _TLS_VERSION,
        "minVersion": _TLS_VERSION,
        "serverName": Str(),
    }
)

_RELABEL_CONFIG = Obj(
    fields={
        "action": Str(
            enum=(
                "replace",
                "Replace",
                "keep",
                "Keep",
                "drop",
                "Drop",
                "hashmod",
                "HashMod",
                "labelmap",
                "LabelMap",
                "labeldrop",
                "LabelDrop",
                "labelkeep",
                "LabelKeep",
                "lowercase",
                "Lowercase",
                "uppercase",
                "Uppercase",
                "keepequal",
                "KeepEqual",
                "dropequal",
                "DropEqual",
            )
        ),
        "modulus": Int(minimum=0),
        "regex": Str(),
        "replacement": Str(),
        "separator": Str(),
        "sourceLabels": Arr(Str()),
        "targetLabel": Str(),
    }
)

_SCRAPE_PROTOCOL = Str(
    enum=(
        "PrometheusProto",
        "OpenMetricsText0.0.1",
        "OpenMetricsText1.0.0",
        "PrometheusText0.0.4",
        "PrometheusText1.0.0",
    )
)
_PROXY_URL = r"^(http|https|socks5)://.+$"

_ENDPOINT = Obj(
    fields={
        "authorization": Obj(fields={"credentials": _SECRET_KEY, "type": Str()}),
        "basicAuth": Obj(fields={"password": _SECRET_KEY, "username": _SECRET_KEY}),
        "bearerTokenFile": Str(),
        "bearerTokenSecret": _SECRET_KEY,
        "enableHttp2": Bool(),
        "filterRunning": Bool(),
        "followRedirects": Bool(),
        "honorLabels": Bool(),
        "honorTimestamps": Bool(),
        "interval": Str(pattern=_DURATION),
        "metricRelabelings": Arr(_RELABEL_CONFIG),
        "noProxy": Str(),
        # OAuth2 client settings (clientId/clientSecret/tokenUrl required): not opened here.
        "oauth2": AnyValue(),
        "params": Map(Arr(Str())),
        "path": Str(),
        "port": Str(),  # the Service port's name
        "proxyConnectHeader": Map(Arr(_SECRET_KEY)),
        "proxyFromEnvironment": Bool(),
        "proxyUrl": Str(pattern=_PROXY_URL),
        "relabelings": Arr(_RELABEL_CONFIG),
        "scheme": Str(enum=("http", "https", "HTTP", "HTTPS")),
        "scrapeTimeout": Str(pattern=_DURATION),
        "targetPort": IntOrStr(),
        "tlsConfig": _TLS_CONFIG,
        "trackTimestampsStaleness": Bool(),
    }
)

_LABEL_SELECTOR = Obj(
    fields={
        "matchExpressions": Arr(
            Obj(
                fields={"key": Str(), "operator": Str(), "values": Arr(Str())},
                required=frozenset({"key", "operator"}),
            )
        ),
        "matchLabels": _LABELS,
    }
)

SERVICE_MONITOR_SPEC = Obj(
    fields={
        "attachMetadata": Obj(fields={"node": Bool()}),
        "bodySizeLimit": Str(pattern=r"(^0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$"),
        "convertClassicHistogramsToNHCB": Bool(),
        "endpoints": Arr(_ENDPOINT),
        "fallbackScrapeProtocol": _SCRAPE_PROTOCOL,
        "jobLabel": Str(),
        "keepDroppedTargets": Int(minimum=0),
        "labelLimit": Int(minimum=0),
        "labelNameLengthLimit": Int(minimum=0),
        "labelValueLengthLimit": Int(minimum=0),
        "namespaceSelector": Obj(fields={"any": Bool(), "matchNames": Arr(Str())}),
        "nativeHistogramBucketLimit": Int(minimum=0),
        "nativeHistogramMinBucketFactor": IntOrStr(),
        "podTargetLabels": Arr(Str()),
        "sampleLimit": Int(minimum=0),
        "scrapeClass": Str(pattern=_NON_EMPTY),
        "scrapeClassicHistograms": Bool(),
        "scrapeNativeHistograms": Bool(),
        "scrapeProtocols": Arr(_SCRAPE_PROTOCOL),
        "selector": _LABEL_SELECTOR,
        "selectorMechanism": Str(enum=("RelabelConfig", "RoleSelector")),
        "serviceDiscoveryRole": Str(enum=("Endpoints", "EndpointSlice")),
        "targetLabels": Arr(Str()),
        "targetLimit": Int(minimum=0),
    },
    required=frozenset({"endpoints", "selector"}),
)
"""``spec`` of a ``monitoring.coreos.com/v1`` ServiceMonitor at operator 0.93.1.

Structural part only: the CRD's CEL rules and ``nativeHistogramMinBucketFactor``'s quantity
pattern are not evaluated, and ``endpoints[].oauth2`` is not opened.
"""

CRD_SPECS: Mapping[str, Schema] = {
    "PrometheusRule": PROMETHEUS_RULE_SPEC,
    "ServiceMonitor": SERVICE_MONITOR_SPEC,
}
