"""The composition root: settings -> Network -> Cluster -> node groups -> node add-ons.

``program`` is what ``pulumi up`` runs (through ``infra/__main__.py``) and what the
offline plan and the tests run on the mock engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import pulumi

from components.cluster import Cluster, ClusterArgs
from components.network import Network, NetworkArgs
from components.node_groups import NodeGroup, NodeGroupArgs, gpu, spot, system
from infra.config import NodeGroupSettings, Settings, load_settings

PresetFn = Callable[..., NodeGroupArgs]
PRESETS: Mapping[str, PresetFn] = {"system": system, "gpu": gpu, "spot": spot}


def node_group_args(
    preset: str,
    group: NodeGroupSettings,
    *,
    cluster_name: pulumi.Input[str],
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    kubernetes_version: str,
    tags: Mapping[str, str],
) -> NodeGroupArgs:
    """Return the preset's ``NodeGroupArgs`` with the stack's values for one pool.

    The capacity label follows the configured capacity type, so workloads that select
    on ``mlplatform.io/capacity`` land where they expect. Raises ``KeyError`` for an
    unknown preset name.
    """
    args = PRESETS[preset](
        cluster_name=cluster_name,
        subnet_ids=subnet_ids,
        instance_types=group.instance_types,
        min_size=group.min_size,
        max_size=group.max_size,
        tags=tags,
    )
    capacity = "spot" if group.capacity_type == "SPOT" else "on-demand"
    return dataclasses.replace(
        args,
        capacity_type=group.capacity_type,
        disk_size_gib=group.disk_size_gib,
        kubernetes_version=kubernetes_version,
        labels={**args.labels, "mlplatform.io/capacity": capacity},
    )


def build(settings: Settings) -> dict[str, pulumi.Output[object]]:
    """Create the platform's resources for ``settings``; return the stack outputs.

    Resource names derive from ``settings.cluster_name`` so that two stacks can share an
    account. Components raise ``ValueError`` for values ``load_settings`` let through.
    """
    name = settings.cluster_name
    tags = {"mlplatform.io/cluster": name, "mlplatform.io/managed-by": "pulumi"}
    protected = pulumi.ResourceOptions(protect=settings.protect)

    network = Network(
        name,
        NetworkArgs(
            cluster_name=name,
            cidr_block=settings.vpc_cidr,
            az_count=settings.az_count,
            nat_strategy=settings.nat_strategy,
            flow_log_retention_days=settings.flow_log_retention_days,
            tags=tags,
        ),
        opts=protected,
    )
    cluster = Cluster(
        name,
        ClusterArgs(
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            kubernetes_version=settings.kubernetes_version,
            addon_versions=dict(settings.addon_versions),
            cluster_name=name,
            admin_role_arns=settings.admin_role_arns,
            endpoint_public_access=settings.endpoint_public_access,
            public_access_cidrs=settings.public_access_cidrs,
            private_access_cidrs=settings.private_access_cidrs,
            log_retention_days=settings.log_retention_days,
            tags=tags,
        ),
        opts=protected,
    )
    pools = {"system": settings.system, "gpu": settings.gpu, "spot": settings.spot}
    node_groups = {
        preset: NodeGroup(
            f"{name}-{preset}",
            node_group_args(
                preset,
                group,
                cluster_name=cluster.cluster_name,
                subnet_ids=network.private_subnet_ids,
                kubernetes_version=settings.kubernetes_version,
                tags=tags,
            ),
            # Nodes join only once the network add-ons (vpc-cni, kube-proxy) exist. The
            # add-ons are named, not the Cluster component: depending on the component would
            # also wait for its node add-ons (CoreDNS), which themselves wait for these nodes.
            opts=pulumi.ResourceOptions(depends_on=list(cluster.bootstrap_addons.values())),
        )
        for preset, group in pools.items()
    }
    cluster.add_node_addons(depends_on=list(node_groups.values()))

    return {
        "clusterName": cluster.cluster_name,
        "clusterEndpoint": cluster.endpoint,
        "kubeconfig": cluster.kubeconfig,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "nodeGroupNames": pulumi.Output.from_input(
            {preset: group.node_group_name for preset, group in node_groups.items()}
        ),
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
    }


def program() -> None:
    """Read and validate the stack config, build the platform and export its outputs.

    Raises ``infra.config.ConfigError`` (before creating anything) naming every bad key.
    """
    outputs = build(load_settings())
    for key, value in outputs.items():
        pulumi.export(key, value)
