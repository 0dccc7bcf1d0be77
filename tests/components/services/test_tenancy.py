"""Application namespaces and the ML tenancy on the mock engine: default-deny baselines,
explicit allows, the allow-nothing AuthorizationPolicy, the ml-engineer Role and access."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components._validate import ValidationError
from components.services import tenancy
from components.services.ml_tenancy import Tenancy, TenancyArgs
from infra.offline import CapturedResource, ProgramRun
from policy.rules import evaluate
from tests.components.layout import problems
from tests.components.services import istio_layout
from tests.components.support import assert_valid, one, plan

ENGINEER = "arn:aws:iam::123456789012:role/ml-engineer"
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
APP = {"app": "inference"}


def with_mesh() -> None:
    control_plane = k8s.core.v1.ConfigMap("istiod", metadata={"name": "istiod", "namespace": "x"})
    owner = pulumi.ComponentResource("mlplatform:index:Owner", "owner")
    Tenancy(
        "tenancy",
        TenancyArgs(cluster_name="c", ml_engineer_role_arns=[ENGINEER], mesh=control_plane),
    )
    apps = tenancy.application_namespace("apps", parent=owner, mesh=control_plane)
    tenancy.allow_from_gateway(apps, name="from-gateway", parent=owner, pods=APP, port=8080)
    tenancy.allow_from_prometheus(apps, name="from-prometheus", parent=owner, pods=APP)
    tenancy.allow_egress(
        apps, name="to-db", parent=owner, pods=APP, ports=[5432], to_cidrs=["10.0.0.0/24"]
    )


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(with_mesh)


@pytest.fixture(scope="module")
def meshless() -> ProgramRun:
    return plan(lambda: Tenancy("tenancy", TenancyArgs(cluster_name="c")))


def in_namespace(run: ProgramRun, kind: str, namespace: str) -> dict[str, CapturedResource]:
    return {
        r.inputs["metadata"]["name"]: r
        for r in run.by_type(kind)
        if r.inputs["metadata"]["namespace"] == namespace
    }


def test_application_namespaces_are_restricted_injected_and_marked(run, meshless) -> None:
    namespaces = {
        n.inputs["metadata"]["name"]: n for n in run.by_type("kubernetes:core/v1:Namespace")
    }
    assert sorted(namespaces) == ["apps", "ml-serving"]
    for resource in namespaces.values():
        labels = resource.inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["istio-injection"] == "enabled"
        assert labels["mlplatform.io/namespace-kind"] == "application"
        assert_valid({"apiVersion": "v1", "kind": "Namespace", **resource.inputs})
    (plain,) = meshless.by_type("kubernetes:core/v1:Namespace")
    assert "istio-injection" not in plain.inputs["metadata"]["labels"]


def test_every_application_namespace_starts_from_default_deny(run) -> None:
    for namespace in ("ml-serving", "apps"):
        policies = in_namespace(run, NETWORK_POLICY, namespace)
        assert policies["default-deny"].inputs["spec"] == {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
        }
        (dns,) = policies["allow-dns"].inputs["spec"]["egress"]
        assert dns["to"] == [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ]
        assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        istiod, otlp = policies["allow-mesh"].inputs["spec"]["egress"]
        assert istiod["ports"] == [{"protocol": "TCP", "port": 15012}]
        assert istiod["to"][0]["podSelector"] == {"matchLabels": {"app": "istiod"}}
        assert [p["port"] for p in otlp["ports"]] == [4317, 4318]
        for policy in policies.values():
            assert_valid(
                {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **policy.inputs}
            )


def test_the_mesh_denies_everything_until_an_allow_names_the_caller(run) -> None:
    _, layout = istio_layout.CRD_SPECS["AuthorizationPolicy"]
    control_plane = one(run, "kubernetes:core/v1:ConfigMap")
    for resource in run.by_type(AUTHZ):
        assert problems(resource.inputs["spec"], layout) == [], resource.name
        assert control_plane.urn in resource.dependencies
    assert in_namespace(run, AUTHZ, "ml-serving")["allow-nothing"].inputs["spec"] == {}
    allow = in_namespace(run, AUTHZ, "apps")["from-gateway"].inputs["spec"]
    assert allow["selector"] == {"matchLabels": APP}
    assert allow["action"] == "ALLOW"
    (rule,) = allow["rules"]
    assert rule["from"] == [
        {"source": {"principals": ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"]}}
    ]
    assert rule["to"] == [{"operation": {"ports": ["8080"]}}]


def test_allows_open_only_the_named_port_to_the_named_peer(run) -> None:
    policies = in_namespace(run, NETWORK_POLICY, "apps")
    (gateway,) = policies["from-gateway"].inputs["spec"]["ingress"]
    assert gateway["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert gateway["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-ingress"}},
            "podSelector": {
                "matchLabels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}
            },
        }
    ]
    (scrape,) = policies["from-prometheus"].inputs["spec"]["ingress"]
    assert scrape["ports"] == [{"protocol": "TCP", "port": 15020}]
    assert scrape["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    # Prometheus has no sidecar identity: a network allow only.
    assert "from-prometheus" not in in_namespace(run, AUTHZ, "apps")
    (egress,) = policies["to-db"].inputs["spec"]["egress"]
    assert egress == {
        "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }


def test_without_the_mesh_there_is_no_istio_policy_or_istiod_egress(meshless) -> None:
    assert meshless.by_type(AUTHZ) == []
    assert sorted(in_namespace(meshless, NETWORK_POLICY, "ml-serving")) == [
        "allow-dns",
        "default-deny",
    ]


def test_an_allow_must_name_pods_and_ports() -> None:
    def program() -> None:
        owner = pulumi.ComponentResource("mlplatform:index:Owner", "owner")
        apps = tenancy.application_namespace("apps", parent=owner, mesh=None)
        tenancy.allow_from_gateway(apps, name="x", parent=owner, pods={}, port=8080)

    with pytest.raises(ValueError, match="name the pods and ports"):
        plan(program)


def test_the_ml_engineer_role_reads_and_scales_but_never_reads_secrets(run) -> None:
    role = one(run, "kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert role.inputs["metadata"] == {"name": "ml-engineer", "namespace": "ml-serving"}
    rules = role.inputs["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    assert "secrets" not in resources and "pods/exec" not in resources
    assert {"pods", "pods/log", "services", "deployments"} <= resources
    (scale,) = [rule for rule in rules if rule["resources"] == ["deployments/scale"]]
    assert "update" in scale["verbs"]
    verbs = {v for rule in rules for v in rule["verbs"]}
    assert not verbs & {"create", "delete", "*"}
    assert_valid({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", **role.inputs})
    binding = one(run, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ml-engineers"}
    ]
    assert binding.inputs["roleRef"]["name"] == "ml-engineer"
    assert_valid(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", **binding.inputs}
    )


def test_engineers_roles_map_to_the_group_and_nothing_more(run, meshless) -> None:
    entry = one(run, "aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == ENGINEER
    assert entry.inputs["kubernetesGroups"] == ["ml-engineers"]
    assert entry.inputs["type"] == "STANDARD"
    assert run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") == []
    assert meshless.by_type("aws:eks/accessEntry:AccessEntry") == []


def test_the_policy_pack_finds_nothing_to_object_to(run) -> None:
    findings = evaluate([(r.urn, r.type, r.inputs) for r in run.resources])
    assert [f for _, f in findings if f.level == "mandatory"] == []


def test_bad_role_arns_are_refused() -> None:
    args = TenancyArgs(
        cluster_name="c",
        ml_engineer_role_arns=["not-an-arn", ADMIN, ADMIN],
        admin_role_arns=[ADMIN],
    )
    with pytest.raises(ValidationError) as info:
        plan(lambda: Tenancy("tenancy", args))
    message = str(info.value)
    assert "'not-an-arn' is not an IAM role ARN" in message
    assert "is already an admin role" in message
    assert "lists a role twice" in message
