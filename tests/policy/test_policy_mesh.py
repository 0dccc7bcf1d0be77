"""Mesh and tenancy rules: STRICT mTLS, DestinationRule TLS, Pod Security labels on
namespaces, default-deny application namespaces, an internal ingress gateway."""

from __future__ import annotations

from typing import Any

import pytest

from policy.rules import check_resource, check_stack

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PEER = "kubernetes:security.istio.io/v1:PeerAuthentication"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
ENFORCE = "pod-security.kubernetes.io/enforce"


def names(resource_type: str, props: dict[str, Any]) -> list[str]:
    return [f.policy for f in check_resource(resource_type, props)]


@pytest.mark.parametrize("mode", ["PERMISSIVE", "DISABLE"])
def test_peer_authentication_must_stay_strict(mode: str) -> None:
    assert "istio-mtls-strict" not in names(PEER, {"spec": {"mtls": {"mode": "STRICT"}}})
    assert "istio-mtls-strict" in names(PEER, {"spec": {"mtls": {"mode": mode}}})
    port_level = {"spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": mode}}}}
    assert "istio-mtls-strict" in names(PEER, port_level)
    assert "istio-mtls-strict" not in names(PEER, {"spec": {"mtls": {"mode": UNKNOWN}}})


def test_destination_rules_never_disable_tls() -> None:
    ok = {"spec": {"host": "a", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}}
    assert "istio-destination-rule-tls" not in names(DESTINATION_RULE, ok)
    for spec in (
        {"host": "a", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
        {"host": "a", "subsets": [{"name": "v1", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]},
        {"host": "a", "trafficPolicy": {"portLevelSettings": [{"tls": {"mode": "DISABLE"}}]}},
    ):
        assert "istio-destination-rule-tls" in names(DESTINATION_RULE, {"spec": spec}), spec
    unknown = {"spec": {"host": "a", "trafficPolicy": {"tls": {"mode": UNKNOWN}}}}
    assert "istio-destination-rule-tls" not in names(DESTINATION_RULE, unknown)


def test_namespaces_enforce_pod_security_and_explain_privileged() -> None:
    rule = "k8s-namespace-pod-security"
    restricted = {"metadata": {"name": "a", "labels": {ENFORCE: "restricted"}}}
    assert rule not in names(NAMESPACE, restricted)
    assert rule in names(NAMESPACE, {"metadata": {"name": "a", "labels": {}}})
    assert rule in names(NAMESPACE, {"metadata": {"name": "a", "labels": {ENFORCE: "strict"}}})
    privileged = {"metadata": {"name": "a", "labels": {ENFORCE: "privileged"}}}
    assert rule in names(NAMESPACE, privileged)
    explained = {
        **privileged["metadata"],
        "annotations": {"mlplatform.io/pod-security-reason": "CNI"},
    }
    assert rule not in names(NAMESPACE, {"metadata": explained})
    assert rule not in names(NAMESPACE, {"metadata": {"name": "a", "labels": UNKNOWN}})


def namespace(name: str) -> tuple[str, str, dict[str, Any]]:
    labels = {ENFORCE: "restricted", "mlplatform.io/namespace-kind": "application"}
    return (f"urn:ns:{name}", NAMESPACE, {"metadata": {"name": name, "labels": labels}})


def policy(namespace_name: Any, spec: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    props = {"metadata": {"name": "p", "namespace": namespace_name}, "spec": spec}
    return (f"urn:np:{namespace_name}", NETWORK_POLICY, props)


DENY = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def stack_findings(resources: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(urn, f.policy) for urn, f in check_stack(resources)]


def test_application_namespaces_need_a_default_deny() -> None:
    rule = "k8s-app-namespace-default-deny"
    assert rule not in {p for _, p in stack_findings([namespace("a"), policy("a", DENY)])}
    assert ("urn:ns:a", rule) in stack_findings([namespace("a")])
    # An allow is not a deny, and a deny elsewhere does not count.
    allow = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": []}]}
    assert ("urn:ns:a", rule) in stack_findings([namespace("a"), policy("a", allow)])
    assert ("urn:ns:a", rule) in stack_findings([namespace("a"), policy("b", DENY)])
    only_ingress = {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert ("urn:ns:a", rule) in stack_findings([namespace("a"), policy("a", only_ingress)])
    # A platform namespace is not an application namespace; an unknown one cannot be judged.
    platform = (
        "urn:ns:p",
        NAMESPACE,
        {"metadata": {"name": "p", "labels": {ENFORCE: "restricted"}}},
    )
    assert stack_findings([platform]) == []
    assert stack_findings([namespace("a"), policy(UNKNOWN, DENY)]) == []


def gateway_service(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "gw", "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": {"istio": "ingressgateway"}},
    }


def test_the_gateway_load_balancer_is_internal_unless_asked_for() -> None:
    rule = "istio-gateway-internal"
    assert rule not in names(SERVICE, gateway_service({SCHEME: "internal"}))
    assert rule in names(SERVICE, gateway_service({SCHEME: "internet-facing"}))
    assert rule in names(SERVICE, gateway_service({}))
    public = gateway_service({SCHEME: "internet-facing", "mlplatform.io/public-ingress": "true"})
    assert rule not in names(SERVICE, public)
    assert "istio-gateway-public" in names(SERVICE, public)
    assert "istio-gateway-public" not in names(SERVICE, gateway_service({SCHEME: "internal"}))
    other = {"spec": {"type": "LoadBalancer", "selector": {"app": "x"}}, "metadata": {}}
    assert rule not in names(SERVICE, other)
    assert rule not in names(SERVICE, gateway_service(UNKNOWN))  # type: ignore[arg-type]


def test_a_gateway_chart_with_its_own_default_service_is_judged_too() -> None:
    rule = "istio-gateway-internal"
    default = {"chart": "gateway", "version": "1.30.3", "values": {}}
    assert rule in names(RELEASE, default)
    internal = {"chart": "gateway", "values": {"service": {"annotations": {SCHEME: "internal"}}}}
    assert rule not in names(RELEASE, internal)
    assert rule not in names(RELEASE, {"chart": "gateway", "values": {"service": {"type": "None"}}})
    assert rule not in names(RELEASE, {"chart": "cert-manager", "values": {}})
