"""The field layout of Karpenter's custom resources and Helm values, for offline checks.

Read by hand from aws/karpenter-provider-aws at tag ``v1.14.1`` (Karpenter 1.14.1):

* ``pkg/apis/crds/karpenter.sh_nodepools.yaml`` (NodePool, ``karpenter.sh/v1``)
* ``pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml`` (EC2NodeClass, ``karpenter.k8s.aws/v1``)
* ``charts/karpenter/values.yaml`` (the keys chart 1.14.1 documents)

Only the structural part of the CRDs is written down here: field names, required lists,
types, enums, the string patterns and the integer bounds. The CRDs' CEL rules
(``x-kubernetes-validations``, e.g. "exactly one of role or instanceProfile", "alias is
mutually exclusive") and ``maxItems``/``maxProperties`` are not evaluated.

When the pin moves, re-read those files at the new tag and update this module by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.components import layout
from tests.components.layout import (
    Arr,
    Bool,
    Int,
    Layout,
    Map,
    Obj,
    Quantity,
    Str,
    req,
)

KARPENTER_VERSION = "1.14.1"

CHART = ("oci://public.ecr.aws/karpenter", "karpenter", KARPENTER_VERSION)
"""(repository, chart name, version) of the controller chart."""

CRD_API_VERSIONS = {
    "NodePool": "karpenter.sh/v1",
    "EC2NodeClass": "karpenter.k8s.aws/v1",
}


# --- patterns copied from the CRDs at v1.14.1 -----------------------------------------

_DURATION_OR_NEVER = r"^(([0-9]+(s|m|h))+|Never)$"
_DURATION = r"^([0-9]+(s|m|h))+$"
_LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
)
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_BUDGET_NODES = r"^((100|[0-9]{1,2})%|[0-9]+)$"
_BUDGET_DURATION = r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$"
_BUDGET_SCHEDULE = (
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$"
)
_QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_EVICTION_THRESHOLD = (
    r"^((\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)%||(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?)$"
)
_VOLUME_SIZE = (
    r"^((?:[1-9][0-9]{0,3}|[1-4][0-9]{4}|[5][0-8][0-9]{3}|59000)Gi"
    r"|(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|[6][0-3][0-9]{3}|64000)G"
    r"|([1-9]||[1-5][0-7]|58)Ti|([1-9]||[1-5][0-9]|6[0-3]|64)T)$"
)

# --- NodePool (karpenter.sh/v1) -------------------------------------------------------

_TAINT = Obj(
    fields={
        "key": Str(pattern=_LABEL_KEY),
        "value": Str(pattern=_LABEL_KEY),
        "effect": Str(enum=("NoSchedule", "PreferNoSchedule", "NoExecute")),
        "timeAdded": Str(),
    },
    required=req("effect", "key"),
)

_REQUIREMENT = Obj(
    fields={
        "key": Str(pattern=_LABEL_KEY),
        "operator": Str(enum=("Gte", "Lte", "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")),
        "values": Arr(Str()),
        "minValues": Int(minimum=1, maximum=50),
    },
    required=req("key", "operator"),
)

_BUDGET = Obj(
    fields={
        "nodes": Str(pattern=_BUDGET_NODES),
        "reasons": Arr(Str(enum=("Underutilized", "Empty", "Drifted"))),
        "schedule": Str(pattern=_BUDGET_SCHEDULE),
        "duration": Str(pattern=_BUDGET_DURATION),
    },
    required=req("nodes"),
)

NODEPOOL_SPEC = Obj(
    fields={
        "template": Obj(
            fields={
                "metadata": Obj(
                    fields={
                        "labels": Map(Str(pattern=_LABEL_VALUE)),
                        "annotations": Map(Str()),
                    }
                ),
                "spec": Obj(
                    fields={
                        "requirements": Arr(_REQUIREMENT),
                        "taints": Arr(_TAINT),
                        "startupTaints": Arr(_TAINT),
                        "expireAfter": Str(pattern=_DURATION_OR_NEVER),
                        "terminationGracePeriod": Str(pattern=_DURATION),
                        "nodeClassRef": Obj(
                            fields={
                                "group": Str(pattern=r"^[^/]*$"),
                                "kind": Str(),
                                "name": Str(),
                            },
                            required=req("group", "kind", "name"),
                        ),
                    },
                    required=req("nodeClassRef", "requirements"),
                ),
            },
            required=req("spec"),
        ),
        "disruption": Obj(
            fields={
                "consolidationPolicy": Str(
                    enum=("WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced")
                ),
                "consolidateAfter": Str(pattern=_DURATION_OR_NEVER),
                "budgets": Arr(_BUDGET),
            },
            # The CRD defaults the whole ``disruption`` object to {consolidateAfter: 0s},
            # but once ``disruption`` is given, ``consolidateAfter`` must be in it.
            required=req("consolidateAfter"),
        ),
        "limits": Map(Quantity()),
        "weight": Int(minimum=1, maximum=100),
        # Alpha (static NodePools, feature gate StaticCapacity).
        "replicas": Int(minimum=0),
    },
    required=req("template"),
)
"""``spec`` of a ``karpenter.sh/v1`` NodePool at Karpenter 1.14.1."""

# --- EC2NodeClass (karpenter.k8s.aws/v1) ----------------------------------------------

_TAGS = Map(Str())

_KUBELET = Obj(
    fields={
        "clusterDNS": Arr(Str()),
        "cpuCFSQuota": Bool(),
        "evictionHard": Map(Str(pattern=_EVICTION_THRESHOLD)),
        "evictionMaxPodGracePeriod": Int(),
        "evictionSoft": Map(Str(pattern=_EVICTION_THRESHOLD)),
        "evictionSoftGracePeriod": Map(Str()),
        "imageGCHighThresholdPercent": Int(minimum=0, maximum=100),
        "imageGCLowThresholdPercent": Int(minimum=0, maximum=100),
        "kubeReserved": Map(Str(pattern=_QUANTITY)),
        "systemReserved": Map(Str(pattern=_QUANTITY)),
        "maxPods": Int(minimum=0),
        "podsPerCore": Int(minimum=0),
    }
)

_EBS = Obj(
    fields={
        "deleteOnTermination": Bool(),
        "encrypted": Bool(),
        "iops": Int(),
        "kmsKeyID": Str(),
        "snapshotID": Str(),
        "throughput": Int(),
        "volumeInitializationRate": Int(minimum=100, maximum=300),
        # A string such as "100Gi" in the CRD, not an integer.
        "volumeSize": Str(pattern=_VOLUME_SIZE),
        "volumeType": Str(enum=("standard", "io1", "io2", "gp2", "sc1", "st1", "gp3")),
    }
)

_ENABLED_DISABLED = ("enabled", "disabled")

EC2NODECLASS_SPEC = Obj(
    fields={
        "amiFamily": Str(
            enum=(
                "AL2",
                "AL2023",
                "Bottlerocket",
                "Custom",
                "Windows2019",
                "Windows2022",
                "Windows2025",
            )
        ),
        "amiSelectorTerms": Arr(
            Obj(
                fields={
                    # family@version, e.g. al2023@v20240807, bottlerocket@v1.20.4, al2023@latest.
                    # The CRD checks this format with a CEL rule; the pattern is that rule's.
                    "alias": Str(pattern=r"^[a-zA-Z0-9]+@.+$"),
                    "id": Str(pattern=r"ami-[0-9a-z]+"),
                    "name": Str(),
                    "owner": Str(),
                    "ssmParameter": Str(),
                    "tags": _TAGS,
                }
            )
        ),
        "role": Str(),
        "instanceProfile": Str(),
        "subnetSelectorTerms": Arr(
            Obj(fields={"id": Str(pattern=r"subnet-[0-9a-z]+"), "tags": _TAGS})
        ),
        "securityGroupSelectorTerms": Arr(
            Obj(fields={"id": Str(pattern=r"sg-[0-9a-z]+"), "name": Str(), "tags": _TAGS})
        ),
        "capacityReservationSelectorTerms": Arr(
            Obj(
                fields={
                    "id": Str(pattern=r"^cr-[0-9a-z]+$"),
                    "instanceMatchCriteria": Str(enum=("open", "targeted")),
                    "ownerID": Str(pattern=r"^[0-9]{12}$"),
                    "tags": _TAGS,
                }
            )
        ),
        "placementGroupSelector": Obj(fields={"id": Str(pattern=r"^pg-[0-9a-z]+$"), "name": Str()}),
        "tags": _TAGS,
        "kubelet": _KUBELET,
        "blockDeviceMappings": Arr(
            Obj(fields={"deviceName": Str(), "ebs": _EBS, "rootVolume": Bool()})
        ),
        "metadataOptions": Obj(
            fields={
                "httpEndpoint": Str(enum=_ENABLED_DISABLED),
                "httpProtocolIPv6": Str(enum=_ENABLED_DISABLED),
                "httpPutResponseHopLimit": Int(minimum=1, maximum=64),
                "httpTokens": Str(enum=("required", "optional")),
            }
        ),
        "userData": Str(),
        "detailedMonitoring": Bool(),
        "associatePublicIPAddress": Bool(),
        "instanceStorePolicy": Str(enum=("RAID0",)),
        "ipPrefixCount": Int(minimum=0),
        "context": Str(),
        "cpuOptions": Obj(fields={"nestedVirtualization": Str(enum=_ENABLED_DISABLED)}),
        "connectionTracking": Obj(
            fields={
                "tcpEstablishedTimeout": Int(minimum=60, maximum=432000),
                "udpStreamTimeout": Int(minimum=60, maximum=180),
                "udpTimeout": Int(minimum=30, maximum=60),
            }
        ),
        "networkInterfaces": Arr(
            Obj(
                fields={
                    "networkCardIndex": Int(minimum=0),
                    "deviceIndex": Int(minimum=0),
                    "interfaceType": Str(enum=("interface", "efa-only")),
                },
                required=req("deviceIndex", "interfaceType", "networkCardIndex"),
            )
        ),
    },
    required=req("amiSelectorTerms", "securityGroupSelectorTerms", "subnetSelectorTerms"),
)
"""``spec`` of a ``karpenter.k8s.aws/v1`` EC2NodeClass at Karpenter 1.14.1."""

# --- chart values (charts/karpenter/values.yaml at v1.14.1) ---------------------------

"""Documented keys: ``None`` marks a leaf or a free-form value, a mapping is recursed into."""

VALUES_KEYS: Layout = {
    "nameOverride": None,
    "fullnameOverride": None,
    "additionalLabels": None,
    "additionalAnnotations": None,
    "imagePullPolicy": None,
    "imagePullSecrets": None,
    "service": None,
    "serviceAccount": {"create": None, "name": None, "annotations": None},
    "additionalClusterRoleRules": None,
    "serviceMonitor": {
        "enabled": None,
        "additionalLabels": None,
        "relabelings": None,
        "metricRelabelings": None,
        "endpointConfig": None,
        "sampleLimit": None,
    },
    "replicas": None,
    "revisionHistoryLimit": None,
    "strategy": None,
    "podLabels": None,
    "podAnnotations": None,
    "podDisruptionBudget": {"name": None, "maxUnavailable": None},
    "podSecurityContext": None,
    "priorityClassName": None,
    "terminationGracePeriodSeconds": None,
    "hostNetwork": None,
    "schedulerName": None,
    "dnsPolicy": None,
    "dnsConfig": None,
    "initContainers": None,
    "nodeSelector": None,
    "affinity": None,
    "topologySpreadConstraints": None,
    "tolerations": None,
    "extraVolumes": None,
    "controller": {
        "containerName": None,
        "image": {"repository": None, "tag": None, "digest": None},
        "env": None,
        "envFrom": None,
        # The template reads only these three keys of it.
        "securityContext": {
            "appArmorProfile": None,
            "seLinuxOptions": None,
            "seccompProfile": None,
        },
        "resources": None,
        "extraVolumeMounts": None,
        "sidecarContainer": None,
        "sidecarVolumeMounts": None,
        "metrics": {"port": None},
        "healthProbe": {"port": None},
    },
    "logLevel": None,
    "logOutputPaths": None,
    "logErrorOutputPaths": None,
    "settings": {
        "batchMaxDuration": None,
        "batchIdleDuration": None,
        "preferencePolicy": None,
        "minValuesPolicy": None,
        "clusterCABundle": None,
        "clusterName": None,
        "clusterEndpoint": None,
        "isolatedVPC": None,
        "eksControlPlane": None,
        "vmMemoryOverheadPercent": None,
        "interruptionQueue": None,
        "enableZonalShift": None,
        "reservedENIs": None,
        "ignoreDRARequests": None,
        "disableClusterStateObservability": None,
        "disableDryRun": None,
        "amiRefreshInterval": None,
        "subnetRefreshInterval": None,
        "featureGates": {
            "nodeRepair": None,
            "nodeOverlay": None,
            "reservedCapacity": None,
            "spotToSpotConsolidation": None,
            "staticCapacity": None,
            "capacityBuffer": None,
        },
    },
}
"""The keys ``charts/karpenter/values.yaml`` documents at 1.14.1.

There is no ``webhook`` key: the chart had ``webhook.{enabled,port,metrics.port}`` up to
1.0.x and dropped it in 1.1.0.
"""

_GONE = {"webhook": "removed from the chart in 1.1.0"}


def values_problems(values: Mapping[str, object], keys: Layout = VALUES_KEYS) -> list[str]:
    """The keys of ``values`` the chart does not document, as dotted paths.

    Recurses only where ``VALUES_KEYS`` has sub-keys; free-form values (``nodeSelector``,
    ``tolerations``, ``affinity``, ``podAnnotations``, ``controller.resources``,
    ``extraVolumes``, ...) are opaque.
    """
    return layout.values_problems(values, keys, chart=f"karpenter {KARPENTER_VERSION}", notes=_GONE)
