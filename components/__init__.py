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
from components.services.gpu import GpuSupport, GpuSupportArgs
from components.services.observability import (
    Observability,
    ObservabilityArgs,
    validate_observability_args,
)
from components.services.observability_rules import SloTargets
from components.workloads.mlflow_server import (
    MlflowServer,
    MlflowServerArgs,
    validate_mlflow_server_args,
)

__all__ = [
    "PRESETS",
    "Backups",
    "BackupsArgs",
    "Cluster",
    "ClusterAddons",
    "ClusterAddonsArgs",
    "ClusterArgs",
    "GpuSupport",
    "GpuSupportArgs",
    "Karpenter",
    "KarpenterArgs",
    "KarpenterPool",
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
    "ValidationError",
    "karpenter_pool",
    "preset_args",
    "validate_backups_args",
    "validate_cluster_addons_args",
    "validate_cluster_args",
    "validate_karpenter_args",
    "validate_mlflow_server_args",
    "validate_network_args",
    "validate_node_group_args",
    "validate_observability_args",
    "validate_service_account_role_args",
]
