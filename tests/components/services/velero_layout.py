"""The field layout of Velero's chart values and custom resources, for offline checks.

Read by hand from:

* vmware-tanzu/helm-charts at tag ``velero-12.1.0``: ``charts/velero/values.yaml`` (the
  keys the chart documents) and ``templates/schedule.yaml``,
  ``backupstoragelocation.yaml``, ``volumesnapshotlocation.yaml`` (how values become
  objects: a Schedule per ``schedules`` key named ``<fullname>-<key>`` with ``template``
  copied verbatim; locations from the ``configuration`` lists, config values quoted);
* velero-io/velero at tag ``v1.18.2`` (the same CRDs as the chart's appVersion 1.18.1):
  ``config/crd/v1/bases/velero.io_schedules.yaml``, ``velero.io_backupstoragelocations.yaml``
  and ``velero.io_volumesnapshotlocations.yaml``.

Only the structural part is written down; when the pin moves, re-read those files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.components.layout import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    AnyValue,
    Arr,
    Bool,
    Int,
    Layout,
    Map,
    Obj,
    Str,
    req,
)

CHART = ("https://vmware-tanzu.github.io/helm-charts", "velero", "12.1.0")

_LOCATION = {"name", "provider", "bucket", "caCert", "prefix", "default", "validationFrequency"}
VALUES: Layout = {
    "namespace": {"labels"},
    "image": {"repository", "tag", "digest", "pullPolicy", "imagePullSecrets"},
    "nameOverride": None,
    "fullnameOverride": None,
    "annotations": None,
    "secretAnnotations": None,
    "labels": None,
    "podAnnotations": None,
    "podLabels": None,
    "resources": None,
    "resizePolicy": None,
    "hostAliases": None,
    "upgradeJobResources": None,
    "upgradeCRDsJob": None,
    "dnsPolicy": None,
    "initContainers": None,
    "podSecurityContext": POD_SECURITY_CONTEXT,
    "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
    "lifecycle": None,
    "priorityClassName": None,
    "runtimeClassName": None,
    "terminationGracePeriodSeconds": None,
    "livenessProbe": None,
    "readinessProbe": None,
    "tolerations": None,
    "affinity": None,
    "nodeSelector": None,
    "dnsConfig": None,
    "podDisruptionBudget": None,
    "extraVolumes": None,
    "extraVolumeMounts": None,
    "extraObjects": None,
    "metrics": None,
    "kubectl": None,
    "upgradeCRDs": None,
    "cleanUpCRDs": None,
    "configuration": {
        # Lists of locations: their items are checked against LOCATION_ITEMS below.
        "backupStorageLocation": None,
        "volumeSnapshotLocation": None,
        **{
            key: None
            for key in [
                "uploaderType",
                "backupSyncPeriod",
                "fsBackupTimeout",
                "clientBurst",
                "clientPageSize",
                "clientQPS",
                "defaultBackupStorageLocation",
                "defaultItemOperationTimeout",
                "defaultBackupTTL",
                "defaultVolumeSnapshotLocations",
                "disableControllers",
                "disableInformerCache",
                "garbageCollectionFrequency",
                "itemBlockWorkerCount",
                "logFormat",
                "logLevel",
                "metricsAddress",
                "pluginDir",
                "profilerAddress",
                "restoreOnlyMode",
                "restoreResourcePriorities",
                "storeValidationFrequency",
                "terminatingResourceTimeout",
                "defaultSnapshotMoveData",
                "features",
                "dataMoverPrepareTimeout",
                "repositoryMaintenanceJob",
                "namespace",
                "extraArgs",
                "extraEnvVars",
                "defaultVolumesToFsBackup",
                "defaultRepoMaintainFrequency",
            ]
        },
    },
    "rbac": {"create", "clusterAdministrator", "clusterAdministratorName"},
    "serviceAccount": {
        "server": {
            "create",
            "name",
            "annotations",
            "labels",
            "imagePullSecrets",
            "automountServiceAccountToken",
        }
    },
    "credentials": {
        "useSecret",
        "name",
        "existingSecret",
        "secretContents",
        "extraEnvVars",
        "extraSecretRef",
    },
    "backupsEnabled": None,
    "snapshotsEnabled": None,
    "deployNodeAgent": None,
    "nodeAgent": None,
    # A map of schedule name -> the keys schedule.yaml reads.
    "schedules": None,
    "configMaps": None,
}
LOCATION_ITEMS = {
    "backupStorageLocation": _LOCATION
    | {"backupSyncPeriod", "accessMode", "credential", "config", "annotations"},
    "volumeSnapshotLocation": {"name", "provider", "credential", "config", "annotations"},
}
SCHEDULE_KEYS = {
    "disabled",
    "labels",
    "annotations",
    "schedule",
    "useOwnerReferencesInBackup",
    "paused",
    "skipImmediately",
    "template",
}

_STRINGS = Arr(Str())
_LABEL_SELECTOR = Obj(
    {
        "matchLabels": Map(Str()),
        "matchExpressions": Arr(
            Obj({"key": Str(), "operator": Str(), "values": _STRINGS}, req("key", "operator"))
        ),
    }
)
BACKUP_SPEC = Obj(
    {
        "csiSnapshotTimeout": Str(),
        "datamover": Str(),
        "defaultVolumesToFsBackup": Bool(),
        "defaultVolumesToRestic": Bool(),
        "excludedClusterScopedResources": _STRINGS,
        "excludedNamespaceScopedResources": _STRINGS,
        "excludedNamespaces": _STRINGS,
        "excludedResources": _STRINGS,
        "hooks": AnyValue(),
        "includeClusterResources": Bool(),
        "includedClusterScopedResources": _STRINGS,
        "includedNamespaceScopedResources": _STRINGS,
        "includedNamespaces": _STRINGS,
        "includedResources": _STRINGS,
        "itemOperationTimeout": Str(),
        "labelSelector": _LABEL_SELECTOR,
        "orLabelSelectors": Arr(_LABEL_SELECTOR),
        "metadata": Obj({"labels": Map(Str())}),
        "orderedResources": Map(Str()),
        "resourcePolicy": Obj(
            {"apiGroup": Str(), "kind": Str(), "name": Str()}, req("kind", "name")
        ),
        "snapshotMoveData": Bool(),
        "snapshotVolumes": Bool(),
        "storageLocation": Str(),
        "ttl": Str(),
        "uploaderConfig": Obj({"parallelFilesUpload": Int()}),
        "volumeGroupSnapshotLabelKey": Str(),
        "volumeSnapshotLocations": _STRINGS,
    }
)
SCHEDULE_SPEC = Obj(
    {
        "schedule": Str(),
        "template": BACKUP_SPEC,
        "paused": Bool(),
        "skipImmediately": Bool(),
        "useOwnerReferencesInBackup": Bool(),
    },
    req("schedule", "template"),
)
_CREDENTIAL = Obj({"name": Str(), "key": Str(), "optional": Bool()}, req("key"))
BSL_SPEC = Obj(
    {
        "provider": Str(),
        "objectStorage": Obj(
            {"bucket": Str(), "prefix": Str(), "caCert": Str(), "caCertRef": AnyValue()},
            req("bucket"),
        ),
        "config": Map(Str()),
        "credential": _CREDENTIAL,
        "default": Bool(),
        "accessMode": Str(enum=("ReadOnly", "ReadWrite")),
        "backupSyncPeriod": Str(),
        "validationFrequency": Str(),
    },
    req("objectStorage", "provider"),
)
VSL_SPEC = Obj(
    {"provider": Str(), "config": Map(Str()), "credential": _CREDENTIAL}, req("provider")
)
# velero-plugin-for-aws rejects unknown config keys (the location becomes Unavailable).
BSL_CONFIG_KEYS = frozenset(
    [
        "region",
        "s3Url",
        "publicUrl",
        "kmsKeyId",
        "customerKeyEncryptionFile",
        "customerKeyEncryptionSecret",
        "s3ForcePathStyle",
        "signatureVersion",
        "credentialsFile",
        "profile",
        "serverSideEncryption",
        "insecureSkipTLSVerify",
        "enableSharedConfig",
        "tagging",
        "checksumAlgorithm",
    ]
)
VSL_CONFIG_KEYS = frozenset(
    {"region", "profile", "credentialsFile", "enableSharedConfig", "ebsKmsKeyId"}
)


def rendered_schedules(values: Mapping[str, Any], release: str) -> dict[str, dict[str, Any]]:
    """Schedule name -> spec, as ``templates/schedule.yaml`` renders them."""
    found: dict[str, dict[str, Any]] = {}
    for key, schedule in values.get("schedules", {}).items():
        if schedule.get("disabled"):
            continue
        spec: dict[str, Any] = {"schedule": str(schedule["schedule"])}
        for flag in ("paused", "useOwnerReferencesInBackup", "skipImmediately"):
            if schedule.get(flag):
                spec[flag] = schedule[flag]
        spec["template"] = schedule["template"]
        found[f"{release}-{key}"] = spec
    return found


def rendered_bsl(item: Mapping[str, Any]) -> dict[str, Any]:
    """A BackupStorageLocation spec as ``templates/backupstoragelocation.yaml`` renders it."""
    storage = {"bucket": str(item["bucket"])}
    if item.get("prefix"):
        storage["prefix"] = str(item["prefix"])
    spec: dict[str, Any] = {
        "provider": item["provider"],
        "accessMode": item.get("accessMode") or "ReadWrite",
        "objectStorage": storage,
    }
    if item.get("default"):
        spec["default"] = True
    if item.get("config"):
        spec["config"] = {k: str(v) for k, v in item["config"].items()}
    return spec


def rendered_vsl(item: Mapping[str, Any]) -> dict[str, Any]:
    """A VolumeSnapshotLocation spec as ``templates/volumesnapshotlocation.yaml`` renders it."""
    spec: dict[str, Any] = {"provider": item["provider"]}
    if item.get("config"):
        spec["config"] = {k: str(v) for k, v in item["config"].items()}
    return spec
