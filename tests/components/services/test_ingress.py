"""The ingress on the mock engine: cert-manager and the load balancer controller pinned
with documented values, issuers and certificates matching their CRDs, an HTTPS Gateway,
an internal NLB Service deleted before the controller."""

from __future__ import annotations

import json
from dataclasses import replace

import pulumi_kubernetes as k8s
import pytest

from components._validate import ValidationError
from components.services.ingress import Ingress, IngressArgs
from components.services.load_balancer import LoadBalancerController, LoadBalancerControllerArgs
from infra.offline import CapturedResource, ProgramRun
from tests.components.layout import problems, values_problems
from tests.components.services import ingress_layout as documented
from tests.components.services import istio_layout
from tests.components.support import assert_valid, one, plan

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.example"
ISSUER_URL = "https://oidc.example/id/ABC"
DEV = IngressArgs(oidc_provider_arn=PROVIDER, oidc_issuer=ISSUER_URL)
PROD = replace(DEV, domain="ml.example.com", hosted_zone_id="Z0123456789EXAMPLE")
ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
SERVICE = "kubernetes:core/v1:Service"
SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"


def platform(args: IngressArgs) -> None:
    controller = LoadBalancerController(
        "lbc",
        LoadBalancerControllerArgs(
            cluster_name="c", vpc_id="vpc-0123", oidc_provider_arn=PROVIDER, oidc_issuer=ISSUER_URL
        ),
    )
    # A stand-in for the istiod release (a component without children would vanish
    # from dependencies).
    mesh = k8s.core.v1.ConfigMap("mesh", metadata={"name": "istiod", "namespace": "istio-system"})
    Ingress("ingress", replace(args, mesh=mesh, load_balancer=controller.release))


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return plan(lambda: platform(DEV))


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return plan(lambda: platform(PROD))


def release(run: ProgramRun, chart: str) -> CapturedResource:
    (found,) = [
        r for r in run.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == chart
    ]
    return found


def by_name(run: ProgramRun, kind: str) -> dict[str, CapturedResource]:
    return {r.inputs["metadata"]["name"]: r for r in run.by_type(kind)}


def test_charts_are_pinned_and_their_values_documented(dev, prod) -> None:
    for case in (dev, prod):
        for (repo, chart, version), layout in (
            (documented.CERT_MANAGER_CHART, documented.CERT_MANAGER_VALUES),
            (documented.LOAD_BALANCER_CONTROLLER_CHART, documented.LOAD_BALANCER_CONTROLLER_VALUES),
        ):
            inputs = release(case, chart).inputs
            assert (inputs["version"], inputs["repositoryOpts"]) == (version, {"repo": repo})
            assert values_problems(inputs["values"], layout, chart=chart) == []
    values = release(dev, "cert-manager").inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values_problems({"installCRD": True}, documented.CERT_MANAGER_VALUES) != []


def test_the_controller_is_told_its_region_and_vpc_and_gets_the_published_policy(dev) -> None:
    values = release(dev, "aws-load-balancer-controller").inputs["values"]
    assert (values["region"], values["vpcId"], values["clusterName"]) == (
        "us-west-2",
        "vpc-0123",
        "c",
    )
    assert values["enableServiceMutatorWebhook"] is False
    account = values["serviceAccount"]
    assert account["name"] == "aws-load-balancer-controller"
    assert account["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    (policy,) = [
        json.loads(p.inputs["policy"])
        for p in dev.by_type("aws:iam/rolePolicy:RolePolicy")
        if "load-balancer" in p.name
    ]
    creates = [
        s for s in policy["Statement"] if "elasticloadbalancing:CreateLoadBalancer" in s["Action"]
    ]
    assert creates == [
        {
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            "Resource": "*",
            "Condition": {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}},
        }
    ]
    assert all(s["Action"] != "*" for s in policy["Statement"])


def test_issuers_and_certificates_match_their_crds(dev, prod) -> None:
    for case in (dev, prod):
        for kind in ("ClusterIssuer", "Certificate"):
            api_version, layout = documented.CRD_SPECS[kind]
            for resource in case.by_type(f"kubernetes:{api_version}:{kind}"):
                assert problems(resource.inputs["spec"], layout) == [], resource.name
                assert release(case, "cert-manager").urn in resource.dependencies
    _, layout = documented.CRD_SPECS["Certificate"]
    assert problems({"secretName": "x", "issuerRef": {"name": "y"}, "dnsName": []}, layout) != []


def test_an_internal_ca_is_always_there_for_in_cluster_tls(dev, prod) -> None:
    for case in (dev, prod):
        issuers = by_name(case, ISSUER)
        assert issuers["internal-ca"].inputs["spec"] == {"ca": {"secretName": "internal-ca"}}
        assert issuers["selfsigned"].inputs["spec"] == {"selfSigned": {}}
        ca = by_name(case, CERTIFICATE)["internal-ca"]
        assert ca.inputs["spec"]["isCA"] is True
        assert ca.inputs["metadata"]["namespace"] == "cert-manager"
        assert ca.inputs["spec"]["issuerRef"]["name"] == "selfsigned"
        assert ca.urn in issuers["internal-ca"].dependencies


def test_dev_signs_the_gateway_with_the_internal_ca_and_prod_uses_acme_dns01(dev, prod) -> None:
    assert "letsencrypt" not in by_name(dev, ISSUER)
    gateway = by_name(dev, CERTIFICATE)["gateway-tls"].inputs
    assert gateway["metadata"]["namespace"] == "istio-ingress"
    assert gateway["spec"]["issuerRef"] == {
        "name": "internal-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert gateway["spec"]["dnsNames"] == ["mlplatform.internal", "*.mlplatform.internal"]
    acme = by_name(prod, ISSUER)["letsencrypt"].inputs["spec"]["acme"]
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    (solver,) = acme["solvers"]
    assert solver["selector"] == {"dnsZones": ["ml.example.com"]}
    assert solver["dns01"]["route53"] == {
        "region": "us-west-2",
        "hostedZoneID": "Z0123456789EXAMPLE",
    }
    tls = by_name(prod, CERTIFICATE)["gateway-tls"].inputs["spec"]
    assert tls["issuerRef"]["name"] == "letsencrypt"
    assert tls["dnsNames"] == ["ml.example.com", "*.ml.example.com"]


def test_the_route53_role_may_only_answer_challenges_in_the_configured_zone(dev, prod) -> None:
    assert not [p for p in dev.by_type("aws:iam/rolePolicy:RolePolicy") if "route53" in p.name]
    (policy,) = [
        json.loads(p.inputs["policy"])
        for p in prod.by_type("aws:iam/rolePolicy:RolePolicy")
        if "route53" in p.name
    ]
    (change,) = [
        s for s in policy["Statement"] if "route53:ChangeResourceRecordSets" in s["Action"]
    ]
    assert change["Resource"] == "arn:aws:route53:::hostedzone/Z0123456789EXAMPLE"
    assert change["Condition"]["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
    }
    (role,) = [r for r in prod.by_type("aws:iam/role:Role") if "route53" in r.name]
    trust = json.dumps(role.inputs["assumeRolePolicy"])
    assert "system:serviceaccount:cert-manager:cert-manager" in trust
    account = release(prod, "cert-manager").inputs["values"]["serviceAccount"]
    assert account["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_the_gateway_serves_https_on_the_certificate_and_redirects_http(dev) -> None:
    gateway = one(dev, "kubernetes:networking.istio.io/v1:Gateway")
    api_version, layout = istio_layout.CRD_SPECS["Gateway"]
    assert gateway.inputs["apiVersion"] == api_version
    spec = gateway.inputs["spec"]
    assert problems(spec, layout) == []
    assert spec["selector"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    http, https = spec["servers"]
    assert http["port"]["number"] == 80 and http["tls"] == {"httpsRedirect": True}
    assert https["port"] == {"number": 443, "name": "https", "protocol": "HTTPS"}
    assert https["tls"] == {
        "mode": "SIMPLE",
        "credentialName": "gateway-tls",
        "minProtocolVersion": "TLSV1_2",
    }
    assert by_name(dev, CERTIFICATE)["gateway-tls"].urn in gateway.dependencies
    assert next(r for r in dev.resources if r.name == "mesh").urn in gateway.dependencies


def test_the_nlb_is_internal_with_ip_targets_and_goes_before_the_controller(dev) -> None:
    service = one(dev, SERVICE)
    assert_valid({"apiVersion": "v1", "kind": "Service", **service.inputs})
    annotations = service.inputs["metadata"]["annotations"]
    assert annotations[SCHEME] == "internal"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert (
        "load_balancing.cross_zone.enabled=true"
        in annotations["service.beta.kubernetes.io/aws-load-balancer-attributes"]
    )
    assert "mlplatform.io/public-ingress" not in annotations
    spec = service.inputs["spec"]
    assert spec["loadBalancerClass"] == "service.k8s.aws/nlb"
    assert spec["selector"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert release(dev, "aws-load-balancer-controller").urn in service.dependencies


def test_a_public_gateway_must_be_asked_for_and_is_marked() -> None:
    run = plan(lambda: platform(replace(DEV, public=True)))
    annotations = one(run, SERVICE).inputs["metadata"]["annotations"]
    assert annotations[SCHEME] == "internet-facing"
    assert annotations["mlplatform.io/public-ingress"] == "true"


def test_namespaces_are_restricted(dev) -> None:
    for ns in dev.by_type("kubernetes:core/v1:Namespace"):
        assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert_valid({"apiVersion": "v1", "kind": "Namespace", **ns.inputs})


def test_bad_domain_and_zone_are_refused_naming_each_field() -> None:
    bad = replace(
        DEV, domain="Not A Domain", hosted_zone_id="zone-1", acme_server="http://x", replicas=0
    )
    with pytest.raises(ValidationError) as info:
        plan(lambda: Ingress("ingress", bad))
    for field in ("domain", "hosted_zone_id", "acme_server", "replicas"):
        assert f"{field}:" in str(info.value)
    with pytest.raises(ValidationError, match="needs a domain"):
        plan(lambda: Ingress("ingress", replace(DEV, hosted_zone_id="Z0123456789EXAMPLE")))
