"""From stack settings to component arguments, and back from an Args field to its key.

The program builds its components with these functions, and ``infra.config`` runs the
components' own validators over the same arguments (with placeholder Outputs where a
value only exists at deploy time), so a value rule lives once, in its component, and a
problem is reported under the config key the value came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components import (
    BackupsArgs,
    ClusterAddonsArgs,
    ClusterArgs,
    KarpenterArgs,
    MlflowServer,
    MlflowServerArgs,
    NetworkArgs,
    NodeGroupArgs,
    ObservabilityArgs,
    SloTargets,
    karpenter_pool,
    preset_args,
)
from components.foundation.cluster import BOOTSTRAP_ADDONS
from components.foundation.cluster_addons import NODE_ADDONS
from components.services.ml_tenancy import SERVING_NAMESPACE
from components.workloads.container_image import MLFLOW_SERVER, SERVING, ContainerImageArgs
from components.workloads.inference_args import InferenceServiceArgs, MlflowCredentials
from infra.config_inference import BUILD
from infra.config_keys import Settings

NETWORK_KEYS = {
    "cluster_name": "clusterName",
    "cidr_block": "vpcCidr",
    "az_count": "azCount",
    "nat_strategy": "natStrategy",
    "interface_endpoints": "interfaceEndpoints",
    "flow_log_retention_days": "flowLogRetentionDays",
}
CLUSTER_KEYS = {
    "cluster_name": "clusterName",
    "kubernetes_version": "kubernetesVersion",
    "support_type": "supportType",
    "deletion_protection": "deletionProtection",
    "addon_versions": "addonVersions",
    "admin_role_arns": "adminRoleArns",
    "deploy_role_arn": "deployRoleArn",
    "endpoint_public_access": "endpointPublicAccess",
    "public_access_cidrs": "publicAccessCidrs",
    "private_access_cidrs": "privateAccessCidrs",
    "log_retention_days": "logRetentionDays",
}
CLUSTER_ADDONS_KEYS = {"addon_versions": "addonVersions", "system_pool": "nodeGroups"}
_POOL_FIELD_KEYS = {
    "instance_types": "instanceTypes",
    "min_size": "minSize",
    "max_size": "maxSize",
    "desired_size": "minSize",
    "capacity_type": "capacityType",
    "disk_size_gib": "diskSizeGib",
    "ami_type": "amiType",
}


def pool_keys(pool: str) -> dict[str, str]:
    """Return {NodeGroupArgs field: config key} for pool ``pool``."""
    return {field: f"nodeGroups.{pool}.{key}" for field, key in _POOL_FIELD_KEYS.items()}


def key_for(field: str, keys: Mapping[str, str]) -> str:
    """Return the config key of an Args ``field``: the key of its longest known prefix.
    A top-level mapping field carries its entry over (``addon_versions.coredns`` ->
    ``addonVersions.coredns``); a deeper one names its nearest key
    (``pools.gpu.expire_after`` -> ``nodeGroups.gpu``). Raises ``KeyError`` for a field
    no key sets."""
    parts = field.split(".")
    for end in range(len(parts), 0, -1):
        head = ".".join(parts[:end])
        if head in keys:
            rest = parts[end:] if end == 1 else []
            return ".".join([keys[head], *rest])
    raise KeyError(field)


@dataclass(frozen=True)
class Placeholders:
    """Deploy-time values, as stand-ins when arguments are only validated."""

    vpc_id: pulumi.Input[str] = "vpc-00000000"
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = ("subnet-00000000",)
    cluster_name: pulumi.Input[str] = "cluster"
    oidc_provider_arn: pulumi.Input[str] = "arn:aws:iam::000000000000:oidc-provider/example"
    oidc_issuer: pulumi.Input[str] = "https://oidc.example"
    cluster_endpoint: pulumi.Input[str] = "https://cluster.example"
    cluster_security_group_id: pulumi.Input[str] = "sg-00000000"
    former_cluster_urn: str | None = None


def network_args(settings: Settings, tags: Mapping[str, str]) -> NetworkArgs:
    """The stack's ``NetworkArgs``."""
    return NetworkArgs(
        cluster_name=settings.cluster_name,
        cidr_block=settings.vpc_cidr,
        az_count=settings.az_count,
        nat_strategy=settings.nat_strategy,
        interface_endpoints=settings.interface_endpoints,
        flow_log_retention_days=settings.flow_log_retention_days,
        tags=dict(tags),
    )


def cluster_args(
    settings: Settings, tags: Mapping[str, str], deploy: Placeholders = Placeholders()
) -> ClusterArgs:
    """The stack's ``ClusterArgs`` (network ids from ``deploy``)."""
    return ClusterArgs(
        vpc_id=deploy.vpc_id,
        subnet_ids=deploy.subnet_ids,
        kubernetes_version=settings.kubernetes_version,
        support_type=settings.support_type,
        deletion_protection=settings.deletion_protection,
        addon_versions={a: settings.addon_versions[a] for a in BOOTSTRAP_ADDONS},
        cluster_name=settings.cluster_name,
        admin_role_arns=settings.admin_role_arns,
        deploy_role_arn=settings.deploy_role_arn,
        endpoint_public_access=settings.endpoint_public_access,
        public_access_cidrs=settings.public_access_cidrs,
        private_access_cidrs=settings.private_access_cidrs,
        log_retention_days=settings.log_retention_days,
        tags=dict(tags),
    )


def cluster_addons_args(
    settings: Settings, tags: Mapping[str, str], deploy: Placeholders = Placeholders()
) -> ClusterAddonsArgs:
    """The stack's ``ClusterAddonsArgs`` (cluster and OIDC from ``deploy``)."""
    return ClusterAddonsArgs(
        cluster_name=deploy.cluster_name,
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        addon_versions={a: settings.addon_versions[a] for a in NODE_ADDONS},
        system_pool=settings.system_pool,
        former_parent_urn=deploy.former_cluster_urn,
        tags=dict(tags),
    )


def node_group_args(
    settings: Settings, pool: str, tags: Mapping[str, str], deploy: Placeholders = Placeholders()
) -> NodeGroupArgs:
    """The ``NodeGroupArgs`` of pool ``pool``: its preset, with the stack's values.

    Raises ``KeyError`` for an unknown pool or preset.
    """
    group = settings.node_groups[pool]
    # A Karpenter pool's "spot, else on-demand" has the node shape of a spot pool.
    capacity = "SPOT" if group.capacity_type == "SPOT_OR_ON_DEMAND" else group.capacity_type
    return preset_args(
        group.preset,
        pool=pool,
        cluster_name=deploy.cluster_name,
        subnet_ids=deploy.subnet_ids,
        instance_types=group.instance_types,
        min_size=group.min_size,
        max_size=group.max_size,
        capacity_type=capacity,
        disk_size_gib=group.disk_size_gib,
        ami_type=group.ami_type,
        critical_addons_only=group.critical_addons_only,
        kubernetes_version=settings.kubernetes_version,
        tags=tags,
    )


_KARPENTER_POOL_KEYS = {
    "instance_types": "instanceTypes",
    "capacity_types": "capacityType",
    "disk_size_gib": "diskSizeGib",
    "cpu_limit": "cpuLimit",
    "memory_limit_gib": "memoryLimitGib",
    "gpu_limit": "gpuLimit",
}


def karpenter_keys(settings: Settings) -> dict[str, str]:
    """Return {KarpenterArgs field: config key}, per pool for the pools' fields."""
    keys = {"replicas": "karpenterReplicas", "pools": "nodeGroups", "system_pool": "nodeGroups"}
    for pool in settings.pools("karpenter"):
        keys[f"pools.{pool}"] = f"nodeGroups.{pool}"
        for field, key in _KARPENTER_POOL_KEYS.items():
            keys[f"pools.{pool}.{field}"] = f"nodeGroups.{pool}.{key}"
        keys[f"pools.{pool}.ami_alias"] = "karpenterAmiAlias"
    return keys


def karpenter_args(
    settings: Settings, tags: Mapping[str, str], deploy: Placeholders = Placeholders()
) -> KarpenterArgs:
    """The stack's ``KarpenterArgs``: one pool per ``provisioner: karpenter`` entry."""
    pools = [
        karpenter_pool(
            group.preset,
            pool=name,
            ami_alias=settings.karpenter_ami_alias,
            instance_types=group.instance_types,
            capacity=group.capacity_type,
            disk_size_gib=group.disk_size_gib,
            ami_type=group.ami_type,
            cpu_limit=group.cpu_limit,
            memory_limit_gib=group.memory_limit_gib,
            gpu_limit=group.gpu_limit,
        )
        for name, group in sorted(settings.node_groups.items())
        if group.provisioner == "karpenter"
    ]
    return KarpenterArgs(
        cluster_name=settings.cluster_name,
        cluster_endpoint=deploy.cluster_endpoint,
        cluster_security_group_id=deploy.cluster_security_group_id,
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        pools=pools,
        system_pool=settings.system_pool,
        replicas=settings.karpenter_replicas,
        tags=dict(tags),
    )


OBSERVABILITY_KEYS = {
    "prometheus_retention": "prometheusRetention",
    "prometheus_retention_size": "prometheusRetentionSize",
    "prometheus_storage_gib": "prometheusStorageGib",
    "jaeger_storage": "jaegerStorage",
    "jaeger_retention": "jaegerRetention",
    "slo.availability_percent": "sloAvailabilityPercent",
    "slo.latency_p95_ms": "sloLatencyP95Ms",
    "slo.error_rate_percent": "sloErrorRatePercent",
    "runbook_base_url": "runbookBaseUrl",
}


def slo_targets(settings: Settings) -> SloTargets:
    """The inference service's SLO targets (alerts, SLA report)."""
    return SloTargets(
        availability_percent=settings.slo_availability_percent,
        latency_p95_ms=settings.slo_latency_p95_ms,
        error_rate_percent=settings.slo_error_rate_percent,
    )


def observability_args(
    settings: Settings, storage_class: pulumi.Input[str] = "gp3-encrypted"
) -> ObservabilityArgs:
    """The stack's ``ObservabilityArgs`` (the webhook URL stays a secret Output)."""
    url = settings.alert_webhook_url
    return ObservabilityArgs(
        storage_class=storage_class,
        prometheus_retention=settings.prometheus_retention,
        prometheus_retention_size=settings.prometheus_retention_size,
        prometheus_storage_gib=settings.prometheus_storage_gib,
        alert_webhook_url=pulumi.Output.secret(url) if url else None,
        jaeger_storage=settings.jaeger_storage,  # type: ignore[arg-type]  # checked by the validator
        jaeger_retention=settings.jaeger_retention,
        slo=slo_targets(settings),
        runbook_base_url=settings.runbook_base_url,
        inference_namespace=SERVING_NAMESPACE,
        system_pool=settings.system_pool,
    )


BACKUPS_KEYS = {
    "schedule": "backups.schedule",
    "ttl_hours": "backups.ttlHours",
    "vault_snapshot_retention_days": "backups.vaultSnapshotRetentionDays",
    "system_pool": "nodeGroups",
}


def backups_args(
    settings: Settings, tags: Mapping[str, str], deploy: Placeholders = Placeholders()
) -> BackupsArgs:
    """The stack's ``BackupsArgs``: one schedule per stateful namespace."""
    return BackupsArgs(
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        schedule=settings.backups.schedule,
        ttl_hours=settings.backups.ttl_hours,
        vault_snapshot_retention_days=settings.backups.vault_snapshot_retention_days,
        system_pool=settings.system_pool,
        tags=dict(tags),
    )


MLFLOW_KEYS = {
    "image": "mlflow.image",
    "instance_class": "mlflow.instanceClass",
    "allocated_storage_gib": "mlflow.allocatedStorageGib",
    "max_allocated_storage_gib": "mlflow.maxAllocatedStorageGib",
    "backup_retention_days": "mlflow.backupRetentionDays",
    "multi_az": "mlflow.multiAz",
    "deletion_protection": "mlflow.deletionProtection",
    "replicas": "mlflow.replicas",
    "workers": "mlflow.workers",
    "ci_runner_cidrs": "mlflow.ciRunnerCidrs",
    "access_log_bucket": "mlflow.accessLogBucket",
    "system_pool": "nodeGroups",
}


def mlflow_server_args(
    settings: Settings,
    tags: Mapping[str, str],
    deploy: Placeholders = Placeholders(),
    image: pulumi.Input[str] | None = None,
) -> MlflowServerArgs:
    """The stack's ``MlflowServerArgs``, in the cluster's VPC and private subnets. ``image``
    is the server image by digest (default the configured one, or a placeholder for a
    build)."""
    m = settings.mlflow
    if image is None:
        image = PLACEHOLDER_MLFLOW_IMAGE if m.image == BUILD else m.image
    return MlflowServerArgs(
        image=image,
        vpc_id=deploy.vpc_id,
        vpc_cidr=settings.vpc_cidr,
        subnet_ids=deploy.subnet_ids,
        cluster_security_group_id=deploy.cluster_security_group_id,
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        instance_class=m.instance_class,
        allocated_storage_gib=m.allocated_storage_gib,
        max_allocated_storage_gib=m.max_allocated_storage_gib,
        backup_retention_days=m.backup_retention_days,
        multi_az=m.multi_az,
        deletion_protection=m.deletion_protection,
        replicas=m.replicas,
        workers=m.workers,
        ci_runner_cidrs=m.ci_runner_cidrs,
        access_log_bucket=m.access_log_bucket,
        system_pool=settings.system_pool,
        tags=dict(tags),
    )


def platform_tags(settings: Settings) -> dict[str, str]:
    """Tags on every taggable resource of the stack."""
    return {"mlplatform.io/cluster": settings.cluster_name, "mlplatform.io/managed-by": "pulumi"}


MLFLOW_TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"
"""The in-cluster MLflow server (service ``mlflow`` in namespace ``mlflow``, port 5000)."""
PLACEHOLDER_IMAGE = (
    "000000000000.dkr.ecr.us-west-2.amazonaws.com/mlplatform-serving@sha256:" + "0" * 64
)
"""Stands in for an image still to be built when arguments are only validated."""
PLACEHOLDER_MLFLOW_IMAGE = (
    "000000000000.dkr.ecr.us-west-2.amazonaws.com/mlplatform-mlflow-server@sha256:" + "0" * 64
)
"""The MLflow server's stand-in, likewise."""


def serving_image_args(settings: Settings, tags: Mapping[str, str]) -> ContainerImageArgs:
    """The serving image's ``ContainerImageArgs`` (``inference.image``: a digest, or
    ``build``)."""
    inference = settings.inference
    image = inference.image if inference else BUILD
    return ContainerImageArgs(SERVING, image=None if image == BUILD else image, tags=dict(tags))


def mlflow_image_args(settings: Settings, tags: Mapping[str, str]) -> ContainerImageArgs:
    """The MLflow server image's ``ContainerImageArgs`` (``mlflow.image``: a digest, or
    ``build``)."""
    image = settings.mlflow.image
    return ContainerImageArgs(
        MLFLOW_SERVER, image=None if image == BUILD else image, tags=dict(tags)
    )


def inference_service_args(
    settings: Settings,
    service: str,
    tags: Mapping[str, str],
    *,
    image: pulumi.Input[str] | None = None,
    otlp_endpoint: pulumi.Input[str] = "http://otel-collector.observability.svc:4318",
    deploy: Placeholders = Placeholders(),
    hosts: Sequence[str] = ("*",),
    mlflow: MlflowServer | None = None,
) -> InferenceServiceArgs:
    """The ``InferenceServiceArgs`` of ``inference.services.<service>``. ``image`` is the
    serving image by digest (default the configured one, or a placeholder for a build).

    Raises ``KeyError`` for a service the stack does not configure.
    """
    inference = settings.inference
    assert inference is not None, "no mlplatform:inference in this stack"
    entry = inference.services[service]
    if image is None:
        image = PLACEHOLDER_IMAGE if inference.image == BUILD else inference.image
    assert entry.auth is not None  # required by infra.config
    return InferenceServiceArgs(
        namespace=SERVING_NAMESPACE,
        image=image,
        models=entry.models,
        auth=entry.auth,
        mlflow_tracking_uri=mlflow.tracking_uri if mlflow else MLFLOW_TRACKING_URI,
        artifact_bucket_arn=mlflow.bucket_arn if mlflow else None,
        artifact_kms_key_arn=mlflow.key_arn if mlflow else None,
        mlflow_credentials=(
            MlflowCredentials(mlflow.reader.username, mlflow.reader.password, mlflow.reader.job)
            if mlflow
            else None
        ),
        otlp_endpoint=otlp_endpoint,
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        pool=settings.pool_for(entry.placement) or entry.placement,
        placement=entry.placement,  # type: ignore[arg-type]  # checked by the validator
        resources=entry.resources,
        min_replicas=entry.min_replicas,
        max_replicas=entry.max_replicas,
        batching=entry.batching,
        rollout=entry.rollout,
        rate_limit=entry.rate_limit,
        allow_model_aliases=inference.allow_model_aliases,
        runbook_base_url=settings.runbook_base_url,
        hosts=tuple(hosts),
        tags=dict(tags),
    )
