"""The mesh, ingress and tenancy as both stacks build them: config keys checked and
named, and the prod plan showing what the platform promises."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import parse_settings
from infra.offline import CapturedResource, ProgramRun
from infra.offline.report import run_plan
from tests.infra.test_config import raw_for, rejection
from tests.offline_support import ROOT

RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_plan("prod", root=ROOT).run


def with_object(raw: dict[str, Any], root: str, **fields: Any) -> dict[str, Any]:
    current = raw.get(root)
    merged = (json.loads(current) if isinstance(current, str) else dict(current or {})) | fields
    return {**raw, root: json.dumps(merged)}


def test_both_stacks_read_their_mesh_and_ingress_settings() -> None:
    dev, prod = (parse_settings(raw_for(stack)) for stack in ("dev", "prod"))
    assert (dev.ingress_gateway_replicas, dev.mesh_istiod_replicas) == (1, 1)
    assert dev.ingress_domain == "" and dev.mesh_trace_sampling_percent == 10.0
    assert (prod.ingress_domain, prod.ingress_hosted_zone_id) == (
        "ml.example.com",
        "Z0123456789EXAMPLE",
    )
    assert prod.ingress_public is False and prod.ingress_gateway_replicas == 2
    assert prod.ml_engineer_role_arns == ("arn:aws:iam::123456789012:role/ml-engineer",)


def test_bad_ingress_and_mesh_values_name_their_keys() -> None:
    raw = with_object(raw_for("dev"), "ingress", hostedZoneId="zone-1", gatewayReplicas=0)
    raw = with_object(raw, "mesh", traceSamplingPercent="150", istiodReplicas=9)
    message = rejection(raw)
    assert "mlplatform:ingress.hostedZoneId: 'zone-1' must be a Route 53 hosted zone id" in message
    assert "mlplatform:ingress.hostedZoneId: needs a domain" in message
    assert "mlplatform:ingress.gatewayReplicas: 0 must be from 1 to 10" in message
    assert "mlplatform:mesh.istiodReplicas: 9 must be from 1 to 5" in message
    assert "mlplatform:mesh.traceSamplingPercent: 150.0 must be above 0 and at most 100" in message
    typo = rejection(with_object(raw_for("dev"), "ingress", domian="ml.example.com"))
    assert "mlplatform:ingress.domian: unknown key (did you mean 'domain'?)" in typo
    wrong_type = rejection(with_object(raw_for("dev"), "ingress", public="sometimes"))
    assert "mlplatform:ingress.public: 'sometimes' is not a boolean" in wrong_type


def test_an_ml_engineer_role_must_not_repeat_an_admin() -> None:
    raw = raw_for("prod")
    admin = (
        json.loads(raw["adminRoleArns"])
        if isinstance(raw["adminRoleArns"], str)
        else raw["adminRoleArns"]
    )
    message = rejection({**raw, "mlEngineerRoleArns": json.dumps([admin[0], "nope"])})
    admin_arn = "'arn:aws:iam::123456789012:role/platform-admin'"
    assert f"mlplatform:mlEngineerRoleArns: {admin_arn} is already an admin role" in message
    assert "mlplatform:mlEngineerRoleArns: 'nope' is not an IAM role ARN" in message


def releases(run: ProgramRun) -> dict[str, CapturedResource]:
    return {r.inputs["chart"]: r for r in run.by_type(RELEASE)}


def named(run: ProgramRun, kind: str, namespace: str) -> dict[str, CapturedResource]:
    return {
        r.inputs["metadata"]["name"]: r
        for r in run.by_type(kind)
        if r.inputs["metadata"].get("namespace") == namespace
    }


def test_prod_runs_three_istio_releases_at_one_version_in_order(prod) -> None:
    found = releases(prod)
    base, istiod, gateway = found["base"], found["istiod"], found["gateway"]
    assert {r.inputs["version"] for r in (base, istiod, gateway, found["cni"])} == {"1.30.3"}
    assert found["cni"].urn in istiod.dependencies and base.urn in found["cni"].dependencies
    assert istiod.urn in gateway.dependencies


def test_prod_is_strict_and_default_deny_in_ml_serving(prod) -> None:
    (peer,) = prod.by_type("kubernetes:security.istio.io/v1:PeerAuthentication")
    assert peer.inputs["metadata"]["namespace"] == "istio-system"
    assert peer.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
    authz = named(prod, "kubernetes:security.istio.io/v1:AuthorizationPolicy", "ml-serving")
    assert authz["allow-nothing"].inputs["spec"] == {}
    deny = named(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "ml-serving")[
        "default-deny"
    ]
    assert deny.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    role = named(prod, "kubernetes:rbac.authorization.k8s.io/v1:Role", "ml-serving")
    binding = named(prod, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "ml-serving")
    assert (
        "ml-engineer" in role
        and binding["ml-engineer"].inputs["subjects"][0]["name"] == "ml-engineers"
    )


def test_every_namespace_the_program_creates_enforces_pod_security(prod) -> None:
    namespaces = prod.by_type("kubernetes:core/v1:Namespace")
    assert {"istio-system", "istio-ingress", "cert-manager", "ml-serving"} <= {
        n.inputs["metadata"]["name"] for n in namespaces
    }
    for ns in namespaces:
        assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], ns.name


def gateway_service(stack: Any) -> CapturedResource:
    """The ingress gateway's Service (the NLB), the one Service in ``istio-ingress``."""
    (service,) = [
        s
        for s in stack.by_type("kubernetes:core/v1:Service")
        if s.inputs["metadata"]["namespace"] == "istio-ingress"
    ]
    return service


def test_prod_serves_https_on_a_cert_manager_certificate_behind_an_internal_nlb(prod) -> None:
    (gateway,) = prod.by_type("kubernetes:networking.istio.io/v1:Gateway")
    https = [s for s in gateway.inputs["spec"]["servers"] if s["port"]["protocol"] == "HTTPS"]
    (certificate,) = [
        c
        for c in prod.by_type("kubernetes:cert-manager.io/v1:Certificate")
        if c.inputs["metadata"]["namespace"] == "istio-ingress"
    ]
    assert https[0]["tls"]["credentialName"] == certificate.inputs["spec"]["secretName"]
    assert certificate.inputs["spec"]["issuerRef"]["name"] == "letsencrypt"
    service = gateway_service(prod)
    annotations = service.inputs["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_destroy_removes_the_nlb_while_its_controller_runs_and_before_the_subnets(prod) -> None:
    by_urn = {r.urn: r for r in prod.resources}

    def reaches(start: CapturedResource, target: str) -> bool:
        seen, todo = set(), [start.urn]
        while todo:
            urn = todo.pop()
            if urn == target:
                return True
            if urn in seen or urn not in by_urn:
                continue
            seen.add(urn)
            resource = by_urn[urn]
            todo += [*resource.dependencies, *([resource.parent] if resource.parent else [])]
        return False

    service = gateway_service(prod)
    controller = releases(prod)["aws-load-balancer-controller"]
    assert controller.urn in service.dependencies
    private = [s for s in prod.by_type("aws:ec2/subnet:Subnet") if "-private-" in s.name]
    assert private and all(reaches(service, s.urn) for s in private)
    assert all(reaches(controller, s.urn) for s in private)
    annotation = service.inputs["metadata"]["annotations"][
        "service.beta.kubernetes.io/aws-load-balancer-subnets"
    ]
    assert sorted(annotation.split(",")) == sorted(s.id for s in private)
