"""The platform's reusable Pulumi components: the one public face of the package.

Layers: ``foundation`` (AWS the cluster stands on), ``services`` (in-cluster platform
services), ``workloads`` (what the platform runs). Private helpers (``_aws``, ``_k8s``,
``_validate``, ``_tokens``) are shared plumbing, not API.
"""

from components._validate import Problem, ValidationError
from components.foundation.cluster import Cluster, ClusterArgs, validate_cluster_args
from components.foundation.cluster_addons import (
    ClusterAddons,
    ClusterAddonsArgs,
    validate_cluster_addons_args,
)
from components.foundation.irsa import (
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    validate_service_account_role_args,
)
from components.foundation.network import Network, NetworkArgs, validate_network_args
from components.foundation.node_groups import NodeGroup, NodeGroupArgs, validate_node_group_args
from components.foundation.node_presets import PRESETS, preset_args
from components.services.autoscaling import (
    Karpenter,
    KarpenterArgs,
    KarpenterPool,
    karpenter_pool,
    validate_karpenter_args,
)
from components.services.backups import Backups, BackupsArgs, validate_backups_args
from components.services.event_autoscaling import (
    EventAutoscaling,
    EventAutoscalingArgs,
    validate_event_autoscaling_args,
)
from components.services.gpu import GpuSupport, GpuSupportArgs
from components.services.ingress import Ingress, IngressArgs, validate_ingress_args
from components.services.load_balancer import (
    LoadBalancerController,
    LoadBalancerControllerArgs,
    validate_load_balancer_controller_args,
)
from components.services.mesh import Mesh, MeshArgs, validate_mesh_args
from components.services.ml_tenancy import Tenancy, TenancyArgs, validate_tenancy_args
from components.services.observability import (
    Observability,
    ObservabilityArgs,
    validate_observability_args,
)
from components.services.observability_rules import SloTargets
from components.services.tenancy import (
    AppNamespace,
    allow_egress,
    allow_from,
    allow_from_gateway,
    allow_from_prometheus,
    application_namespace,
)
from components.services.vault import Vault, VaultArgs, validate_vault_args
from components.services.vault_snapshots import (
    VaultSnapshots,
    VaultSnapshotsArgs,
    validate_vault_snapshots_args,
)
from components.workloads.container_image import (
    ContainerImage,
    ContainerImageArgs,
    validate_container_image_args,
)
from components.workloads.inference import InferenceService
from components.workloads.inference_args import (
    InferenceServiceArgs,
    validate_inference_service_args,
)
from components.workloads.inference_gateway import InferenceGateway, InferenceGatewayArgs
from components.workloads.mlflow_server import (
    MlflowServer,
    MlflowServerArgs,
    validate_mlflow_server_args,
)

__all__ = [
    "PRESETS",
    "AppNamespace",
    "Backups",
    "BackupsArgs",
    "Cluster",
    "ClusterAddons",
    "ClusterAddonsArgs",
    "ClusterArgs",
    "ContainerImage",
    "ContainerImageArgs",
    "EventAutoscaling",
    "EventAutoscalingArgs",
    "GpuSupport",
    "GpuSupportArgs",
    "InferenceGateway",
    "InferenceGatewayArgs",
    "InferenceService",
    "InferenceServiceArgs",
    "Ingress",
    "IngressArgs",
    "Karpenter",
    "KarpenterArgs",
    "KarpenterPool",
    "LoadBalancerController",
    "LoadBalancerControllerArgs",
    "Mesh",
    "MeshArgs",
    "MlflowServer",
    "MlflowServerArgs",
    "Network",
    "NetworkArgs",
    "NodeGroup",
    "NodeGroupArgs",
    "Observability",
    "ObservabilityArgs",
    "Problem",
    "ServiceAccountRole",
    "ServiceAccountRoleArgs",
    "SloTargets",
    "Tenancy",
    "TenancyArgs",
    "ValidationError",
    "Vault",
    "VaultArgs",
    "VaultSnapshots",
    "VaultSnapshotsArgs",
    "allow_egress",
    "allow_from",
    "allow_from_gateway",
    "allow_from_prometheus",
    "application_namespace",
    "karpenter_pool",
    "preset_args",
    "validate_backups_args",
    "validate_cluster_addons_args",
    "validate_cluster_args",
    "validate_container_image_args",
    "validate_event_autoscaling_args",
    "validate_inference_service_args",
    "validate_ingress_args",
    "validate_karpenter_args",
    "validate_load_balancer_controller_args",
    "validate_mesh_args",
    "validate_mlflow_server_args",
    "validate_network_args",
    "validate_node_group_args",
    "validate_observability_args",
    "validate_service_account_role_args",
    "validate_tenancy_args",
    "validate_vault_args",
    "validate_vault_snapshots_args",
]
