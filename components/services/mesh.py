"""The service mesh: Istio in sidecar mode with the Istio CNI node agent, STRICT mTLS
everywhere, and the ingress gateway's pods.

Releases, one pinned version for all (``base`` -> ``cni`` -> ``istiod`` -> ``gateway``,
each waiting for the previous): ``base`` installs the CRDs; the CNI node agent (its own
``privileged`` namespace, ``istio-cni``) sets up each pod's traffic redirection, so
injected pods carry no ``NET_ADMIN`` init container and application namespaces enforce
Pod Security ``restricted``; ``istiod`` logs every request as JSON to stdout and sends
traces to the OpenTelemetry collector; the gateway runs in ``istio-ingress`` behind an
HPA, with a PDB from two replicas and pods spread across zones. The gateway's Service
(the load balancer) is not the chart's: :class:`~components.services.ingress.Ingress`
owns it, so that it is deleted while the load balancer controller still runs.

A mesh-wide ``PeerAuthentication`` ``default`` in ``istio-system`` makes mTLS STRICT.

Security groups: the EKS API server calls istiod's webhooks on the pod's port 15017.
The platform's nodes (managed node groups without their own security group, Karpenter
nodes by discovery tag) join the EKS cluster security group, whose rule "all traffic from
itself" already admits the control plane's interfaces, so no rule is added. Only nodes in
a separate security group (``node_security_group_id``) get ingress on 15017 and 15012
from the cluster security group.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._k8s import ChartPin, helm_release, namespace, system_placement
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.services.tenancy import (
    GATEWAY_LABELS,
    GATEWAY_NAMESPACE,
    GATEWAY_SERVICE_ACCOUNT,
    ISTIO_NAMESPACE,
    ISTIOD_XDS_PORT,
)

ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
ISTIO_VERSION = "1.30.3"
BASE_CHART = ChartPin(ISTIO_REPOSITORY, "base", ISTIO_VERSION)
CNI_CHART = ChartPin(ISTIO_REPOSITORY, "cni", ISTIO_VERSION)
ISTIOD_CHART = ChartPin(ISTIO_REPOSITORY, "istiod", ISTIO_VERSION)
GATEWAY_CHART = ChartPin(ISTIO_REPOSITORY, "gateway", ISTIO_VERSION)
CNI_NAMESPACE = "istio-cni"
WEBHOOK_PORT = 15017
TRACING_PROVIDER = "otel-tracing"
ZONE = "topology.kubernetes.io/zone"
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


@dataclass(frozen=True)
class MeshArgs:
    """Inputs of :class:`Mesh`."""

    otlp_endpoint: pulumi.Input[str]
    """The OpenTelemetry collector's OTLP/HTTP address (``http://host.ns.svc:4318``,
    ``Observability.otlp_endpoint``): the sidecars' traces go there. Required."""
    istiod_replicas: int = 2
    """Least istiod replicas (its HPA may add up to 5; a PDB from 2). Default 2."""
    gateway_replicas: int = 2
    """Least ingress gateway replicas (its HPA may add up to 10; a PDB from 2). Default 2."""
    trace_sampling_percent: float = 1.0
    """Share of requests traced, in percent. Default 1.0."""
    system_pool: str = "system"
    """Pool label of the nodes istiod and the gateway run on. Default ``system``."""
    cluster_security_group_id: pulumi.Input[str] | None = None
    """The EKS cluster security group, source of the webhook rules. Default None."""
    node_security_group_id: pulumi.Input[str] | None = None
    """A node security group other than the cluster's (see the module docstring); the
    webhook rules are added only then. Default None."""
    base_chart: ChartPin = BASE_CHART
    cni_chart: ChartPin = CNI_CHART
    istiod_chart: ChartPin = ISTIOD_CHART
    gateway_chart: ChartPin = GATEWAY_CHART


def validate_mesh_args(args: MeshArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    for label, value, most in (
        ("istiod_replicas", args.istiod_replicas, 5),
        ("gateway_replicas", args.gateway_replicas, 10),
    ):
        if not 1 <= value <= most:
            problems.append(Problem(label, f"must be from 1 to {most}", value))
    if not 0 < args.trace_sampling_percent <= 100:
        problems.append(
            Problem(
                "trace_sampling_percent",
                "must be above 0 and at most 100",
                args.trace_sampling_percent,
            )
        )
    versions = {
        p.version for p in (args.base_chart, args.cni_chart, args.istiod_chart, args.gateway_chart)
    }
    if len(versions) != 1:
        problems.append(
            Problem(
                "istiod_chart",
                "must share one version with base, cni and gateway",
                sorted(versions),
            )
        )
    if args.node_security_group_id is not None and args.cluster_security_group_id is None:
        problems.append(
            Problem("cluster_security_group_id", "is required with node_security_group_id")
        )
    return problems


def otlp_service(endpoint: str) -> tuple[str, int]:
    """The collector's host as Istio's service registry names it (``*.svc.cluster.local``)
    and its port, from an ``http://host:port`` endpoint. Raises ``ValueError`` without
    a port."""
    parts = urlsplit(endpoint)
    if not parts.hostname or not parts.port:
        raise ValueError(f"OTLP endpoint {endpoint!r} must be http://host:port")
    host = parts.hostname
    return (f"{host}.cluster.local" if host.endswith(".svc") else host), parts.port


def mesh_config(collector: tuple[str, int], sampling_percent: float) -> dict[str, object]:
    """meshConfig: JSON access logs on stdout, traces over OTLP/HTTP to ``collector``."""
    host, port = collector
    return {
        "accessLogFile": "/dev/stdout",
        "accessLogEncoding": "JSON",
        "enableTracing": True,
        "defaultConfig": {"tracing": {"sampling": sampling_percent}},
        "extensionProviders": [
            {
                "name": TRACING_PROVIDER,
                "opentelemetry": {
                    "service": host,
                    "port": port,
                    "http": {"path": "/v1/traces", "timeout": "5s"},
                },
            },
            # Named again: a user-set list replaces the defaults, Prometheus' included.
            {"name": "prometheus", "prometheus": {}},
        ],
        # Setting defaultProviders stops the chart adding metrics: [prometheus] itself.
        "defaultProviders": {"tracing": [TRACING_PROVIDER], "metrics": ["prometheus"]},
    }


def zone_spread(labels: dict[str, str]) -> list[dict[str, object]]:
    """Spread pods labelled ``labels`` over zones (best effort: a zone down still schedules)."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels},
        }
    ]


def gateway_values(args: MeshArgs) -> dict[str, object]:
    """The gateway chart's values: fixed name and labels (the Gateway's selector), no
    Service of its own, an HPA, a PDB from two replicas, zone spread, restricted pods."""
    replicas = args.gateway_replicas
    return {
        "name": GATEWAY_SERVICE_ACCOUNT,
        "labels": dict(GATEWAY_LABELS),
        "serviceAccount": {"create": True, "name": GATEWAY_SERVICE_ACCOUNT},
        "service": {"type": "None"},
        "autoscaling": {"enabled": True, "minReplicas": replicas, "maxReplicas": max(replicas, 10)},
        # The chart renders the PDB only when the HPA's minimum is above one.
        "podDisruptionBudget": {"minAvailable": 1} if replicas > 1 else {},
        "topologySpreadConstraints": zone_spread(dict(GATEWAY_LABELS)),
        # Set, the chart's default pod context (the unprivileged-ports sysctl) is replaced:
        # keep the sysctl, add what Pod Security restricted asks for.
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": RUNTIME_DEFAULT,
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        },
        **system_placement(args.system_pool),
    }


class Mesh(pulumi.ComponentResource):
    """Istio (base, CNI, istiod, the ingress gateway's pods) with STRICT mTLS.

    ``opts.providers`` must carry the cluster's Kubernetes provider; the releases wait for
    what ``opts.depends_on`` names. ``control_plane`` (the istiod release) is what Istio
    custom resources wait for; ``gateway_namespace`` is where the gateway's Service,
    Gateway and certificate belong. Raises :class:`~components._validate.ValidationError`
    naming every bad field.
    """

    control_plane: k8s.helm.v3.Release
    gateway: k8s.helm.v3.Release
    gateway_namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("MeshArgs", validate_mesh_args(args))
        super().__init__(type_token("Mesh"), name, None, opts)
        after = depends_on_of(opts)
        system = namespace(ISTIO_NAMESPACE, parent=self)
        cni_ns = namespace(
            CNI_NAMESPACE,
            parent=self,
            pod_security="privileged",
            reason="the Istio CNI node agent writes the node's CNI configuration through host "
            "paths and programs each pod's network namespace (NET_ADMIN, SYS_ADMIN)",
        )
        ingress_ns = namespace(GATEWAY_NAMESPACE, parent=self)
        placement = system_placement(args.system_pool)

        base = helm_release(
            f"{name}-base",
            pin=args.base_chart,
            namespace=system.metadata.name,
            release_name="istio-base",
            values={"defaultRevision": "default"},
            parent=self,
            depends_on=after,
        )
        cni = helm_release(
            f"{name}-cni",
            pin=args.cni_chart,
            namespace=cni_ns.metadata.name,
            release_name="istio-cni",
            values={"seccompProfile": RUNTIME_DEFAULT},
            parent=self,
            depends_on=[base],
        )
        collector = pulumi.Output.from_input(args.otlp_endpoint).apply(otlp_service)
        self.control_plane = helm_release(
            f"{name}-istiod",
            pin=args.istiod_chart,
            namespace=system.metadata.name,
            release_name="istiod",
            values={
                "autoscaleMin": args.istiod_replicas,
                "autoscaleMax": max(args.istiod_replicas, 5),
                "cni": {"enabled": True},
                "seccompProfile": RUNTIME_DEFAULT,
                "topologySpreadConstraints": zone_spread({"app": "istiod"}),
                "global": {"logAsJson": True, "proxy": {"seccompProfile": RUNTIME_DEFAULT}},
                "meshConfig": collector.apply(
                    lambda c: mesh_config(c, args.trace_sampling_percent)
                ),
                **placement,
            },
            parent=self,
            depends_on=[cni],
        )
        self.gateway = helm_release(
            f"{name}-gateway",
            pin=args.gateway_chart,
            namespace=ingress_ns.metadata.name,
            release_name=GATEWAY_SERVICE_ACCOUNT,
            values=gateway_values(args),
            parent=self,
            depends_on=[self.control_plane],
        )
        k8s.apiextensions.CustomResource(
            f"{name}-strict-mtls",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata={"name": "default", "namespace": system.metadata.name},
            spec={"mtls": {"mode": "STRICT"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.control_plane]),
        )
        if args.node_security_group_id is not None:
            for port, why in ((WEBHOOK_PORT, "istiod webhooks"), (ISTIOD_XDS_PORT, "istiod xDS")):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-control-plane-{port}",
                    security_group_id=args.node_security_group_id,
                    referenced_security_group_id=args.cluster_security_group_id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=f"EKS control plane to {why}",
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.gateway_namespace = ingress_ns.metadata.name
        self.register_outputs({"gateway_namespace": self.gateway_namespace})
