"""The stack's config keys and the typed settings they become.

``KEYS`` declares every project key once (its Pulumi schema type); ``Pulumi.yaml`` holds
the same keys with their descriptions and defaults, and a test keeps the two in step.
``nodeGroups`` is a map keyed by pool name whose entries have the fields of
``POOL_FIELDS``; a field left out takes the pool preset's default. ``infra.config``
reads and validates values into ``Settings``; import from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from components._aws import SupportType
from components._validate import ValidationError
from components.foundation.network import NatStrategy
from infra.config_inference import InferenceSettings

PROJECT = "mlplatform"
KeyType = Literal["string", "integer", "boolean", "array", "object"]
Provisioner = Literal["managed", "karpenter"]
PoolCapacity = Literal["ON_DEMAND", "SPOT", "SPOT_OR_ON_DEMAND"]
"""A pool's capacity: ``SPOT_OR_ON_DEMAND`` (spot preferred) only for Karpenter pools."""

ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver")
POOL_FIELDS: dict[str, KeyType] = {
    "preset": "string",
    "instanceTypes": "array",
    "minSize": "integer",
    "maxSize": "integer",
    "capacityType": "string",
    "diskSizeGib": "integer",
    "amiType": "string",
    "criticalAddonsOnly": "boolean",
    "provisioner": "string",
    "cpuLimit": "integer",
    "memoryLimitGib": "integer",
    "gpuLimit": "integer",
}
"""The fields of one ``nodeGroups.<pool>`` entry."""

KEYS: dict[str, KeyType] = {
    "clusterName": "string",
    "kubernetesVersion": "string",
    "supportType": "string",
    "deletionProtection": "boolean",
    "vpcCidr": "string",
    "azCount": "integer",
    "natStrategy": "string",
    "interfaceEndpoints": "boolean",
    "endpointPublicAccess": "boolean",
    "publicAccessCidrs": "array",
    "privateAccessCidrs": "array",
    "adminRoleArns": "array",
    "deployRoleArn": "string",
    "logRetentionDays": "integer",
    "flowLogRetentionDays": "integer",
    "protect": "boolean",
    "karpenterAmiAlias": "string",
    "karpenterReplicas": "integer",
    "prometheusRetention": "string",
    "prometheusRetentionSize": "string",
    "prometheusStorageGib": "integer",
    "alertWebhookUrl": "string",
    "jaegerStorage": "string",
    "jaegerRetention": "string",
    "sloAvailabilityPercent": "string",
    "sloLatencyP95Ms": "integer",
    "sloErrorRatePercent": "string",
    "runbookBaseUrl": "string",
    "mlEngineerRoleArns": "array",
    "ingress.public": "boolean",
    "ingress.domain": "string",
    "ingress.hostedZoneId": "string",
    "ingress.gatewayReplicas": "integer",
    "mesh.istiodReplicas": "integer",
    "mesh.traceSamplingPercent": "string",
    "vault.enabled": "boolean",
    "vault.replicas": "integer",
    "vault.dataStorageGib": "integer",
    "vault.auditStorageGib": "integer",
    "vault.ui": "boolean",
    **{f"addonVersions.{addon}": "string" for addon in ADDONS},
    "mlflow.image": "string",
    "mlflow.instanceClass": "string",
    "mlflow.allocatedStorageGib": "integer",
    "mlflow.maxAllocatedStorageGib": "integer",
    "mlflow.backupRetentionDays": "integer",
    "mlflow.multiAz": "boolean",
    "mlflow.deletionProtection": "boolean",
    "mlflow.replicas": "integer",
    "mlflow.workers": "integer",
    "mlflow.ciRunnerCidrs": "array",
    "mlflow.accessLogBucket": "string",
    "backups.schedule": "string",
    "backups.ttlHours": "integer",
    "backups.rpoHours": "integer",
    "backups.databaseRpoMinutes": "integer",
    "backups.vaultSnapshotSchedule": "string",
    "backups.vaultSnapshotRetentionDays": "integer",
    "backups.vaultSnapshotRpoHours": "integer",
    "nodeGroups": "object",
    "inference": "object",
}
"""Every config key (project namespace) and its Pulumi schema type. Dotted keys are paths
into the structured objects ``addonVersions``, ``ingress``, ``mesh`` and ``vault``;
``nodeGroups`` is a map of pools."""

OBJECT_ROOTS = ("addonVersions", "ingress", "mesh", "mlflow", "backups", "vault")
"""Objects whose leaves are declared one by one in ``KEYS`` and ``Pulumi.yaml``."""


class ConfigError(ValidationError):
    """The stack configuration is invalid; ``problems`` lists one line per bad key.

    A ``pulumi.RunError`` (through ``ValidationError``), so that ``pulumi preview``/``up``
    print just the message (no stack trace), as the offline plan does.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        super().__init__("stack configuration", problems)


@dataclass(frozen=True)
class NodeGroupSettings:
    """One node pool's settings (``mlplatform:nodeGroups.<pool>``); ``None`` means the
    preset's default."""

    preset: str
    provisioner: Provisioner = "managed"
    instance_types: tuple[str, ...] | None = None
    min_size: int | None = None
    max_size: int | None = None
    capacity_type: PoolCapacity | None = None
    disk_size_gib: int | None = None
    ami_type: str | None = None
    critical_addons_only: bool = False
    cpu_limit: int | None = None
    memory_limit_gib: int | None = None
    gpu_limit: int | None = None


@dataclass(frozen=True)
class MlflowSettings:
    """The registry's settings (``mlplatform:mlflow.*``)."""

    image: str
    instance_class: str
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    backup_retention_days: int
    multi_az: bool
    deletion_protection: bool
    replicas: int
    workers: int
    ci_runner_cidrs: tuple[str, ...]
    access_log_bucket: str | None


@dataclass(frozen=True)
class BackupSettings:
    """Velero's schedules and the recovery point objectives (``mlplatform:backups.*``)."""

    schedule: str
    ttl_hours: int
    rpo_hours: int
    database_rpo_minutes: int
    vault_snapshot_schedule: str = "0 * * * *"
    vault_snapshot_retention_days: int = 30
    vault_snapshot_rpo_hours: int = 2


@dataclass(frozen=True)
class Settings:
    """The validated settings of one stack; see ``docs/configuration.md`` for each key."""

    cluster_name: str
    kubernetes_version: str
    support_type: SupportType
    deletion_protection: bool
    vpc_cidr: str
    az_count: int
    nat_strategy: NatStrategy
    interface_endpoints: bool
    endpoint_public_access: bool
    public_access_cidrs: tuple[str, ...]
    private_access_cidrs: tuple[str, ...]
    admin_role_arns: tuple[str, ...]
    deploy_role_arn: str | None
    log_retention_days: int
    flow_log_retention_days: int
    protect: bool
    karpenter_ami_alias: str
    karpenter_replicas: int
    prometheus_retention: str
    prometheus_retention_size: str
    prometheus_storage_gib: int
    jaeger_storage: str
    jaeger_retention: str
    slo_availability_percent: float
    slo_latency_p95_ms: int
    slo_error_rate_percent: float
    runbook_base_url: str
    addon_versions: Mapping[str, str]
    node_groups: Mapping[str, NodeGroupSettings]
    mlflow: MlflowSettings
    backups: BackupSettings
    ml_engineer_role_arns: tuple[str, ...] = ()
    ingress_public: bool = False
    ingress_domain: str = ""
    ingress_hosted_zone_id: str = ""
    ingress_gateway_replicas: int = 2
    mesh_istiod_replicas: int = 2
    mesh_trace_sampling_percent: float = 1.0
    vault_enabled: bool = True
    vault_replicas: int = 3
    vault_data_storage_gib: int = 10
    vault_audit_storage_gib: int = 10
    vault_ui: bool = False
    alert_webhook_url: str | None = field(default=None, repr=False)
    """A secret (the stack stores it encrypted); never printed."""
    inference: InferenceSettings | None = None
    """The inference services (``mlplatform:inference``); ``None``: none."""

    def pool_for(self, preset: str) -> str | None:
        """The first pool (by name) built from ``preset``, if any."""
        names = sorted(n for n, p in self.node_groups.items() if p.preset == preset)
        return names[0] if names else None

    @property
    def system_pool(self) -> str:
        """The first pool (by name) built from the ``system`` preset: CoreDNS runs there."""
        return sorted(name for name, pool in self.node_groups.items() if pool.preset == "system")[0]

    def pools(self, provisioner: Provisioner) -> list[str]:
        """The names (sorted) of the pools ``provisioner`` provides."""
        return sorted(n for n, p in self.node_groups.items() if p.provisioner == provisioner)


def full_key(key: str) -> str:
    """Return the namespaced name of a project key (``azCount`` -> ``mlplatform:azCount``)."""
    return f"{PROJECT}:{key}"
