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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

KARPENTER_VERSION = "1.14.1"

CHART = ("oci://public.ecr.aws/karpenter", "karpenter", KARPENTER_VERSION)
"""(repository, chart name, version) of the controller chart."""

CRD_API_VERSIONS = {
    "NodePool": "karpenter.sh/v1",
    "EC2NodeClass": "karpenter.k8s.aws/v1",
}


# --- the schema notation --------------------------------------------------------------


@dataclass(frozen=True)
class Str:
    """A string; ``enum`` lists the allowed values, ``pattern`` is the CRD's regex.

    As in OpenAPI, the pattern is not implicitly anchored (``re.search``).
    """

    enum: tuple[str, ...] | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) with optional inclusive bounds."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Num:
    """A number (integer or float, not a bool)."""


@dataclass(frozen=True)
class Bool:
    """A boolean."""


@dataclass(frozen=True)
class IntOrStr:
    """``x-kubernetes-int-or-string``: an integer or a string (a resource quantity)."""


Quantity = IntOrStr
"""Resource quantities (``limits``) are int-or-string in the CRDs."""


@dataclass(frozen=True)
class AnyValue:
    """Anything (``x-kubernetes-preserve-unknown-fields``)."""


@dataclass(frozen=True)
class Arr:
    """A list whose items all follow ``item``."""

    item: Schema


@dataclass(frozen=True)
class Map:
    """An object with free keys (``additionalProperties``) whose values follow ``value``."""

    value: Schema


@dataclass(frozen=True)
class Obj:
    """An object with the listed ``fields`` only; ``required`` names the mandatory ones."""

    fields: Mapping[str, Schema]
    required: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = self.required - set(self.fields)
        assert not unknown, f"required fields not in fields: {sorted(unknown)}"


Schema = Str | Int | Num | Bool | IntOrStr | AnyValue | Arr | Map | Obj


def _req(*names: str) -> frozenset[str]:
    return frozenset(names)


def _type_name(value: object) -> str:
    return type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(value: object, schema: Schema, path: str = "") -> list[str]:
    """Every way ``value`` departs from ``schema``, each message starting with its dotted path.

    Reports unknown fields, missing required fields, wrong types, values outside an enum,
    strings not matching the pattern and integers out of bounds. List items are named
    ``path[i]``. A ``None`` value is reported as a wrong type: no field of these CRDs is
    ``nullable``.
    """
    where = path or "<root>"
    if isinstance(schema, AnyValue):
        return []
    if isinstance(schema, Str):
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {_type_name(value)}"]
        if schema.enum is not None and value not in schema.enum:
            allowed = ", ".join(schema.enum)
            return [f"{where}: {value!r} is not one of [{allowed}]"]
        if schema.pattern is not None and not re.search(schema.pattern, value):
            return [f"{where}: {value!r} does not match {schema.pattern!r}"]
        return []
    if isinstance(schema, Int):
        if not _is_int(value):
            return [f"{where}: expected an integer, got {_type_name(value)}"]
        assert isinstance(value, int)
        if schema.minimum is not None and value < schema.minimum:
            return [f"{where}: {value} is below the minimum {schema.minimum}"]
        if schema.maximum is not None and value > schema.maximum:
            return [f"{where}: {value} is above the maximum {schema.maximum}"]
        return []
    if isinstance(schema, Num):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{where}: expected a number, got {_type_name(value)}"]
        return []
    if isinstance(schema, Bool):
        if not isinstance(value, bool):
            return [f"{where}: expected a boolean, got {_type_name(value)}"]
        return []
    if isinstance(schema, IntOrStr):
        if not (_is_int(value) or isinstance(value, str)):
            return [f"{where}: expected an integer or a string, got {_type_name(value)}"]
        return []
    if isinstance(schema, Arr):
        if not isinstance(value, list | tuple):
            return [f"{where}: expected a list, got {_type_name(value)}"]
        found: list[str] = []
        for i, item in enumerate(value):
            found += problems(item, schema.item, f"{path}[{i}]")
        return found
    if not isinstance(value, Mapping):
        return [f"{where}: expected an object, got {_type_name(value)}"]
    found = []
    if isinstance(schema, Map):
        for key, item in value.items():
            if not isinstance(key, str):
                found.append(f"{where}: key {key!r} is not a string")
                continue
            found += problems(item, schema.value, _join(path, key))
        return found
    for key, item in value.items():
        if key not in schema.fields:
            found.append(f"{_join(path, str(key))}: unknown field")
        else:
            found += problems(item, schema.fields[key], _join(path, key))
    for key in sorted(schema.required):
        if key not in value:
            found.append(f"{_join(path, key)}: required field is missing")
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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
    required=_req("effect", "key"),
)

_REQUIREMENT = Obj(
    fields={
        "key": Str(pattern=_LABEL_KEY),
        "operator": Str(enum=("Gte", "Lte", "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")),
        "values": Arr(Str()),
        "minValues": Int(minimum=1, maximum=50),
    },
    required=_req("key", "operator"),
)

_BUDGET = Obj(
    fields={
        "nodes": Str(pattern=_BUDGET_NODES),
        "reasons": Arr(Str(enum=("Underutilized", "Empty", "Drifted"))),
        "schedule": Str(pattern=_BUDGET_SCHEDULE),
        "duration": Str(pattern=_BUDGET_DURATION),
    },
    required=_req("nodes"),
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
                            required=_req("group", "kind", "name"),
                        ),
                    },
                    required=_req("nodeClassRef", "requirements"),
                ),
            },
            required=_req("spec"),
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
            required=_req("consolidateAfter"),
        ),
        "limits": Map(Quantity()),
        "weight": Int(minimum=1, maximum=100),
        # Alpha (static NodePools, feature gate StaticCapacity).
        "replicas": Int(minimum=0),
    },
    required=_req("template"),
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
                required=_req("deviceIndex", "interfaceType", "networkCardIndex"),
            )
        ),
    },
    required=_req("amiSelectorTerms", "securityGroupSelectorTerms", "subnetSelectorTerms"),
)
"""``spec`` of a ``karpenter.k8s.aws/v1`` EC2NodeClass at Karpenter 1.14.1."""

# --- chart values (charts/karpenter/values.yaml at v1.14.1) ---------------------------

KeyTree = Mapping[str, "KeyTree | None"]
"""Documented keys: ``None`` marks a leaf or a free-form value, a mapping is recursed into."""

VALUES_KEYS: KeyTree = {
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


def values_problems(values: Mapping[str, object], keys: KeyTree = VALUES_KEYS) -> list[str]:
    """The keys of ``values`` the chart does not document, as dotted paths.

    Recurses only where ``VALUES_KEYS`` has sub-keys; free-form values (``nodeSelector``,
    ``tolerations``, ``affinity``, ``podAnnotations``, ``controller.resources``,
    ``extraVolumes``, ...) are opaque.
    """
    return _key_problems(values, keys, "")


def _key_problems(values: Mapping[str, object], keys: KeyTree, path: str) -> list[str]:
    found: list[str] = []
    for key, value in values.items():
        where = _join(path, str(key))
        if key not in keys:
            note = _GONE.get(where)
            found.append(
                f"{where}: not a documented value of chart {KARPENTER_VERSION}"
                + (f" ({note})" if note else "")
            )
            continue
        sub = keys[key]
        if sub is None or value is None:
            continue
        if not isinstance(value, Mapping):
            found.append(f"{where}: expected an object, got {_type_name(value)}")
            continue
        found += _key_problems(value, sub, where)
    return found
