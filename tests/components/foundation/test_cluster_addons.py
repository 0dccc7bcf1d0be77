"""Cluster add-ons on the mock engine: CoreDNS and the EBS CSI driver on the system pool."""

from __future__ import annotations

import json
from dataclasses import replace

import pulumi
import pytest

from components.foundation.cluster_addons import ClusterAddons, ClusterAddonsArgs
from tests.components.support import assert_valid, plan

ISSUER = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC123"
ARGS = ClusterAddonsArgs(
    cluster_name="ml-dev",
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC123",
    oidc_issuer=ISSUER,
    addon_versions={"coredns": "v1.14.2-eksbuild.4", "aws-ebs-csi-driver": "v1.66.0-eksbuild.1"},
    system_pool="core",
)


def _addons(args: ClusterAddonsArgs = ARGS):
    run = plan(lambda: ClusterAddons("ml", args))
    return run, {a.inputs["addonName"]: a for a in run.by_type("aws:eks/addon:Addon")}


def test_coredns_is_pinned_to_the_system_pool() -> None:
    _, addons = _addons()
    coredns = addons["coredns"].inputs
    assert coredns["addonVersion"] == "v1.14.2-eksbuild.4"
    assert json.loads(coredns["configurationValues"]) == {
        "nodeSelector": {"mlplatform.io/pool": "core"},
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}
        ],
        "replicaCount": 2,
    }


def test_ebs_csi_controller_on_the_system_pool_nodes_everywhere_with_its_own_role() -> None:
    run, addons = _addons()
    ebs = addons["aws-ebs-csi-driver"].inputs
    values = json.loads(ebs["configurationValues"])
    assert values["controller"]["nodeSelector"] == {"mlplatform.io/pool": "core"}
    assert values["node"] == {"tolerateAllTaints": True}
    (role,) = run.by_type("aws:iam/role:Role")
    assert ebs["serviceAccountRoleArn"].startswith(f"arn:aws:iam::123456789012:role/{role.name}-")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    host = ISSUER.removeprefix("https://")
    assert statement["Condition"]["StringEquals"][f"{host}:sub"] == (
        "system:serviceaccount:kube-system:ebs-csi-controller-sa"
    )
    (attachment,) = run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"].endswith("service-role/AmazonEBSCSIDriverPolicy")


def test_children_alias_their_former_urns() -> None:
    # Before ClusterAddons existed the add-ons and the EBS CSI role were children of the
    # Cluster component under its former token: those URNs are their aliases.
    former = "urn:pulumi:t::mlplatform::mlplatform:cluster:Cluster::ml"

    def program() -> None:
        cluster = pulumi.ComponentResource("mlplatform:index:Cluster", "ml")
        ClusterAddons(
            "ml",
            replace(ARGS, former_parent_urn=former),
            opts=pulumi.ResourceOptions(parent=cluster),
        )

    run = plan(program)
    for addon in run.by_type("aws:eks/addon:Addon"):
        assert {"spec": {"parentUrn": former}} in addon.aliases, addon.aliases
    (role,) = run.by_type("mlplatform:index:ServiceAccountRole")
    assert {
        "spec": {"type": "mlplatform:irsa:ServiceAccountRole", "parentUrn": former}
    } in role.aliases
    # Names are unchanged, so each alias spec resolves to the former URN exactly.
    assert {a.name for a in run.by_type("aws:eks/addon:Addon")} == {
        "ml-coredns",
        "ml-aws-ebs-csi-driver",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"addon_versions": {"coredns": "v1.14.2-eksbuild.4"}}, "addon_versions"),
        (
            {"addon_versions": {**ARGS.addon_versions, "coredns": "latest"}},
            "addon_versions.coredns",
        ),
        (
            {"addon_versions": {**ARGS.addon_versions, "vpc-cni": "v1.0.0-eksbuild.1"}},
            "addon_versions",
        ),
        ({"system_pool": "Core Pool"}, "system_pool"),
        ({"coredns_replicas": 1}, "coredns_replicas"),
    ],
)
def test_invalid_args_are_rejected_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"{field}: "):
        ClusterAddons("ml", replace(ARGS, **changes))


def test_the_addons_themselves_wait_for_what_the_component_depends_on() -> None:
    # A component's depends_on does not reach its children by itself.
    import pulumi_aws as aws

    def program() -> None:
        nodes = aws.eks.NodeGroup(
            "system-nodes",
            cluster_name="ml-dev",
            node_role_arn="arn",
            subnet_ids=["s"],
            scaling_config={"min_size": 1, "max_size": 1, "desired_size": 1},
        )
        ClusterAddons("ml", ARGS, opts=pulumi.ResourceOptions(depends_on=[nodes]))

    run = plan(program)
    (nodes,) = run.by_type("aws:eks/nodeGroup:NodeGroup")
    for addon in run.by_type("aws:eks/addon:Addon"):
        assert nodes.urn in addon.dependencies, addon.name


def test_the_default_storage_class_is_encrypted_gp3_bound_where_the_pod_runs() -> None:
    run, addons = _addons()
    (storage,) = run.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
    inputs = storage.inputs
    assert inputs["metadata"]["name"] == "gp3-encrypted"
    assert inputs["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    assert inputs["provisioner"] == "ebs.csi.aws.com"
    assert inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert addons["aws-ebs-csi-driver"].urn in storage.dependencies
    assert_valid({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", **inputs})
