"""Stack settings to the arguments of the mesh, ingress and tenancy components, and their
fields back to config keys (the same scheme as ``infra/stack_args.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components import (
    IngressArgs,
    LoadBalancerController,
    LoadBalancerControllerArgs,
    Mesh,
    MeshArgs,
    TenancyArgs,
)
from components.services.tenancy import GATEWAY_NAMESPACE
from infra.config_keys import Settings
from infra.stack_args import Placeholders

MESH_KEYS = {
    "istiod_replicas": "mesh.istiodReplicas",
    "gateway_replicas": "ingress.gatewayReplicas",
    "trace_sampling_percent": "mesh.traceSamplingPercent",
}
INGRESS_KEYS = {
    "public": "ingress.public",
    "domain": "ingress.domain",
    "hosted_zone_id": "ingress.hostedZoneId",
}
TENANCY_KEYS = {"ml_engineer_role_arns": "mlEngineerRoleArns"}
VALIDATING = Placeholders()
"""Stand-ins for deploy-time values while arguments are only validated."""
OTLP_PLACEHOLDER = "http://otel-collector-opentelemetry-collector.observability.svc:4318"


def mesh_args(
    settings: Settings,
    otlp_endpoint: pulumi.Input[str] = OTLP_PLACEHOLDER,
) -> MeshArgs:
    """The stack's ``MeshArgs`` (the collector's address from Observability). No node
    security group is passed: the nodes join the cluster security group (``mesh.py``)."""
    return MeshArgs(
        otlp_endpoint=otlp_endpoint,
        istiod_replicas=settings.mesh_istiod_replicas,
        gateway_replicas=settings.ingress_gateway_replicas,
        trace_sampling_percent=settings.mesh_trace_sampling_percent,
        system_pool=settings.system_pool,
    )


def load_balancer_args(
    settings: Settings, tags: Mapping[str, str], deploy: Placeholders = VALIDATING
) -> LoadBalancerControllerArgs:
    """The stack's ``LoadBalancerControllerArgs`` (VPC and OIDC from ``deploy``)."""
    return LoadBalancerControllerArgs(
        cluster_name=deploy.cluster_name,
        vpc_id=deploy.vpc_id,
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        system_pool=settings.system_pool,
        tags=dict(tags),
    )


def ingress_args(
    settings: Settings,
    deploy: Placeholders = VALIDATING,
    *,
    mesh: Mesh | None = None,
    load_balancer: LoadBalancerController | None = None,
    public_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
) -> IngressArgs:
    """The stack's ``IngressArgs``: the gateway's namespace and what the Gateway and
    its Service wait for come from ``mesh`` and ``load_balancer`` when built; the NLB
    sits in ``public_subnet_ids`` when public, else in the private subnets."""
    subnets = public_subnet_ids if settings.ingress_public else deploy.subnet_ids
    return IngressArgs(
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        gateway_namespace=mesh.gateway_namespace if mesh else GATEWAY_NAMESPACE,
        mesh=mesh.control_plane if mesh else None,
        load_balancer=load_balancer.release if load_balancer else None,
        public=settings.ingress_public,
        load_balancer_subnet_ids=subnets,
        domain=settings.ingress_domain,
        hosted_zone_id=settings.ingress_hosted_zone_id,
        system_pool=settings.system_pool,
    )


def tenancy_args(
    settings: Settings,
    tags: Mapping[str, str],
    deploy: Placeholders = VALIDATING,
    mesh: Mesh | None = None,
) -> TenancyArgs:
    """The stack's ``TenancyArgs``: ML engineers' roles, the admins they must not repeat."""
    return TenancyArgs(
        cluster_name=deploy.cluster_name,
        ml_engineer_role_arns=settings.ml_engineer_role_arns,
        admin_role_arns=(*settings.admin_role_arns, *filter(None, [settings.deploy_role_arn])),
        mesh=mesh.control_plane if mesh else None,
        tags=dict(tags),
    )
