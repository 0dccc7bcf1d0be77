"""Karpenter on the mock engine: interruption queue and rules, IAM, release, node pools.

NodePool and EC2NodeClass specs are checked against the field layout of their CRDs at
the pinned version, the release's values against the keys the chart documents."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.services.autoscaling import (
    CHART,
    CRD_CHART,
    Karpenter,
    KarpenterArgs,
    karpenter_pool,
)
from infra.offline import CapturedResource, ProgramRun
from tests.components.layout import problems
from tests.components.services import karpenter_layout as layout
from tests.components.support import one, plan

ISSUER = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC123"
POOLS = [
    karpenter_pool(
        "gpu",
        pool="gpu",
        ami_alias="al2023@v20260209",
        capacity="SPOT_OR_ON_DEMAND",
        instance_types=["g5.xlarge", "g6.xlarge", "g6e.xlarge"],
        gpu_limit=4,
    ),
    karpenter_pool("spot", pool="spot", ami_alias="al2023@v20260209"),
]
ARGS = KarpenterArgs(
    cluster_name="ml-dev",
    cluster_endpoint="https://ABC.gr7.us-west-2.eks.amazonaws.com",
    cluster_security_group_id="sg-0123456789abcdef0",
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC123",
    oidc_issuer=ISSUER,
    pools=POOLS,
    replicas=2,
)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: Karpenter("kp", ARGS))


def _named(run: ProgramRun, type_token: str, name: str) -> CapturedResource:
    (found,) = [r for r in run.by_type(type_token) if r.name == name]
    return found


def _custom(run: ProgramRun, kind: str) -> dict[str, CapturedResource]:
    return {r.inputs["metadata"]["name"]: r for r in run.resources if r.type.endswith(f":{kind}")}


def test_the_interruption_queue_is_encrypted_and_only_eventbridge_and_sqs_send(run) -> None:
    queue = one(run, "aws:sqs/queue:Queue")
    assert queue.inputs["name"] == "ml-dev"
    assert queue.inputs["messageRetentionSeconds"] == 300
    assert queue.inputs["sqsManagedSseEnabled"] is True
    policy = json.loads(one(run, "aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    allow, deny = policy["Statement"]
    assert allow["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == queue.outputs["arn"]
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def test_every_interruption_event_is_routed_to_the_queue(run) -> None:
    queue = one(run, "aws:sqs/queue:Queue")
    patterns = {
        r.name: json.loads(r.inputs["eventPattern"])
        for r in run.by_type("aws:cloudwatch/eventRule:EventRule")
    }
    assert sorted((p["source"][0], p["detail-type"][0]) for p in patterns.values()) == [
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.health", "AWS Health Event"),
    ]
    targets = run.by_type("aws:cloudwatch/eventTarget:EventTarget")
    assert {t.inputs["rule"] for t in targets} == {
        r.outputs["name"] for r in run.by_type("aws:cloudwatch/eventRule:EventRule")
    }
    assert all(t.inputs["arn"] == queue.outputs["arn"] for t in targets)


def test_the_controller_role_is_pinned_to_its_service_account_and_scoped_to_the_cluster(
    run,
) -> None:
    role = _named(run, "aws:iam/role:Role", "kp-controller-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    host = ISSUER.removeprefix("https://")
    assert (
        trust["Condition"]["StringEquals"][f"{host}:sub"]
        == "system:serviceaccount:kube-system:karpenter"
    )
    inline = one(run, "aws:iam/rolePolicy:RolePolicy")
    statements = {s["Sid"]: s for s in json.loads(inline.inputs["policy"])["Statement"]}
    owned = "aws:ResourceTag/kubernetes.io/cluster/ml-dev"
    for sid in ("AllowScopedEC2LaunchTemplateAccessActions", "AllowScopedDeletion"):
        assert statements[sid]["Condition"]["StringEquals"] == {owned: "owned"}, sid
        assert statements[sid]["Condition"]["StringLike"] == {
            "aws:ResourceTag/karpenter.sh/nodepool": "*"
        }
    launch = statements["AllowScopedEC2InstanceActionsWithTags"]["Condition"]["StringEquals"]
    assert launch["aws:RequestTag/kubernetes.io/cluster/ml-dev"] == "owned"
    node_role = _named(run, "aws:iam/role:Role", "kp-node")
    assert statements["AllowPassingInstanceRole"]["Resource"] == node_role.outputs["arn"]
    queue = one(run, "aws:sqs/queue:Queue")
    assert statements["AllowInterruptionQueueActions"]["Resource"] == queue.outputs["arn"]
    regional = statements["AllowRegionalReadActions"]["Condition"]
    assert regional == {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}
    assert all(s["Action"] != "*" for s in statements.values())


def test_nodes_get_a_minimal_role_and_an_ec2_linux_access_entry(run) -> None:
    node_role = _named(run, "aws:iam/role:Role", "kp-node")
    attached = sorted(
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("kp-node-")
    )
    assert attached == [
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonSSMManagedInstanceCore",
    ]
    entry = one(run, "aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.inputs["principalArn"] == node_role.outputs["arn"]
    tag = one(run, "aws:ec2/tag:Tag")
    assert tag.inputs == {
        "resourceId": "sg-0123456789abcdef0",
        "key": "karpenter.sh/discovery",
        "value": "ml-dev",
    }


def test_the_release_is_pinned_and_wired_to_the_queue(run) -> None:
    releases = {r.inputs["name"]: r for r in run.by_type("kubernetes:helm.sh/v3:Release")}
    controller, crds = releases["karpenter"], releases["karpenter-crd"]
    assert (controller.inputs["chart"], controller.inputs["version"]) == (
        "oci://public.ecr.aws/karpenter/karpenter",
        "1.14.1",
    )
    assert (CHART.repository, CHART.chart, CHART.version) == layout.CHART
    assert crds.inputs["chart"] == f"{CRD_CHART.repository}/{CRD_CHART.chart}"
    assert controller.inputs["skipCrds"] is True and crds.urn in controller.dependencies
    values = controller.inputs["values"]
    assert layout.values_problems(values) == []
    queue = one(run, "aws:sqs/queue:Queue")
    assert values["settings"]["interruptionQueue"] == queue.outputs["name"]
    assert values["settings"]["clusterName"] == "ml-dev"
    assert values["nodeSelector"] == {"mlplatform.io/pool": "system"}
    assert values["replicas"] == 2
    assert values["podDisruptionBudget"] == {"name": "karpenter", "maxUnavailable": 1}
    role = _named(run, "aws:iam/role:Role", "kp-controller-role")
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        role.outputs["arn"].rsplit("-", 1)[0]
    )
    for rule in run.by_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert rule.urn in controller.dependencies


def test_node_pools_and_classes_match_their_crds(run) -> None:
    pools, classes = _custom(run, "NodePool"), _custom(run, "EC2NodeClass")
    assert set(pools) == set(classes) == {"gpu", "spot"}
    for name in pools:
        assert pools[name].type == "kubernetes:karpenter.sh/v1:NodePool"
        assert problems(pools[name].inputs["spec"], layout.NODEPOOL_SPEC) == [], name
        assert classes[name].type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
        assert problems(classes[name].inputs["spec"], layout.EC2NODECLASS_SPEC) == [], name


def test_the_gpu_pool_is_tainted_labelled_and_consolidated_only_when_empty(run) -> None:
    gpu = _custom(run, "NodePool")["gpu"].inputs["spec"]
    template = gpu["template"]
    assert template["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    labels = template["metadata"]["labels"]
    assert labels["mlplatform.io/pool"] == "gpu" and labels["nvidia.com/gpu.present"] == "true"
    assert "mlplatform.io/capacity" not in labels  # spot or on-demand: Karpenter's label says
    requirements = {r["key"]: r for r in template["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"]["values"] == ["spot", "on-demand"]
    assert requirements["node.kubernetes.io/instance-type"]["values"] == [
        "g5.xlarge",
        "g6.xlarge",
        "g6e.xlarge",
    ]
    assert gpu["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"}
    assert gpu["limits"] == {"cpu": "64", "memory": "256Gi", "nvidia.com/gpu": "4"}
    spot = _custom(run, "NodePool")["spot"].inputs["spec"]
    assert spot["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert spot["template"]["metadata"]["labels"]["mlplatform.io/capacity"] == "spot"
    assert spot["template"]["spec"]["taints"] == []


def test_node_classes_require_imdsv2_and_encrypted_volumes(run) -> None:
    for name, node_class in _custom(run, "EC2NodeClass").items():
        spec = node_class.inputs["spec"]
        assert spec["metadataOptions"]["httpTokens"] == "required", name
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1, name
        (disk,) = spec["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] is True and disk["ebs"]["volumeType"] == "gp3"
        assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260209"}]
        discovery = [{"tags": {"karpenter.sh/discovery": "ml-dev"}}]
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == discovery
    disks = {
        n: c.inputs["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"]
        for n, c in _custom(run, "EC2NodeClass").items()
    }
    assert disks == {"gpu": "100Gi", "spot": "50Gi"}


def test_custom_resources_come_after_the_controller_and_go_before_it(run) -> None:
    # Created after the release (CRDs and webhooks exist), so deleted before it: the
    # controller still runs to drain and terminate the nodes it launched.
    release = _named(run, "kubernetes:helm.sh/v3:Release", "kp")
    entry = one(run, "aws:eks/accessEntry:AccessEntry")
    classes = _custom(run, "EC2NodeClass")
    for name, pool in _custom(run, "NodePool").items():
        assert release.urn in pool.dependencies
        assert classes[name].urn in pool.dependencies
        assert {release.urn, entry.urn} <= classes[name].dependencies


def test_the_release_waits_for_what_the_component_depends_on() -> None:
    def program() -> None:
        coredns = aws.eks.Addon("coredns", cluster_name="ml-dev", addon_name="coredns")
        Karpenter("kp", ARGS, opts=pulumi.ResourceOptions(depends_on=[coredns]))

    run = plan(program)
    coredns = one(run, "aws:eks/addon:Addon")
    release = _named(run, "kubernetes:helm.sh/v3:Release", "kp")
    assert coredns.urn in release.dependencies
    # The node access entry names the cluster by a plain string: it must wait too.
    assert coredns.urn in one(run, "aws:eks/accessEntry:AccessEntry").dependencies


def test_bottlerocket_pools_use_the_bottlerocket_alias_and_data_volume() -> None:
    pool = karpenter_pool(
        "gpu", pool="gpu", ami_alias="al2023@v1.50.0", ami_type="BOTTLEROCKET_x86_64_NVIDIA"
    )
    assert pool.ami_alias == "bottlerocket@v1.50.0"
    assert pool.labels["mlplatform.io/os"] == "bottlerocket"
    run = plan(lambda: Karpenter("kp", replace(ARGS, pools=[pool])))
    spec = _custom(run, "EC2NodeClass")["gpu"].inputs["spec"]
    assert spec["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"
    assert problems(spec, layout.EC2NODECLASS_SPEC) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ami_alias": "al2023@latest"}, "pools.spot.ami_alias"),
        ({"instance_types": ("m7i.large", "m6i.large")}, "pools.spot.instance_types"),
        ({"capacity_types": ("reserved",)}, "pools.spot.capacity_types"),
        ({"expire_after": "30 days"}, "pools.spot.expire_after"),
        ({"cpu_limit": 0}, "pools.spot.cpu_limit"),
    ],
)
def test_invalid_pools_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    bad = replace(POOLS[1], **change)
    with pytest.raises(ValueError, match=rf"{field}: "):
        Karpenter("kp", replace(ARGS, pools=[bad]))
    with pytest.raises(ValueError, match="replicas: 0 must be from 1 to 5"):
        Karpenter("kp", replace(ARGS, replicas=0))
