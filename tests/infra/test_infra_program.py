"""The composed program: the order the engine creates (and deletes) the EKS core in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.offline import CapturedResource, ProgramRun
from infra.offline.report import run_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prod_run() -> ProgramRun:
    return run_plan("prod", root=ROOT).run


def _addons(run: ProgramRun) -> dict[str, CapturedResource]:
    return {a.inputs["addonName"]: a for a in run.by_type("aws:eks/addon:Addon")}


def test_node_groups_wait_for_the_network_addons_only(prod_run: ProgramRun) -> None:
    addons = _addons(prod_run)
    bootstrap = {addons[n].urn for n in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")}
    node_addons = {addons["coredns"].urn, addons["aws-ebs-csi-driver"].urn}
    components = prod_run.by_type("mlplatform:compute:NodeGroup")
    assert len(components) == 3
    for component in components:
        assert bootstrap <= component.dependencies, component.name
        # Waiting for CoreDNS, which waits for these nodes, would deadlock `pulumi up`.
        assert not node_addons & component.dependencies, component.name
    # Each EKS node group is created under (so after) its component.
    parents = {g.parent for g in prod_run.by_type("aws:eks/nodeGroup:NodeGroup")}
    assert parents == {c.urn for c in components}


def test_node_addons_wait_for_every_node_group(prod_run: ProgramRun) -> None:
    addons = _addons(prod_run)
    groups = {g.urn for g in prod_run.by_type("aws:eks/nodeGroup:NodeGroup")}
    assert len(groups) == 3
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert groups <= addons[name].dependencies, name
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert not groups & addons[name].dependencies, name


def test_ebs_csi_addon_gets_its_role_only_once_the_policy_is_attached(
    prod_run: ProgramRun,
) -> None:
    (irsa,) = prod_run.by_type("mlplatform:irsa:ServiceAccountRole")
    (attachment,) = [
        a
        for a in prod_run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == irsa.urn
    ]
    assert attachment.urn in _addons(prod_run)["aws-ebs-csi-driver"].dependencies


def test_kubernetes_provider_waits_for_the_admin_access_entries(prod_run: ProgramRun) -> None:
    (provider,) = prod_run.by_type("pulumi:providers:kubernetes")
    entries = prod_run.by_type("aws:eks/accessEntry:AccessEntry")
    associations = prod_run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert len(entries) == len(associations) == 2  # prod lists two admin roles
    assert {r.urn for r in entries + associations} <= provider.dependencies


def test_flow_log_role_trusts_only_this_accounts_flow_logs(prod_run: ProgramRun) -> None:
    (flow_log,) = prod_run.by_type("aws:ec2/flowLog:FlowLog")
    (role,) = [
        r
        for r in prod_run.by_type("aws:iam/role:Role")
        if r.outputs.get("arn") == flow_log.inputs["iamRoleArn"]
    ]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:us-west-2:123456789012:vpc-flow-log/*"},
    }
