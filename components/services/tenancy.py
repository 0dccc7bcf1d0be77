"""Application namespaces that start from "nothing is allowed", and the explicit allows
components add to them.

:func:`application_namespace` is the one way to create a namespace that runs an
application (``ml-serving`` here; ``mlflow``, ``velero`` and ``vault`` use it too). It
creates, as children of ``parent``:

- the namespace itself, Pod Security ``restricted`` (enforced, audited, warned) and, with
  the mesh on, labelled ``istio-injection=enabled`` (Istio CNI sets up the sidecar's
  redirection, so no pod needs ``NET_ADMIN``);
- a ``default-deny`` NetworkPolicy selecting every pod, for ingress and egress;
- ``allow-dns``: egress to CoreDNS (``kube-system``, ``k8s-app=kube-dns``) on 53 UDP/TCP;
- with the mesh on, ``allow-mesh``: egress to istiod on 15012 (xDS and certificate
  signing over mTLS; the API server's calls to istiod's webhook on 15017 are ingress to
  ``istio-system``, not egress from here) and to the OpenTelemetry collector on 4317/4318
  (the sidecars' spans), and an allow-nothing ``AuthorizationPolicy`` (an ALLOW policy
  without rules: every request a sidecar receives is denied until an allow names it).

Allows are added per workload, each as NetworkPolicy (layer 3/4) and, for traffic that
passes the sidecar, an ``AuthorizationPolicy`` naming the caller's mTLS identity:
:func:`allow_from` (any namespace and service account), :func:`allow_from_gateway` (the
ingress gateway to a service port), :func:`allow_from_prometheus` (scrapes of the
sidecar's merged metrics port, which the sidecar serves outside its mTLS listener) and
:func:`allow_egress` (to a namespace or to CIDRs, e.g. a database).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components._k8s import namespace

ISTIO_NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_NAME = "ingress"
"""The Istio ``Gateway`` resource every route attaches to (in ``GATEWAY_NAMESPACE``)."""
GATEWAY_SERVICE_ACCOUNT = "istio-ingressgateway"
GATEWAY_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
PROMETHEUS_NAMESPACE = "monitoring"
TRACING_NAMESPACE = "observability"
INJECTION_LABEL = "istio-injection"
KIND_LABEL = "mlplatform.io/namespace-kind"
"""``application`` on every namespace :func:`application_namespace` creates (the policy
pack checks each has its default-deny)."""
ISTIOD_XDS_PORT = 15012
OTLP_PORTS = (4317, 4318)
MERGED_METRICS_PORT = 15020
"""The sidecar agent's Prometheus port (the app's metrics merged with Envoy's): outside
Envoy's inbound capture, so plain scrapes from a Prometheus without a sidecar work under
STRICT mTLS."""
TRUST_DOMAIN = "cluster.local"
_NAMESPACE_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class AppNamespace:
    """An application namespace and what its allows need to know."""

    name: str
    """The namespace's name."""
    namespace: k8s.core.v1.Namespace
    """The Namespace resource (its ``metadata.name`` orders children after it)."""
    mesh: pulumi.Resource | None
    """What Istio custom resources wait for (the istiod release); None without the mesh."""
    policies: tuple[pulumi.Resource, ...]
    """The baseline policies, for workloads that must start after them."""


def principal(namespace_name: str, service_account: str) -> str:
    """The mTLS identity Istio gives a service account (``cluster.local/ns/N/sa/S``)."""
    return f"{TRUST_DOMAIN}/ns/{namespace_name}/sa/{service_account}"


def _in_namespace(name: str, labels: Mapping[str, str] | None = None) -> dict[str, object]:
    peer: dict[str, object] = {"namespaceSelector": {"matchLabels": {_NAMESPACE_NAME: name}}}
    if labels:
        peer["podSelector"] = {"matchLabels": dict(labels)}
    return peer


def _ports(ports: Sequence[int], protocols: Sequence[str] = ("TCP",)) -> list[dict[str, object]]:
    return [{"protocol": p, "port": port} for port in ports for p in protocols]


def _network_policy(
    ns: AppNamespace, name: str, spec: Any, parent: pulumi.Resource
) -> k8s.networking.v1.NetworkPolicy:
    # ``spec`` in the API's camelCase spelling, as kubectl would take it.
    return k8s.networking.v1.NetworkPolicy(
        f"{ns.name}-{name}",
        metadata={"name": name, "namespace": ns.namespace.metadata.name},
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _authorization_policy(
    ns: AppNamespace, name: str, spec: Mapping[str, object], parent: pulumi.Resource
) -> k8s.apiextensions.CustomResource:
    assert ns.mesh is not None
    return k8s.apiextensions.CustomResource(
        f"{ns.name}-{name}-authz",
        api_version="security.istio.io/v1",
        kind="AuthorizationPolicy",
        metadata={"name": name, "namespace": ns.namespace.metadata.name},
        spec=dict(spec),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[ns.mesh]),
    )


def application_namespace(
    name: str,
    *,
    parent: pulumi.Resource,
    mesh: pulumi.Resource | None,
    labels: Mapping[str, str] | None = None,
) -> AppNamespace:
    """Create application namespace ``name`` with its default-deny baseline.

    ``mesh`` is what Istio custom resources must wait for (``Mesh.control_plane``, the
    istiod release); ``None`` means no mesh: no injection label, no AuthorizationPolicy,
    no egress to istiod. ``labels`` are added to the namespace's. Returns the
    :class:`AppNamespace` the ``allow_*`` functions take. Raises ``ValueError`` for a name
    that is not a DNS label (from :func:`components._k8s.namespace`).
    """
    injection = {INJECTION_LABEL: "enabled"} if mesh is not None else {}
    own = {KIND_LABEL: "application", **injection}
    created = namespace(name, parent=parent, labels={**dict(labels or {}), **own})
    ns = AppNamespace(name=name, namespace=created, mesh=mesh, policies=())
    policies: list[pulumi.Resource] = [
        _network_policy(
            ns, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, parent
        ),
        _network_policy(
            ns,
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [_in_namespace("kube-system", {"k8s-app": "kube-dns"})],
                        "ports": _ports([53], ("UDP", "TCP")),
                    }
                ],
            },
            parent,
        ),
    ]
    if mesh is not None:
        policies.append(
            _network_policy(
                ns,
                "allow-mesh",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [_in_namespace(ISTIO_NAMESPACE, {"app": "istiod"})],
                            "ports": _ports([ISTIOD_XDS_PORT]),
                        },
                        {"to": [_in_namespace(TRACING_NAMESPACE)], "ports": _ports(OTLP_PORTS)},
                    ],
                },
                parent,
            )
        )
        # An ALLOW policy without rules matches nothing: every request is denied until
        # another policy allows it.
        policies.append(_authorization_policy(ns, "allow-nothing", {}, parent))
    return AppNamespace(name=name, namespace=created, mesh=mesh, policies=tuple(policies))


def allow_from(
    ns: AppNamespace,
    *,
    name: str,
    parent: pulumi.Resource,
    pods: Mapping[str, str],
    ports: Sequence[int],
    from_namespace: str,
    from_pods: Mapping[str, str] | None = None,
    from_service_account: str | None = None,
) -> list[pulumi.Resource]:
    """Allow ``from_namespace`` (its pods labelled ``from_pods``, default all) to reach
    the pods labelled ``pods`` in ``ns`` on ``ports`` (TCP).

    Creates the NetworkPolicy ``name``; with the mesh on and ``from_service_account``
    given, also the AuthorizationPolicy ``name`` allowing that mTLS identity to those
    ports. Returns the created policies. Raises ``ValueError`` for an empty ``ports`` or
    ``pods`` (an allow must name what it opens).
    """
    if not ports or not pods:
        raise ValueError(f"allow {name} in {ns.name}: name the pods and ports it opens")
    created: list[pulumi.Resource] = [
        _network_policy(
            ns,
            name,
            {
                "podSelector": {"matchLabels": dict(pods)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [_in_namespace(from_namespace, from_pods)], "ports": _ports(ports)}
                ],
            },
            parent,
        )
    ]
    if ns.mesh is not None and from_service_account:
        created.append(
            _authorization_policy(
                ns,
                name,
                {
                    "selector": {"matchLabels": dict(pods)},
                    "action": "ALLOW",
                    "rules": [
                        {
                            "from": [
                                {
                                    "source": {
                                        "principals": [
                                            principal(from_namespace, from_service_account)
                                        ]
                                    }
                                }
                            ],
                            "to": [{"operation": {"ports": [str(p) for p in ports]}}],
                        }
                    ],
                },
                parent,
            )
        )
    return created


def allow_from_gateway(
    ns: AppNamespace, *, name: str, parent: pulumi.Resource, pods: Mapping[str, str], port: int
) -> list[pulumi.Resource]:
    """Allow the Istio ingress gateway to reach the pods labelled ``pods`` on ``port``."""
    return allow_from(
        ns,
        name=name,
        parent=parent,
        pods=pods,
        ports=[port],
        from_namespace=GATEWAY_NAMESPACE,
        from_pods=GATEWAY_LABELS,
        from_service_account=GATEWAY_SERVICE_ACCOUNT,
    )


def allow_from_prometheus(
    ns: AppNamespace,
    *,
    name: str,
    parent: pulumi.Resource,
    pods: Mapping[str, str],
    ports: Sequence[int] = (MERGED_METRICS_PORT,),
) -> list[pulumi.Resource]:
    """Allow Prometheus (namespace ``monitoring``) to scrape the pods labelled ``pods`` on
    ``ports`` (default the sidecar's merged metrics port, 15020). Prometheus has no
    sidecar, so there is no identity to authorize: a network allow only."""
    return allow_from(
        ns,
        name=name,
        parent=parent,
        pods=pods,
        ports=ports,
        from_namespace=PROMETHEUS_NAMESPACE,
        from_pods={"app.kubernetes.io/name": "prometheus"},
    )


def allow_egress(
    ns: AppNamespace,
    *,
    name: str,
    parent: pulumi.Resource,
    pods: Mapping[str, str],
    ports: Sequence[int],
    to_namespace: str | None = None,
    to_pods: Mapping[str, str] | None = None,
    to_cidrs: Sequence[pulumi.Input[str]] = (),
) -> k8s.networking.v1.NetworkPolicy:
    """Allow the pods labelled ``pods`` to open connections on ``ports`` (TCP) to
    ``to_namespace`` (its pods labelled ``to_pods``, default all) and/or to ``to_cidrs``
    (a database subnet, an AWS endpoint). Raises ``ValueError`` when it names no
    destination or no port."""
    peers: list[dict[str, object]] = [{"ipBlock": {"cidr": cidr}} for cidr in to_cidrs]
    if to_namespace:
        peers.append(_in_namespace(to_namespace, to_pods))
    if not peers or not ports:
        raise ValueError(f"egress {name} in {ns.name}: name a destination and its ports")
    return _network_policy(
        ns,
        name,
        {
            "podSelector": {"matchLabels": dict(pods)},
            "policyTypes": ["Egress"],
            "egress": [{"to": peers, "ports": _ports(ports)}],
        },
        parent,
    )
