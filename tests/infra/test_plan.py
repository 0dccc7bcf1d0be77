"""The offline plan: both stacks plan clean and show the platform's safety facts."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from infra.config import ConfigError
from infra.offline import run_program
from infra.offline.report import MASK, PlanResult, exit_status, render_text, run_plan
from infra.offline.stack_file import load_stack_config
from infra.plan import main
from tests.offline_support import ROOT, of_type, options_program, parse_dot, plan_subprocess

NVIDIA_AMIS = {"AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"}


def assert_platform_facts(document: dict[str, Any], *, zones: int, nats: int) -> None:
    """The facts every stack must show, read from the plan's JSON document."""
    (cluster,) = of_type(document, "aws:eks/cluster:Cluster")
    inputs = cluster["inputs"]
    encryption = inputs["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"].startswith("arn:aws:kms:")
    assert sorted(inputs["enabledClusterLogTypes"]) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    subnets = of_type(document, "aws:ec2/subnet:Subnet")
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s["inputs"]["tags"]]
    assert len({s["inputs"]["availabilityZone"] for s in private}) == zones
    assert len(of_type(document, "aws:ec2/natGateway:NatGateway")) == nats

    groups = {
        g["inputs"]["labels"]["mlplatform.io/pool"]: g["inputs"]
        for g in of_type(document, "aws:eks/nodeGroup:NodeGroup")
    }
    pools = {
        p["inputs"]["metadata"]["name"]: p["inputs"]["spec"]
        for p in of_type(document, "kubernetes:karpenter.sh/v1:NodePool")
    }
    assert set(groups) | set(pools) == {"system", "gpu", "spot"} and not set(groups) & set(pools)
    assert groups["system"]["capacityType"] == "ON_DEMAND"
    for name, group in groups.items():  # managed pools
        if name == "gpu":
            assert group["amiType"] in NVIDIA_AMIS
            assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in group[
                "taints"
            ]
        if name == "spot":
            assert group["capacityType"] == "SPOT" and len(group["instanceTypes"]) >= 3
    for name, spec in pools.items():  # Karpenter pools
        requirements = {r["key"]: r["values"] for r in spec["template"]["spec"]["requirements"]}
        if name == "gpu":
            assert spec["template"]["spec"]["taints"] == [
                {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
            ]
        if name == "spot":
            assert requirements["karpenter.sh/capacity-type"] == ["spot"]
            assert len(requirements["node.kubernetes.io/instance-type"]) >= 3

    templates = {t["urn"]: t for t in of_type(document, "aws:ec2/launchTemplate:LaunchTemplate")}
    assert len(templates) == len(groups)
    for template in templates.values():
        assert template["inputs"]["metadataOptions"]["httpTokens"] == "required"
    assert not [v for v in document["violations"] if v["level"] == "mandatory"]


def test_prod_plans_clean_from_the_command_line() -> None:
    result = plan_subprocess("--stack", "prod", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["project"], document["stack"]) == ("mlplatform", "prod")
    assert_platform_facts(document, zones=3, nats=3)
    (cluster,) = of_type(document, "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] is False
    assert document["outputs"]["kubeconfig"] == MASK
    assert "Traceback" not in result.stderr
    assert isinstance(document["elapsed_s"], float) and document["elapsed_s"] > 0
    assert all(r["protect"] for r in of_type(document, "aws:eks/cluster:Cluster"))
    assert_foundation_fixes(document, prod=True)
    assert_observability(document)


def assert_observability(document: dict[str, Any]) -> None:
    """The observability stack as the prod plan must show it."""
    releases = {
        r["inputs"]["name"]: r["inputs"] for r in of_type(document, "kubernetes:helm.sh/v3:Release")
    }
    versions = {
        name: releases[name]["version"]
        for name in ("kube-prometheus-stack", "otel-collector", "jaeger")
    }
    assert versions == {
        "kube-prometheus-stack": "88.5.3",
        "otel-collector": "0.170.0",
        "jaeger": "4.11.1",
    }
    grafana = releases["kube-prometheus-stack"]["values"]["grafana"]
    assert grafana["admin"]["existingSecret"] == "grafana-admin" and "adminPassword" not in grafana
    secrets = {
        s["inputs"]["metadata"]["name"]: s for s in of_type(document, "kubernetes:core/v1:Secret")
    }
    assert secrets["grafana-admin"]["inputs"]["stringData"] == MASK
    maps = {
        c["inputs"]["metadata"]["name"]: c
        for c in of_type(document, "kubernetes:core/v1:ConfigMap")
    }
    assert maps["inference-dashboard"]["inputs"]["metadata"]["labels"] == {"grafana_dashboard": "1"}
    rules = of_type(document, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert {r["inputs"]["metadata"]["name"] for r in rules} == {"inference-slo", "anomaly"}
    alerts = [
        r
        for rule in rules
        for g in rule["inputs"]["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    for alert in alerts:
        runbook = alert["annotations"]["runbook_url"].rsplit("/", 1)[-1]
        assert (ROOT / "docs" / "runbooks" / runbook).is_file(), alert["alert"]


def assert_foundation_fixes(document: dict[str, Any], *, prod: bool) -> None:
    """What a real `pulumi up` needs, read from the plan's JSON document."""
    (cluster,) = of_type(document, "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster["inputs"]["deletionProtection"] is prod
    keys = {k["id"] for k in of_type(document, "aws:kms/key:Key")}
    for group in of_type(document, "aws:cloudwatch/logGroup:LogGroup"):
        assert group["inputs"]["kmsKeyId"].rsplit("/", 1)[-1] in keys, group["name"]
    groups = {
        g["inputs"]["labels"]["mlplatform.io/pool"]: g
        for g in of_type(document, "aws:eks/nodeGroup:NodeGroup")
    }
    addons = {a["inputs"]["addonName"]: a for a in of_type(document, "aws:eks/addon:Addon")}
    coredns = set(addons["coredns"]["dependencies"])
    assert groups["system"]["urn"] in coredns
    assert not {g["urn"] for pool, g in groups.items() if pool != "system"} & coredns
    assert (
        not {p["urn"] for p in of_type(document, "kubernetes:karpenter.sh/v1:NodePool")} & coredns
    )
    assert addons["vpc-cni"]["inputs"]["serviceAccountRoleArn"]
    cni = [
        a
        for a in of_type(document, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["inputs"]["policyArn"].endswith("/AmazonEKS_CNI_Policy")
    ]
    assert len(cni) == 1 and cni[0]["name"].endswith("-vpc-cni-cni")  # not on a node role
    endpoints = [
        e["inputs"]["serviceName"]
        for e in of_type(document, "aws:ec2/vpcEndpoint:VpcEndpoint")
        if e["inputs"]["vpcEndpointType"] == "Interface"
    ]
    assert len(endpoints) == (5 if prod else 0)


def test_dev_plans_clean(dev_plan: PlanResult) -> None:
    document = json.loads(json.dumps(dev_plan.to_json()))
    assert exit_status(dev_plan) == 0
    assert_platform_facts(document, zones=2, nats=1)
    (cluster,) = of_type(document, "aws:eks/cluster:Cluster")
    vpc = cluster["inputs"]["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert_foundation_fixes(document, prod=False)
    assert_capacity(document)


GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}


def assert_capacity(document: dict[str, Any]) -> None:
    """Karpenter and the NVIDIA stack as the dev plan must show them."""
    releases = {r["inputs"]["name"]: r for r in of_type(document, "kubernetes:helm.sh/v3:Release")}
    karpenter = releases["karpenter"]["inputs"]
    assert (karpenter["chart"], karpenter["version"]) == (
        "oci://public.ecr.aws/karpenter/karpenter",
        "1.14.1",
    )
    (queue,) = of_type(document, "aws:sqs/queue:Queue")
    assert karpenter["values"]["settings"]["interruptionQueue"] == queue["inputs"]["name"]
    rules = of_type(document, "aws:cloudwatch/eventRule:EventRule")
    targets = of_type(document, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(rules) == len(targets) == 5
    queue_arn = f"arn:aws:sqs:us-west-2:123456789012:{queue['inputs']['name']}"
    assert {t["inputs"]["arn"] for t in targets} == {queue_arn}
    pools = {
        p["inputs"]["metadata"]["name"]: p
        for p in of_type(document, "kubernetes:karpenter.sh/v1:NodePool")
    }
    assert set(pools) == {"gpu", "spot"}
    gpu = pools["gpu"]["inputs"]["spec"]["template"]
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["metadata"]["labels"]["mlplatform.io/pool"] == "gpu"
    for node_class in of_type(document, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert node_class["inputs"]["spec"]["metadataOptions"]["httpTokens"] == "required"
    for chart, version in (("nvidia-device-plugin", "0.20.0"), ("dcgm-exporter", "4.8.2")):
        release = releases[chart]["inputs"]
        assert release["version"] == version
        assert GPU_TOLERATION in release["values"]["tolerations"]
    managed = {
        g["inputs"]["labels"]["mlplatform.io/pool"]
        for g in of_type(document, "aws:eks/nodeGroup:NodeGroup")
    }
    assert managed == {"system"}  # no managed node group for a Karpenter pool
    release_urn = releases["karpenter"]["urn"]
    for pool in pools.values():
        assert release_urn in pool["dependencies"]


def test_the_dev_graph_draws_the_node_pools_after_the_karpenter_release() -> None:
    result = plan_subprocess("--stack", "dev", "--graph")
    assert result.returncode == 0, result.stderr
    graph = parse_dot(result.stdout)
    release = (
        "urn:pulumi:dev::mlplatform::mlplatform:index:Karpenter$kubernetes:helm.sh/v3:Release::"
        "mlplatform-dev-karpenter"
    )
    assert release in graph.nodes
    pools = [n for n in graph.nodes if "$kubernetes:karpenter.sh/v1:NodePool::" in n]
    assert len(pools) == 2
    for pool in pools:  # an edge runs from a resource to what it waits for
        assert (pool, release) in graph.edges, pool


RESOURCE_KEYS = {
    "urn",
    "type",
    "name",
    "parent",
    "id",
    "inputs",
    "dependencies",
    "protect",
    "ignoreChanges",
    "provider",
}


def test_json_document_shape(dev_plan: PlanResult) -> None:
    document = dev_plan.to_json()
    assert list(document) == ["project", "stack", "elapsed_s", "resources", "outputs", "violations"]
    for resource in document["resources"]:
        assert set(resource) == RESOURCE_KEYS
    urns = {r["urn"] for r in document["resources"]}
    assert all(r["parent"] is None or r["parent"] in urns for r in document["resources"])
    captured = {r.urn: r for r in dev_plan.run.resources}
    for resource in document["resources"]:
        assert resource["dependencies"] == sorted(resource["dependencies"])
        assert set(resource["dependencies"]) <= urns, resource["urn"]
        # The engine's id for custom resources; none for components.
        if captured[resource["urn"]].custom:
            assert isinstance(resource["id"], str) and resource["id"], resource["urn"]
        else:
            assert resource["id"] is None, resource["urn"]
    # dev sets protect: false; the cluster's node groups wait for the cluster.
    assert not any(r["protect"] for r in document["resources"])
    (cluster,) = of_type(document, "aws:eks/cluster:Cluster")
    for group in of_type(document, "aws:eks/nodeGroup:NodeGroup"):
        assert cluster["urn"] in group["dependencies"]
    (k8s_provider,) = of_type(document, "pulumi:providers:kubernetes")
    assert k8s_provider["id"]
    outputs = document["outputs"]
    for key in ("clusterName", "clusterEndpoint", "oidcProviderArn", "vpcId", "kubeconfig"):
        assert outputs[key], key
    assert outputs["kubeconfig"] == MASK
    assert set(outputs["nodeGroupNames"]) == {"system"}  # gpu and spot come from Karpenter
    assert len(outputs["privateSubnetIds"]) == 2
    # The k8s provider's kubeconfig is a secret input: masked, never printed.
    (provider,) = [r for r in document["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    assert provider["inputs"]["kubeconfig"] == MASK
    assert "BEGIN CERTIFICATE" not in json.dumps(document)


def test_text_output_is_a_tree_with_counts_and_findings(dev_plan: PlanResult) -> None:
    text = render_text(dev_plan)
    lines = text.splitlines()
    # The component holding the EKS cluster, whatever its type token.
    (eks,) = dev_plan.run.by_type("aws:eks/cluster:Cluster")
    component = next(r for r in dev_plan.run.resources if r.urn == eks.parent)
    marker = f"{component.type}  {component.name}"
    cluster_line = next(i for i, line in enumerate(lines) if marker in line)
    child = lines[cluster_line + 1]
    indent = len(lines[cluster_line]) - len(lines[cluster_line].lstrip())
    assert len(child) - len(child.lstrip()) > indent
    assert "   1  aws:eks/nodeGroup:NodeGroup" in text
    assert "   2  kubernetes:karpenter.sh/v1:NodePool" in text
    assert "Policy: 0 mandatory" in text
    assert 'kubeconfig: "[secret]"' in text


def test_a_bad_stack_file_exits_2_with_one_line(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.broken.yaml"
    stack_file.write_text(
        (ROOT / "Pulumi.dev.yaml").read_text().replace("azCount: 2", "azCount: 9")
    )
    result = plan_subprocess("--config-file", str(stack_file))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "mlplatform:azCount: 9 is outside 2..6" in lines[0]


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout[-500:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_graviton_type_in_the_spot_pool_exits_2_naming_the_key(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(
        (ROOT / "Pulumi.dev.yaml").read_text().replace("m5.xlarge]", "m7g.xlarge]")
    )
    line = _one_line_error(plan_subprocess("--config-file", str(stack_file)))
    assert "mlplatform:nodeGroups.spot.instanceTypes: 'm7g.xlarge' is an Arm (Graviton)" in line


def _prod_at(version: str, directory: Path, name: str = "Pulumi.prod.yaml") -> Path:
    """A copy of the prod stack file moved to Kubernetes ``version`` (kube-proxy with it)."""
    text = (
        (ROOT / "Pulumi.prod.yaml")
        .read_text()
        .replace(
            "config:\n",
            f'config:\n  mlplatform:kubernetesVersion: "{version}"\n'
            f"  mlplatform:addonVersions: {{kube-proxy: v{version}.0-eksbuild.1}}\n",
            1,
        )
    )
    path = directory / name
    path.write_text(text)
    return path


def test_a_jump_of_two_minor_versions_exits_2_naming_the_key(tmp_path: Path) -> None:
    # The deployed file named explicitly (a pull request's base branch): 1.34 -> 1.36.
    base = _prod_at("1.34", tmp_path, "base.yaml")
    change = _prod_at("1.36", tmp_path)
    line = _one_line_error(
        plan_subprocess(
            "--stack", "prod", "--config-file", str(change), "--previous-config", str(base)
        )
    )
    assert line == (
        "error: invalid stack configuration: mlplatform:kubernetesVersion: '1.36' is 2 minor "
        "versions above the running 1.34; EKS upgrades one minor version at a time: set 1.35, "
        "run `pulumi up`, then go on"
    )
    one_step = _prod_at("1.35", tmp_path, "Pulumi.next.yaml")
    args = ("--stack", "prod", "--config-file", str(one_step), "--previous-config", str(base))
    assert plan_subprocess(*args).returncode == 0


def test_planning_another_file_compares_it_with_the_committed_stack_file(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", checkout / "Pulumi.yaml")
    _prod_at("1.34", checkout)  # the committed prod file runs 1.34
    change = _prod_at("1.36", tmp_path)
    with pytest.raises(ConfigError, match=r"2 minor versions above the running 1\.34"):
        run_plan("prod", change, root=checkout)
    assert run_plan("prod", _prod_at("1.35", tmp_path, "Pulumi.x.yaml"), root=checkout).run


def test_unknown_stack_names_the_allowed_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "staging"]) == 2
    err = capsys.readouterr().err
    assert "unknown stack 'staging'" in err and "dev, prod" in err
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--stack"])
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_json_and_graph_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--stack", "dev", "--json", "--graph"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "not allowed with argument" in captured.err and captured.out == ""


def test_json_shows_the_engine_view_of_each_resource() -> None:
    document = run_plan("dev", program=options_program, root=ROOT).to_json()
    by_name = {r["name"]: r for r in document["resources"]}
    kept, first, east = by_name["kept"], by_name["first"], by_name["east"]
    assert kept["protect"] is True and first["protect"] is False
    assert kept["ignoreChanges"] == ["tags"] and first["ignoreChanges"] == []
    assert kept["provider"] == f"{east['urn']}::{east['id']}"
    assert first["provider"] is None
    assert first["urn"] in kept["dependencies"]
    assert by_name["policy"]["dependencies"] == [first["urn"]]
    assert first["id"].startswith("first-")  # the bucket's auto-name, as S3 ids are
    assert by_name["group"]["id"] is None and by_name["group"]["protect"] is True


def test_elapsed_time_covers_the_run_and_is_reported_in_seconds() -> None:
    started = time.perf_counter()
    result = run_plan("dev", program=options_program, root=ROOT)
    wall = time.perf_counter() - started
    assert 0 < result.elapsed_s <= wall
    assert result.to_json()["elapsed_s"] == round(result.elapsed_s, 3)


def test_graph_from_the_command_line(
    dev_plan: PlanResult, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stack", "dev", "--graph"]) == 0
    graph = parse_dot(capsys.readouterr().out)
    assert graph.name == "mlplatform-dev"
    assert set(graph.nodes) == {r.urn for r in dev_plan.run.resources}


def _secret_program() -> None:
    token = pulumi.Config().require_secret("alertToken")
    aws.ssm.Parameter("alert-token", type="SecureString", value=token)
    pulumi.export("alertToken", token)
    pulumi.export("plain", "visible")


def test_secure_values_become_masked_placeholders(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.qa.yaml"
    stack_file.write_text(
        "config:\n  aws:region: us-west-2\n"
        "  mlplatform:alertToken:\n    secure: AAABAJciphertextQQ==\n"
    )
    config = load_stack_config(None, stack_file, root=ROOT)
    assert config.values["mlplatform:alertToken"] == "[secret:mlplatform:alertToken]"
    assert config.secret_keys == ("mlplatform:alertToken",)
    result = run_plan(None, stack_file, program=_secret_program, root=ROOT)
    assert result.run.outputs["alertToken"] == "[secret:mlplatform:alertToken]"
    document = result.to_json()
    assert document["outputs"] == {"alertToken": MASK, "plain": "visible"}
    (parameter,) = [r for r in document["resources"] if r["type"] == "aws:ssm/parameter:Parameter"]
    assert parameter["inputs"]["value"] == MASK
    printed = json.dumps(document) + render_text(result)
    assert "ciphertext" not in printed
    assert "[secret:mlplatform:alertToken]" not in printed


def _unsafe_program() -> None:
    aws.eks.Cluster(
        "open",
        role_arn="arn:aws:iam::123456789012:role/eks",
        vpc_config={"subnet_ids": ["subnet-1"], "endpoint_public_access": True},
    )


def test_an_unsafe_program_exits_1() -> None:
    result = run_plan("dev", program=_unsafe_program, root=ROOT)
    assert exit_status(result) == 1
    mandatory = [v for v in result.violations if v.level == "mandatory"]
    assert mandatory and all(v.urn.endswith("::open") for v in mandatory)
    assert "Policy: " in render_text(result) and "[mandatory]" in render_text(result)


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.mark.usefixtures("in_root")
def test_the_language_host_entry_point_runs_the_program() -> None:
    """Run ``infra/`` the way Pulumi's language host does (a script named __main__)."""
    config = load_stack_config("prod", root=ROOT)
    run = run_program(
        lambda: runpy.run_path("infra", run_name="__main__"),
        project=config.project,
        stack=config.stack,
        config=config.values,
    )
    assert run.outputs["clusterName"] == "mlplatform-prod"
    assert "kubeconfig" in run.secret_outputs
    assert len(run.by_type("aws:eks/nodeGroup:NodeGroup")) == 1  # system; gpu and spot: Karpenter
    assert len(run.by_type("kubernetes:karpenter.sh/v1:NodePool")) == 2
    assert run.created_in_callbacks == []
