"""Rules for the mesh and tenancy: mTLS stays STRICT, namespaces carry Pod Security,
application namespaces start from default-deny, the ingress stays internal unless asked.

The label and annotation names below are copies of ``components/_k8s.py`` and
``components/services/tenancy.py``/``ingress.py``: the pack is published alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    Aliases,
    ResourceRule,
    Resources,
    StackRule,
    chart_name,
    dig,
    is_unknown,
    iter_mappings,
    mandatory_rule,
)

PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
PEER_AUTHENTICATION_TYPES = {
    PEER_AUTHENTICATION,
    "kubernetes:security.istio.io/v1beta1:PeerAuthentication",
}
DESTINATION_RULE_TYPES = {
    f"kubernetes:networking.istio.io/{v}:DestinationRule" for v in ("v1", "v1beta1", "v1alpha3")
}
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
REASON_ANNOTATION = "mlplatform.io/pod-security-reason"
KIND_LABEL = "mlplatform.io/namespace-kind"
PUBLIC_ANNOTATION = "mlplatform.io/public-ingress"
GATEWAY_CHART = "gateway"
_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
_LEVELS = ("restricted", "baseline", "privileged")
_WEAK_MTLS = ("PERMISSIVE", "DISABLE")


def _peer_authentication(_: str, props: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    mode = dig(props, "spec", "mtls", "mode")
    if mode in _WEAK_MTLS:
        found.append(f"spec.mtls.mode is {mode}: plaintext is accepted; use STRICT")
    ports = dig(props, "spec", "portLevelMtls")
    if isinstance(ports, Mapping):
        for port, setting in ports.items():
            if dig(setting, "mode") in _WEAK_MTLS:
                found.append(f"spec.portLevelMtls.{port}.mode is {setting['mode']}; use STRICT")
    return found


def _tls_settings(spec: Any) -> list[tuple[str, Any]]:
    policies = [("trafficPolicy", dig(spec, "trafficPolicy"))]
    for i, subset in enumerate(iter_mappings(dig(spec, "subsets"))):
        policies.append((f"subsets[{i}].trafficPolicy", dig(subset, "trafficPolicy")))
    settings: list[tuple[str, Any]] = []
    for where, policy in policies:
        settings.append((f"{where}.tls", dig(policy, "tls")))
        for j, port in enumerate(iter_mappings(dig(policy, "portLevelSettings"))):
            settings.append((f"{where}.portLevelSettings[{j}].tls", dig(port, "tls")))
    return settings


def _destination_rule(_: str, props: Mapping[str, Any]) -> list[str]:
    return [
        f"spec.{where}.mode is DISABLE: traffic to the host leaves the sidecar in plaintext"
        for where, tls in _tls_settings(dig(props, "spec"))
        if dig(tls, "mode") == "DISABLE"
    ]


def _pod_security(_: str, props: Mapping[str, Any]) -> list[str]:
    labels = dig(props, "metadata", "labels")
    if is_unknown(labels):
        return []
    level = dig(labels, "pod-security.kubernetes.io/enforce")
    if is_unknown(level):
        return []
    if level not in _LEVELS:
        return [
            "metadata.labels lacks pod-security.kubernetes.io/enforce (restricted, baseline or "
            "privileged): the namespace admits whatever the cluster default allows"
        ]
    reason = dig(props, "metadata", "annotations", REASON_ANNOTATION)
    if level == "privileged" and (reason is MISSING or not str(reason).strip()):
        return [f"a privileged namespace must say why in the {REASON_ANNOTATION} annotation"]
    return []


def _is_default_deny(props: Mapping[str, Any]) -> bool:
    spec = dig(props, "spec")
    selector = dig(spec, "podSelector")
    types = dig(spec, "policyTypes")
    return (
        isinstance(selector, Mapping)
        and not any(selector.values())
        and isinstance(types, list | tuple)
        and {"Ingress", "Egress"} <= set(types)
        and all(dig(spec, rules) in (MISSING, None, []) for rules in ("ingress", "egress"))
    )


def _default_deny(resources: Resources, aliases: Aliases) -> list[tuple[str, str]]:
    del aliases
    denied: set[Any] = set()
    unknown = False
    for _, kind, props in resources:
        if kind == NETWORK_POLICY and _is_default_deny(props):
            namespace = dig(props, "metadata", "namespace")
            unknown = unknown or is_unknown(namespace)
            denied.add(namespace)
    found: list[tuple[str, str]] = []
    for urn, kind, props in resources:
        if kind != NAMESPACE or dig(props, "metadata", "labels", KIND_LABEL) != "application":
            continue
        name = dig(props, "metadata", "name")
        if is_unknown(name) or unknown or name in denied:
            continue
        found.append(
            (
                urn,
                f"application namespace {name} has no default-deny NetworkPolicy (empty "
                "podSelector, policyTypes Ingress and Egress, no rules)",
            )
        )
    return found


def _gateway_service(kind: str, props: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """(annotations, public opt-in) of a load balancer in front of an Istio gateway."""
    if kind == SERVICE:
        spec = dig(props, "spec")
        if dig(spec, "type") != "LoadBalancer" or dig(spec, "selector", "istio") is MISSING:
            return None
        annotations = dig(props, "metadata", "annotations")
        return annotations, dig(annotations, PUBLIC_ANNOTATION)
    if chart_name(props) != GATEWAY_CHART:
        return None
    service = dig(props, "values", "service")
    if dig(service, "type") not in (MISSING, "LoadBalancer"):
        return None
    merged = {
        **_mapping(dig(props, "values", "annotations")),
        **_mapping(dig(service, "annotations")),
    }
    return merged, merged.get(PUBLIC_ANNOTATION, MISSING)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _scheme(kind: str, props: Mapping[str, Any]) -> tuple[Any, bool] | None:
    found = _gateway_service(kind, props)
    if found is None or is_unknown(found[0]):
        return None
    annotations, public = found
    return dig(annotations, _SCHEME), public == "true"


def _internal_gateway(kind: str, props: Mapping[str, Any]) -> list[str]:
    found = _scheme(kind, props)
    if found is None or is_unknown(found[0]):
        return []
    scheme, public = found
    if scheme == "internal" or (scheme == "internet-facing" and public):
        return []
    shown = "not set" if scheme is MISSING else repr(scheme)
    return [
        f"the ingress gateway's load balancer scheme ({_SCHEME}) is {shown}: it must be "
        f"'internal' unless ingress.public asks for internet-facing ({PUBLIC_ANNOTATION})"
    ]


def _public_gateway(kind: str, props: Mapping[str, Any]) -> list[str]:
    found = _scheme(kind, props)
    if found is None or found != ("internet-facing", True):
        return []
    return ["the ingress gateway's NLB is internet-facing (ingress.public): anyone can reach it"]


RULES: list[ResourceRule] = [
    mandatory_rule(
        "istio-mtls-strict",
        PEER_AUTHENTICATION_TYPES,
        "No PeerAuthentication sets mTLS (or a port's mTLS) to PERMISSIVE or DISABLE.",
        "One permissive policy lets plaintext, unauthenticated traffic reach the workloads "
        "it selects, and authorization by identity stops meaning anything there.",
        "Istio security best practices (mutual TLS: STRICT); NSA/CISA Kubernetes hardening",
        _peer_authentication,
    ),
    mandatory_rule(
        "istio-destination-rule-tls",
        DESTINATION_RULE_TYPES,
        "No DestinationRule sets TLS mode DISABLE (traffic policy, subsets, port settings).",
        "DISABLE makes sidecars send plaintext to the host even where mTLS is STRICT.",
        "Istio security best practices (DestinationRule TLS)",
        _destination_rule,
    ),
    mandatory_rule(
        "k8s-namespace-pod-security",
        {NAMESPACE},
        f"Every namespace carries a Pod Security enforce label; privileged only with the "
        f"{REASON_ANNOTATION} annotation.",
        "Without the label a namespace admits privileged pods; an unexplained exception "
        "cannot be reviewed or removed.",
        "Kubernetes Pod Security Admission; EKS Best Practices (Pod security)",
        _pod_security,
    ),
    mandatory_rule(
        "istio-gateway-internal",
        {SERVICE, RELEASE},
        "The ingress gateway's load balancer is internal unless ingress.public asks for "
        f"internet-facing ({PUBLIC_ANNOTATION} annotation).",
        "A public load balancer exposes every route of the mesh to the internet.",
        "AWS Load Balancer Controller docs (service annotations: scheme); EKS Best Practices "
        "(Network security)",
        _internal_gateway,
    ),
    ResourceRule(
        "istio-gateway-public",
        "advisory",
        frozenset({SERVICE, RELEASE}),
        "Flags an ingress gateway whose NLB the stack made internet-facing (ingress.public).",
        "Allowed, but every preview shows that the gateway faces the internet.",
        "AWS Load Balancer Controller docs (service annotations: scheme)",
        _public_gateway,
    ),
]
STACK_RULES: list[StackRule] = [
    StackRule(
        "k8s-app-namespace-default-deny",
        "mandatory",
        frozenset({NAMESPACE, NETWORK_POLICY}),
        f"Every application namespace ({KIND_LABEL}=application) has a default-deny "
        "NetworkPolicy for ingress and egress.",
        "Without it any pod in the cluster can reach the workloads, and they can reach "
        "anything: an allow only means something against a deny.",
        "Kubernetes network policies (default deny all); EKS Best Practices (Network security)",
        _default_deny,
    ),
]
