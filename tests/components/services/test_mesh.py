"""Istio on the mock engine: four releases at one pinned version in order, documented
values, STRICT mTLS, tracing to the collector, an HA gateway, Pod Security per namespace."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from components._validate import ValidationError
from components.services import mesh as mesh_module
from components.services.mesh import Mesh, MeshArgs, otlp_service
from infra.offline import CapturedResource, ProgramRun
from tests.components.layout import problems, values_problems
from tests.components.services import istio_layout as documented
from tests.components.support import assert_valid, one, plan

OTLP = "http://otel-collector-opentelemetry-collector.observability.svc:4318"
ARGS = MeshArgs(otlp_endpoint=OTLP)
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: Mesh("mesh", ARGS))


@pytest.fixture(scope="module")
def single() -> ProgramRun:
    args = replace(
        ARGS,
        istiod_replicas=1,
        gateway_replicas=1,
        node_security_group_id="sg-nodes",
        cluster_security_group_id="sg-cluster",
    )
    return plan(lambda: Mesh("mesh", args))


def releases(run: ProgramRun) -> dict[str, CapturedResource]:
    return {r.inputs["chart"]: r for r in run.by_type(RELEASE)}


def test_four_releases_share_one_pinned_version_and_install_in_order(run) -> None:
    found = releases(run)
    assert sorted(found) == sorted(documented.CHARTS)
    for release in found.values():
        assert release.inputs["version"] == documented.ISTIO_VERSION
        assert release.inputs["repositoryOpts"] == {"repo": documented.ISTIO_REPOSITORY}
    chain = [found[chart] for chart in documented.CHARTS]
    for before, after in itertools.pairwise(chain):
        assert before.urn in after.dependencies, (before.name, after.name)


def test_every_value_is_one_the_chart_documents(run, single) -> None:
    layouts = {
        "base": documented.BASE_VALUES,
        "cni": documented.CNI_VALUES,
        "istiod": documented.ISTIOD_VALUES,
        "gateway": documented.GATEWAY_VALUES,
    }
    for case in (run, single):
        for chart, release in releases(case).items():
            values = release.inputs["values"]
            assert values_problems(values, layouts[chart], chart=chart) == []
        mesh_config = releases(case)["istiod"].inputs["values"]["meshConfig"]
        assert problems(mesh_config, documented.MESH_CONFIG) == []
    # The check would catch a key the chart does not read.
    assert values_problems({"replicas": 2}, documented.GATEWAY_VALUES) != []


def test_istiod_uses_the_cni_logs_json_and_traces_to_the_collector(run) -> None:
    values = releases(run)["istiod"].inputs["values"]
    assert values["cni"] == {"enabled": True}
    mesh = values["meshConfig"]
    assert (mesh["accessLogFile"], mesh["accessLogEncoding"]) == ("/dev/stdout", "JSON")
    (otel,) = [p for p in mesh["extensionProviders"] if "opentelemetry" in p]
    assert otel["opentelemetry"]["service"] == (
        "otel-collector-opentelemetry-collector.observability.svc.cluster.local"
    )
    assert otel["opentelemetry"]["port"] == 4318
    assert otel["opentelemetry"]["http"]["path"] == "/v1/traces"
    assert mesh["defaultProviders"] == {"tracing": [otel["name"]], "metrics": ["prometheus"]}
    assert {"name": "prometheus", "prometheus": {}} in mesh["extensionProviders"]
    assert mesh["enableTracing"] is True
    assert mesh["defaultConfig"]["tracing"]["sampling"] == 1.0


def test_the_gateway_is_highly_available_across_zones_without_a_service_of_its_own(
    run, single
) -> None:
    values = releases(run)["gateway"].inputs["values"]
    assert values["service"] == {"type": "None"}
    assert values["autoscaling"]["enabled"] is True
    assert values["autoscaling"]["minReplicas"] == 2
    assert values["podDisruptionBudget"] == {"minAvailable": 1}
    (spread,) = values["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"] == values["labels"]
    assert values["labels"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # One replica: the chart would skip the PDB anyway; none is asked for.
    small = releases(single)["gateway"].inputs["values"]
    assert small["autoscaling"]["minReplicas"] == 1 and small["podDisruptionBudget"] == {}
    assert releases(single)["istiod"].inputs["values"]["autoscaleMin"] == 1
    assert releases(run)["istiod"].inputs["values"]["autoscaleMin"] == 2


def test_mtls_is_strict_mesh_wide_after_istiod(run) -> None:
    peer = one(run, "kubernetes:security.istio.io/v1:PeerAuthentication")
    assert peer.inputs["metadata"] == {"name": "default", "namespace": "istio-system"}
    assert peer.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
    api_version, layout = documented.CRD_SPECS["PeerAuthentication"]
    assert peer.inputs["apiVersion"] == api_version
    assert problems(peer.inputs["spec"], layout) == []
    assert problems({"mtls": {"mod": "STRICT"}}, layout) == ["mtls.mod: unknown field"]
    assert releases(run)["istiod"].urn in peer.dependencies


def test_namespaces_are_restricted_except_the_reasoned_cni_agent(run) -> None:
    namespaces = {
        n.inputs["metadata"]["name"]: n for n in run.by_type("kubernetes:core/v1:Namespace")
    }
    assert sorted(namespaces) == ["istio-cni", "istio-ingress", "istio-system"]
    for name, resource in namespaces.items():
        metadata = resource.inputs["metadata"]
        level = "privileged" if name == "istio-cni" else "restricted"
        assert metadata["labels"]["pod-security.kubernetes.io/enforce"] == level
        assert_valid({"apiVersion": "v1", "kind": "Namespace", **resource.inputs})
    reason = namespaces["istio-cni"].inputs["metadata"]["annotations"]
    assert "CNI" in reason["mlplatform.io/pod-security-reason"]
    assert releases(run)["cni"].inputs["namespace"] == "istio-cni"


def test_webhook_rules_only_for_a_separate_node_security_group(run, single) -> None:
    rule = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    assert run.by_type(rule) == []
    rules = {r.inputs["fromPort"]: r.inputs for r in single.by_type(rule)}
    assert sorted(rules) == [15012, 15017]
    for port, inputs in rules.items():
        assert inputs["toPort"] == port and inputs["ipProtocol"] == "tcp"
        assert inputs["securityGroupId"] == "sg-nodes"
        assert inputs["referencedSecurityGroupId"] == "sg-cluster"


def test_bad_arguments_are_refused_naming_each_field() -> None:
    bad = replace(
        ARGS,
        istiod_replicas=0,
        gateway_replicas=11,
        trace_sampling_percent=0.0,
        gateway_chart=replace(mesh_module.GATEWAY_CHART, version="1.29.0"),
        node_security_group_id="sg-nodes",
    )
    with pytest.raises(ValidationError) as info:
        plan(lambda: Mesh("mesh", bad))
    message = str(info.value)
    for field in (
        "istiod_replicas",
        "gateway_replicas",
        "trace_sampling_percent",
        "istiod_chart",
        "cluster_security_group_id",
    ):
        assert field in message


def test_the_collector_address_becomes_a_registry_host_and_port() -> None:
    assert otlp_service("http://collector.obs.svc:4318") == (
        "collector.obs.svc.cluster.local",
        4318,
    )
    assert otlp_service("http://otel.example.com:4317") == ("otel.example.com", 4317)
    with pytest.raises(ValueError, match="host:port"):
        otlp_service("http://collector.obs.svc")
