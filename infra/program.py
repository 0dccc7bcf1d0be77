"""The composition root: settings -> foundation -> services -> workloads.

``program`` is what ``pulumi up`` runs (through ``infra/__main__.py``) and what the
offline plan and the tests run on the mock engine. Each stage returns a small frozen
result that the next stage builds on; providers flow down through ``opts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components import (
    Backups,
    Cluster,
    ClusterAddons,
    ContainerImage,
    EventAutoscaling,
    EventAutoscalingArgs,
    GpuSupport,
    GpuSupportArgs,
    InferenceGateway,
    InferenceGatewayArgs,
    InferenceService,
    Ingress,
    Karpenter,
    LoadBalancerController,
    Mesh,
    MlflowServer,
    Network,
    NodeGroup,
    Observability,
    Tenancy,
    Vault,
    VaultSnapshots,
)
from components._tokens import type_token, with_aliases
from infra import stack_args
from infra import stack_args_mesh as mesh_stack
from infra import stack_args_vault as vault_stack
from infra.config import Settings, load_settings
from infra.stack_args import Placeholders


@dataclass(frozen=True)
class Foundation:
    """The AWS the cluster stands on."""

    network: Network
    cluster: Cluster
    node_groups: Mapping[str, NodeGroup]
    addons: ClusterAddons
    deploy: Placeholders
    """The network's and the cluster's deploy-time values, for the later stages' args."""


@dataclass(frozen=True)
class Services:
    """The in-cluster platform services."""

    karpenter: Karpenter | None
    """Provides the Karpenter pools; None when every pool is managed."""
    gpu: GpuSupport | None
    """The NVIDIA device plugin and DCGM exporter; None without a GPU pool."""
    observability: Observability
    """Prometheus, Alertmanager, Grafana, the OpenTelemetry Collector and Jaeger."""
    load_balancer: LoadBalancerController
    """The AWS Load Balancer Controller (the gateway's NLB)."""
    mesh: Mesh
    """Istio: STRICT mTLS, the ingress gateway's pods; ``mesh.control_plane`` is what
    application namespaces (``components.application_namespace``) pass as ``mesh``."""
    ingress: Ingress
    """cert-manager, the issuers (``internal-ca`` for in-cluster TLS), the HTTPS Gateway
    and its NLB Service."""
    tenancy: Tenancy
    """The ``ml-serving`` namespace, the ``ml-engineer`` Role and its access entries."""
    backups: Backups
    """Velero, its backup bucket and the schedules of the stateful namespaces."""
    vault: Vault | None
    """Vault (raft HA, KMS auto-unseal, TLS from ``internal-ca``); None when
    ``vault.enabled`` is off."""
    event_autoscaling: EventAutoscaling | None = None
    """KEDA, which scales the inference services; None without inference services."""


@dataclass(frozen=True)
class Workloads:
    """What the platform runs."""

    mlflow: MlflowServer
    """The MLflow tracking server and model registry (RDS, S3, the server's pods)."""
    mlflow_image: ContainerImage
    """The MLflow server image's repository and digest."""
    image: ContainerImage | None = None
    """The serving image's repository and digest; None without inference services."""
    inference: Mapping[str, InferenceService] | None = None
    """The inference services by name."""


def build_foundation(settings: Settings) -> Foundation:
    """Network -> Cluster (+ its Kubernetes provider) -> node groups -> cluster add-ons.

    Resource names derive from ``settings.cluster_name`` so that two stacks can share an
    account. Node groups wait for the network add-ons only; CoreDNS and the EBS CSI
    driver wait for the system pool only (a GPU pool at zero nodes never delays them).
    """
    name = settings.cluster_name
    tags = stack_args.platform_tags(settings)
    protected = pulumi.ResourceOptions(protect=settings.protect)

    network = Network(name, stack_args.network_args(settings, tags), opts=protected)
    on_network = Placeholders(vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids)
    cluster = Cluster(name, stack_args.cluster_args(settings, tags, on_network), opts=protected)
    # Before the token rule the Cluster was mlplatform:cluster:Cluster, with CoreDNS and
    # the EBS CSI driver as its children: their former URNs keep an existing stack's state.
    stack, project = pulumi.get_stack(), pulumi.get_project()
    former_cluster = f"urn:pulumi:{stack}::{project}::mlplatform:cluster:Cluster::{name}"
    on_cluster = Placeholders(
        former_cluster_urn=former_cluster,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        cluster_name=cluster.cluster_name,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        cluster_endpoint=cluster.endpoint,
        cluster_security_group_id=cluster.cluster_security_group_id,
    )
    node_groups = {
        pool: NodeGroup(
            f"{name}-{pool}",
            stack_args.node_group_args(settings, pool, tags, on_cluster),
            # The add-ons are named, not the Cluster component: depending on the
            # component would also wait for everything parented to it.
            opts=pulumi.ResourceOptions(depends_on=list(cluster.bootstrap_addons.values())),
        )
        for pool in settings.pools("managed")
    }
    addons = ClusterAddons(
        name,
        stack_args.cluster_addons_args(settings, tags, on_cluster),
        opts=pulumi.ResourceOptions(
            parent=cluster,
            depends_on=[node_groups[settings.system_pool]],
            providers=[cluster.provider],
        ),
    )
    return Foundation(
        network=network, cluster=cluster, node_groups=node_groups, addons=addons, deploy=on_cluster
    )


def build_services(settings: Settings, foundation: Foundation) -> Services:
    """The in-cluster platform services, through the cluster's Kubernetes provider.

    Karpenter (when a pool is Karpenter's) and the observability stack run on the system
    pool, so they wait for the cluster add-ons; the NVIDIA stack is installed when any
    pool is a GPU pool, after the Prometheus Operator (its exporter's ServiceMonitor).
    Then the load balancer controller, the mesh (tracing to the collector), the ingress
    (certificates, Gateway, NLB), the ML tenancy, and Vault (its listener's certificate
    after cert-manager, its volumes after the EBS CSI driver) with its raft snapshot
    CronJob writing to Velero's backup bucket.
    """
    name = settings.cluster_name
    tags = stack_args.platform_tags(settings)
    cluster = foundation.cluster
    in_cluster = pulumi.ResourceOptions(providers=[cluster.provider])
    karpenter = None
    if settings.pools("karpenter"):
        karpenter = Karpenter(
            f"{name}-karpenter",
            stack_args.karpenter_args(settings, tags, foundation.deploy),
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[foundation.addons])
            ),
        )
    on_system = pulumi.ResourceOptions(depends_on=[foundation.addons])
    observability = Observability(
        f"{name}-observability",
        stack_args.observability_args(settings, foundation.addons.storage_class),
        opts=pulumi.ResourceOptions.merge(in_cluster, on_system),
    )
    gpu = None
    if any(pool.preset == "gpu" for pool in settings.node_groups.values()):
        # The DCGM exporter's ServiceMonitor needs the operator's CRDs: after the release.
        gpu = GpuSupport(
            f"{name}-gpu",
            GpuSupportArgs(service_monitor=True),
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[observability.prometheus_release])
            ),
        )
    in_vpc = pulumi.ResourceOptions.merge(in_cluster, on_system)
    load_balancer = LoadBalancerController(
        f"{name}-lb-controller",
        mesh_stack.load_balancer_args(settings, tags, foundation.deploy),
        opts=in_vpc,
    )
    mesh = Mesh(
        f"{name}-mesh",
        mesh_stack.mesh_args(settings, observability.otlp_endpoint),
        opts=in_vpc,
    )
    # The gateway's Service waits for the controller and names the NLB's subnets, so it
    # is deleted before both: the controller can still remove the NLB and its interfaces.
    ingress = Ingress(
        f"{name}-ingress",
        mesh_stack.ingress_args(
            settings,
            foundation.deploy,
            mesh=mesh,
            load_balancer=load_balancer,
            public_subnet_ids=foundation.network.public_subnet_ids,
        ),
        opts=in_vpc,
    )
    tenancy = Tenancy(
        f"{name}-tenancy",
        mesh_stack.tenancy_args(settings, tags, foundation.deploy, mesh=mesh),
        opts=in_vpc,
    )
    event_autoscaling = None
    if settings.inference is not None and settings.inference.services:
        # KEDA's ServiceMonitors need the operator's CRDs: after the release.
        event_autoscaling = EventAutoscaling(
            f"{name}-keda",
            EventAutoscalingArgs(system_pool=settings.system_pool),
            opts=pulumi.ResourceOptions.merge(
                in_cluster,
                pulumi.ResourceOptions(depends_on=[observability.prometheus_release]),
            ),
        )
    backups = Backups(
        f"{name}-backups",
        stack_args.backups_args(settings, tags, foundation.deploy),
        # The backup bucket outlives a mistaken destroy, like the registry.
        opts=pulumi.ResourceOptions.merge(
            in_cluster,
            pulumi.ResourceOptions(depends_on=[foundation.addons], protect=settings.protect),
        ),
    )
    vault = None
    if settings.vault_enabled:
        vault = Vault(
            f"{name}-vault",
            vault_stack.vault_args(
                settings,
                tags,
                foundation.deploy,
                storage_class=foundation.addons.storage_class,
                issuer=ingress.internal_issuer,
                cert_manager=ingress.cert_manager,
                client_apps=(tenancy.serving,),
            ),
            opts=in_vpc,
        )
        # Into the backup bucket, once Vault's namespace and CA Secret exist.
        VaultSnapshots(
            f"{name}-vault-snapshots",
            vault_stack.vault_snapshots_args(settings, tags, foundation.deploy, backups=backups),
            opts=pulumi.ResourceOptions.merge(
                in_vpc, pulumi.ResourceOptions(depends_on=[vault.release])
            ),
        )
    return Services(
        karpenter=karpenter,
        gpu=gpu,
        observability=observability,
        load_balancer=load_balancer,
        mesh=mesh,
        ingress=ingress,
        tenancy=tenancy,
        backups=backups,
        event_autoscaling=event_autoscaling,
        vault=vault,
    )


def build_workloads(settings: Settings, foundation: Foundation, services: Services) -> Workloads:
    """What the platform runs, on top of the services: the MLflow server's image and the
    server (on the system pool, after the cluster add-ons), the serving image, and each
    inference service after the CRDs its custom resources need (Prometheus Operator,
    KEDA, Istio)."""
    name = settings.cluster_name
    tags = stack_args.platform_tags(settings)
    in_cluster = pulumi.ResourceOptions(providers=[foundation.cluster.provider])
    mlflow_image = ContainerImage(
        f"{name}-mlflow-image", stack_args.mlflow_image_args(settings, tags)
    )
    mlflow = MlflowServer(
        f"{name}-mlflow",
        stack_args.mlflow_server_args(settings, tags, foundation.deploy, mlflow_image.image),
        opts=pulumi.ResourceOptions.merge(
            in_cluster,
            pulumi.ResourceOptions(depends_on=[foundation.addons], protect=settings.protect),
        ),
    )
    inference = settings.inference
    if inference is None or not inference.services or services.event_autoscaling is None:
        return Workloads(mlflow=mlflow, mlflow_image=mlflow_image)
    # Formerly its own ServingImage type: the alias keeps the stack's repository and build.
    image = ContainerImage(
        f"{name}-serving",
        stack_args.serving_image_args(settings, tags),
        opts=with_aliases(None, type_token("ServingImage")),
    )
    # Istio's CRDs come with the mesh's releases; the routes name the ingress Gateway.
    on_mesh = pulumi.ResourceOptions(depends_on=[services.mesh.control_plane, services.ingress])
    InferenceGateway(
        f"{name}-inference-gateway",
        InferenceGatewayArgs(),
        opts=pulumi.ResourceOptions.merge(in_cluster, on_mesh),
    )
    serving = services.tenancy.serving
    after = [
        services.observability.prometheus_release,
        services.event_autoscaling.release,
        services.mesh.control_plane,
        services.ingress,
        serving.namespace,
        *serving.policies,
    ]
    built = {
        service: InferenceService(
            service,
            stack_args.inference_service_args(
                settings,
                service,
                tags,
                image=image.image,
                otlp_endpoint=services.observability.otlp_endpoint,
                deploy=foundation.deploy,
                hosts=services.ingress.hosts,
                mlflow=mlflow,
            ),
            opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=after)),
        )
        for service in sorted(inference.services)
    }
    return Workloads(mlflow=mlflow, mlflow_image=mlflow_image, image=image, inference=built)


def build(settings: Settings) -> dict[str, pulumi.Output[object]]:
    """Create the platform's resources for ``settings``; return the stack outputs."""
    foundation = build_foundation(settings)
    services = build_services(settings, foundation)
    workloads = build_workloads(settings, foundation, services)
    observability = services.observability
    cluster, network = foundation.cluster, foundation.network
    serving: dict[str, pulumi.Output[object]] = {}
    if workloads.image is not None:
        serving["servingImage"] = workloads.image.image
    return {
        **serving,
        "clusterName": cluster.cluster_name,
        "clusterEndpoint": cluster.endpoint,
        "kubernetesVersion": pulumi.Output.from_input(cluster.kubernetes_version),
        "kubeconfig": cluster.kubeconfig,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "nodeGroupNames": pulumi.Output.from_input(
            {pool: group.node_group_name for pool, group in foundation.node_groups.items()}
        ),
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
        "otlpEndpoint": observability.otlp_endpoint,
        "grafanaAdminPassword": observability.grafana_admin_password,
        "ingressHosts": pulumi.Output.from_input(services.ingress.hosts),
        "ingressLoadBalancer": services.ingress.load_balancer_hostname,
        "backupBucket": services.backups.bucket_name,
        "mlflowTrackingUri": workloads.mlflow.tracking_uri,
        "mlflowArtifactBucket": workloads.mlflow.bucket_name,
        "mlflowDatabaseEndpoint": workloads.mlflow.database_endpoint,
        "vaultAddress": pulumi.Output.from_input(services.vault.address if services.vault else ""),
    }


def program(previous_kubernetes_version: str | None = None) -> None:
    """Read and validate the stack config, build the platform and export its outputs.

    ``previous_kubernetes_version`` is the version the cluster runs now, when the caller
    knows it (the offline plan reads it from the stack file being replaced). Raises
    ``infra.config.ConfigError`` (before creating anything) naming every bad key.
    """
    outputs = build(load_settings(previous_kubernetes_version))
    for key, value in outputs.items():
        pulumi.export(key, value)
