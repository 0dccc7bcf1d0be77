"""The composed program: the order the engine creates (and deletes) the platform in, and the
facts each stack must show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.offline import CapturedResource, ProgramRun
from infra.offline.report import run_plan

ROOT = Path(__file__).resolve().parents[2]


MANAGED_POOLS = {
    "system": {"instanceTypes": ["m7i.large"], "minSize": 1, "maxSize": 2},
    "gpu": {"provisioner": "managed", "instanceTypes": ["g5.xlarge"], "minSize": 0, "maxSize": 1},
    "spot": {"provisioner": "managed", "minSize": 1, "maxSize": 4},
}


def managed_dev(directory: Path) -> Path:
    """The dev stack with every pool a managed node group (provisioner: managed)."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["mlplatform:nodeGroups"] = MANAGED_POOLS
    path = directory / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module", params=["dev", "prod", "dev-managed"])
def stack_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, ProgramRun]:
    if request.param == "dev-managed":
        stack_file = managed_dev(tmp_path_factory.mktemp("managed"))
        return request.param, run_plan("dev", stack_file, root=ROOT).run
    return request.param, run_plan(request.param, root=ROOT).run


@pytest.fixture(scope="module")
def prod_run() -> ProgramRun:
    return run_plan("prod", root=ROOT).run


@pytest.fixture(scope="module")
def managed_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return run_plan("dev", managed_dev(tmp_path_factory.mktemp("managed")), root=ROOT).run


def _addons(run: ProgramRun) -> dict[str, CapturedResource]:
    return {a.inputs["addonName"]: a for a in run.by_type("aws:eks/addon:Addon")}


def _pools(run: ProgramRun) -> dict[str, CapturedResource]:
    return {
        g.inputs["labels"]["mlplatform.io/pool"]: g
        for g in run.by_type("aws:eks/nodeGroup:NodeGroup")
    }


def _pool_components(run: ProgramRun) -> dict[str, CapturedResource]:
    groups = _pools(run)
    components = {c.urn: c for c in run.by_type("mlplatform:index:NodeGroup")}
    return {pool: components[group.parent] for pool, group in groups.items() if group.parent}


def test_node_groups_wait_for_the_network_addons_only(managed_run: ProgramRun) -> None:
    addons = _addons(managed_run)
    bootstrap = {addons[n].urn for n in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")}
    node_addons = {addons["coredns"].urn, addons["aws-ebs-csi-driver"].urn}
    components = managed_run.by_type("mlplatform:index:NodeGroup")
    assert len(components) == 3
    for component in components:
        assert bootstrap <= component.dependencies, component.name
        # Waiting for CoreDNS, which waits for the system nodes, would deadlock `pulumi up`.
        assert not node_addons & component.dependencies, component.name


def _descendants(run: ProgramRun, urn: str) -> set[str]:
    children = {r.urn for r in run.children_of(urn)}
    return children.union(*(_descendants(run, c) for c in children))


def test_coredns_and_ebs_csi_wait_for_the_system_pool_and_no_other(stack_run) -> None:
    # The engine records a dependency on a component as its resources.
    _, run = stack_run
    addons = _addons(run)
    pools = {pool: _descendants(run, c.urn) for pool, c in _pool_components(run).items()}
    assert _pools(run)["system"].urn in pools["system"]
    node_pools = {r.urn for r in run.by_type("kubernetes:karpenter.sh/v1:NodePool")}
    for name in ("coredns", "aws-ebs-csi-driver"):
        depends = addons[name].dependencies
        assert _pools(run)["system"].urn in depends, name
        for other in set(pools) - {"system"}:
            assert not pools[other] & depends, (name, other)
        assert not node_pools & depends, name
    coredns = json.loads(addons["coredns"].inputs["configurationValues"])
    assert coredns["nodeSelector"] == {"mlplatform.io/pool": "system"}


def test_addon_roles_are_handed_out_only_once_their_policy_is_attached(
    prod_run: ProgramRun,
) -> None:
    addons = _addons(prod_run)
    roles = {r.name: r for r in prod_run.by_type("mlplatform:index:ServiceAccountRole")}
    for addon, role in (("aws-ebs-csi-driver", "ebs-csi"), ("vpc-cni", "vpc-cni")):
        (component,) = [r for name, r in roles.items() if name.endswith(f"-{role}")]
        (attachment,) = [
            a
            for a in prod_run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.parent == component.urn
        ]
        assert attachment.urn in addons[addon].dependencies, addon


def test_kubernetes_provider_waits_for_every_admin_including_the_deploy_role(
    prod_run: ProgramRun,
) -> None:
    (provider,) = prod_run.by_type("pulumi:providers:kubernetes")
    entries = [
        e
        for e in prod_run.by_type("aws:eks/accessEntry:AccessEntry")
        # Admins; the ML engineers' entries map to a Kubernetes group instead.
        if e.inputs["type"] == "STANDARD" and not e.inputs.get("kubernetesGroups")
    ]
    associations = prod_run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    principals = sorted(e.inputs["principalArn"] for e in entries)
    assert principals == [
        "arn:aws:iam::123456789012:role/ci/platform-deployer",
        "arn:aws:iam::123456789012:role/platform-admin",
    ]
    assert {r.urn for r in entries + associations} <= provider.dependencies


def test_every_log_group_is_encrypted_with_a_customer_key(stack_run) -> None:
    _, run = stack_run
    keys = {k.outputs["arn"] for k in run.by_type("aws:kms/key:Key")}
    groups = run.by_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 2
    for group in groups:
        assert group.inputs["kmsKeyId"] in keys, group.name


def test_cluster_support_type_and_deletion_protection(stack_run) -> None:
    stack, run = stack_run
    (cluster,) = run.by_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster.inputs["deletionProtection"] is (stack == "prod")
    assert cluster.inputs["version"] == "1.35"


def test_node_roles_carry_no_cni_policy_and_the_cni_has_its_own(stack_run) -> None:
    _, run = stack_run
    cni = [
        a
        for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["policyArn"].endswith("/AmazonEKS_CNI_Policy")
    ]
    (attachment,) = cni
    (component,) = [r for r in run.resources if r.urn == attachment.parent]
    assert component.type == "mlplatform:index:ServiceAccountRole"
    assert component.name.endswith("-vpc-cni")


def test_interface_endpoints_in_prod_only(stack_run) -> None:
    stack, run = stack_run
    interface = [
        e.inputs["serviceName"].rsplit(".", 1)[-1]
        for e in run.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Interface"
    ]
    assert sorted(interface) == (["api", "dkr", "ec2", "logs", "sts"] if stack == "prod" else [])


def test_prod_api_is_reachable_only_from_the_listed_networks(prod_run: ProgramRun) -> None:
    (cluster,) = prod_run.by_type("aws:eks/cluster:Cluster")
    (group,) = [
        g
        for g in prod_run.by_type("aws:ec2/securityGroup:SecurityGroup")
        if g.name.endswith("-cluster-sg")
    ]
    cidrs = [c for rule in group.inputs["ingress"] for c in rule["cidrBlocks"]]
    assert cidrs == ["10.30.8.0/24", "10.99.0.0/24"]
    assert "10.20.0.0/16" not in cidrs  # not the whole VPC
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False


def test_nothing_is_created_inside_an_apply(stack_run) -> None:
    _, run = stack_run
    assert run.created_in_callbacks == []


def test_the_managed_provisioner_still_builds_gpu_and_spot_node_groups(
    managed_run: ProgramRun,
) -> None:
    assert set(_pools(managed_run)) == {"system", "gpu", "spot"}
    assert managed_run.by_type("kubernetes:karpenter.sh/v1:NodePool") == []
    assert managed_run.by_type("mlplatform:index:Karpenter") == []
    # GPU nodes still need the device plugin, whoever provides them.
    names = {r.inputs["name"] for r in managed_run.by_type("kubernetes:helm.sh/v3:Release")}
    assert {"nvidia-device-plugin", "dcgm-exporter"} <= names


def test_karpenter_waits_for_the_system_pool_and_coredns(prod_run: ProgramRun) -> None:
    addons = _addons(prod_run)
    (release,) = [
        r
        for r in prod_run.by_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["name"] == "karpenter"
    ]
    assert addons["coredns"].urn in release.dependencies
    assert release.inputs["values"]["replicas"] == 2
    # Everything in the cluster goes through the cluster's own Kubernetes provider.
    (provider,) = prod_run.by_type("pulumi:providers:kubernetes")
    for resource in prod_run.resources:
        if resource.type.startswith("kubernetes:"):
            assert (resource.provider or "").startswith(provider.urn), resource.urn


def test_karpenter_pools_get_no_managed_node_group(stack_run) -> None:
    stack, run = stack_run
    if stack == "dev-managed":
        return
    assert set(_pools(run)) == {"system"}
    pools = {
        p.inputs["metadata"]["name"] for p in run.by_type("kubernetes:karpenter.sh/v1:NodePool")
    }
    assert pools == {"gpu", "spot"}


def test_observability_runs_after_the_add_ons_and_the_gpu_exporter_after_the_operator(
    prod_run: ProgramRun,
) -> None:
    named = {r.inputs["name"]: r for r in prod_run.by_type("kubernetes:helm.sh/v3:Release")}
    addons = _addons(prod_run)
    assert addons["coredns"].urn in named["kube-prometheus-stack"].dependencies
    assert named["kube-prometheus-stack"].urn in named["dcgm-exporter"].dependencies
    assert named["dcgm-exporter"].inputs["values"]["serviceMonitor"] == {"enabled": True}
    assert "grafanaAdminPassword" in prod_run.secret_outputs
    assert prod_run.outputs["otlpEndpoint"].endswith(".observability.svc:4318")


def test_an_existing_stack_keeps_coredns_and_the_ebs_csi_driver(prod_run: ProgramRun) -> None:
    # Created by the program before ClusterAddons existed, as children of the Cluster
    # under its former token: those URNs are aliases, so EKS is not asked for them again.
    former = "urn:pulumi:prod::mlplatform::mlplatform:cluster:Cluster::mlplatform-prod"
    addons = _addons(prod_run)
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert addons[name].name == f"mlplatform-prod-{name}"
        assert {"spec": {"parentUrn": former}} in addons[name].aliases, name
