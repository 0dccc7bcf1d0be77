"""What every inference service needs once at the ingress gateway: Envoy's local rate
limit and body cap filters (``inference_routing.gateway_filters_spec``), which each
service's routes then configure. Inserted by one ``EnvoyFilter`` per gateway, so that two
services never insert the same filter twice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components._tokens import depends_on_of, type_token
from components.services.tenancy import GATEWAY_LABELS, GATEWAY_NAMESPACE
from components.workloads.inference_routing import gateway_filters_spec


@dataclass(frozen=True)
class InferenceGatewayArgs:
    """Inputs of :class:`InferenceGateway`."""

    namespace: str = GATEWAY_NAMESPACE
    """The gateway's namespace. Default the mesh's (``istio-ingress``)."""
    gateway_labels: Mapping[str, str] = field(default_factory=lambda: dict(GATEWAY_LABELS))
    """Labels of the gateway's pods. Default the mesh's gateway (``istio-ingressgateway``)."""


class InferenceGateway(pulumi.ComponentResource):
    """The gateway-wide filters of the inference routes. ``opts.depends_on`` names the
    release installing Istio's CRDs."""

    def __init__(
        self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("InferenceGateway"), name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-filters",
            api_version="networking.istio.io/v1alpha3",
            kind="EnvoyFilter",
            metadata={"name": "inference-edge", "namespace": args.namespace},
            spec=gateway_filters_spec(args.gateway_labels),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on_of(opts)),
        )
        self.register_outputs({})
