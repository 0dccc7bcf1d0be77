"""Node groups on the mock engine: the hardened launch template, role, disks and presets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from components._k8s import NodeTaint
from components.foundation.node_groups import NodeGroup, NodeGroupArgs
from components.foundation.node_presets import preset_args
from infra.offline import ProgramRun, hex_digest, run_program
from tests.components.support import alias_types

SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]


def _plan(pools: dict[str, NodeGroupArgs]) -> ProgramRun:
    def program() -> None:
        for name, args in pools.items():
            NodeGroup(name, args)

    return run_program(program, project="mlplatform", stack="t", config={"aws:region": "us-west-2"})


def _pool(preset: str, cluster: str, subnets: list[str], **fields: object) -> NodeGroupArgs:
    return preset_args(preset, pool=preset, cluster_name=cluster, subnet_ids=subnets, **fields)  # type: ignore[arg-type]


DEV_POOLS = {
    "system": _pool("system", "ml-dev", SUBNETS[:2], min_size=1, max_size=2),
    "gpu": _pool("gpu", "ml-dev", SUBNETS[:2], instance_types=["g5.xlarge"]),
    "spot": _pool("spot", "ml-dev", SUBNETS[:2]),
}
PROD_POOLS = {
    "system": _pool("system", "ml-prod", SUBNETS, min_size=3, max_size=6),
    "gpu": _pool(
        "gpu",
        "ml-prod",
        SUBNETS,
        instance_types=["g5.2xlarge", "g6.2xlarge"],
        min_size=1,
        max_size=4,
    ),
    "spot": _pool(
        "spot",
        "ml-prod",
        SUBNETS,
        instance_types=["c7i.2xlarge", "c6i.2xlarge", "c7a.2xlarge"],
        max_size=10,
    ),
}


@pytest.fixture(scope="module", params=[DEV_POOLS, PROD_POOLS], ids=["dev", "prod"])
def case(request: pytest.FixtureRequest) -> tuple[dict[str, NodeGroupArgs], ProgramRun]:
    return request.param, _plan(request.param)


def _group(run: ProgramRun, pool: str) -> dict:
    (res,) = [r for r in run.by_type("aws:eks/nodeGroup:NodeGroup") if r.name == f"{pool}-nodes"]
    return res.inputs


def test_every_launch_template_is_hardened(case) -> None:
    _, run = case
    templates = run.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 3
    for lt in templates:
        meta = lt.inputs["metadataOptions"]
        assert meta["httpTokens"] == "required"
        assert meta["httpEndpoint"] == "enabled"
        assert meta["httpPutResponseHopLimit"] == 1
        (disk,) = lt.inputs["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true"
        assert disk["ebs"]["volumeType"] == "gp3"
        assert "keyName" not in lt.inputs
        assert "networkInterfaces" not in lt.inputs  # no public IP request; subnets decide
    for pool in ("system", "gpu", "spot"):
        group = _group(run, pool)
        (lt,) = [t for t in templates if t.name == f"{pool}-lt"]
        assert group["launchTemplate"]["version"] == "1"
        assert "remoteAccess" not in group and "diskSize" not in group
        # The group launches from its own pool's template.
        assert group["launchTemplate"]["id"] == "lt-" + hex_digest(f"{lt.type}::{lt.name}", 17)


def test_update_config_scaling_and_subnets(case) -> None:
    pools, run = case
    for pool, args in pools.items():
        group = _group(run, pool)
        assert group["updateConfig"] == {"maxUnavailablePercentage": 33}
        assert group["scalingConfig"] == {
            "minSize": args.min_size,
            "maxSize": args.max_size,
            "desiredSize": args.min_size,
        }
        assert group["subnetIds"] == list(args.subnet_ids)  # type: ignore[arg-type]
        assert group["clusterName"] == args.cluster_name


def test_node_role_has_only_the_two_node_policies(case) -> None:
    # The VPC CNI's permissions sit on its own IRSA role, never on the nodes.
    _, run = case
    components = {c.name: c.urn for c in run.by_type("mlplatform:index:NodeGroup")}
    for pool, urn in components.items():
        attachments = [
            a.inputs["policyArn"].rsplit("/", 1)[1]
            for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.parent == urn
        ]
        assert sorted(attachments) == [
            "AmazonEC2ContainerRegistryPullOnly",
            "AmazonEKSWorkerNodePolicy",
        ], pool
        (role,) = [r for r in run.by_type("aws:iam/role:Role") if r.parent == urn]
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
        assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
        assert _group(run, pool)["nodeRoleArn"].startswith(
            f"arn:aws:iam::123456789012:role/{role.name}-"
        )


def test_gpu_pool_uses_the_nvidia_ami_and_is_tainted(case) -> None:
    pools, run = case
    gpu = _group(run, "gpu")
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["instanceTypes"] == list(pools["gpu"].instance_types)
    assert gpu["capacityType"] == "ON_DEMAND"
    system = _group(run, "system")
    assert system["taints"] == [] and system["capacityType"] == "ON_DEMAND"
    assert system["labels"]["mlplatform.io/pool"] == "system"


def test_spot_pool_is_diversified_and_labelled(case) -> None:
    _, run = case
    spot = _group(run, "spot")
    assert spot["capacityType"] == "SPOT"
    assert len(spot["instanceTypes"]) >= 3
    assert spot["labels"]["mlplatform.io/capacity"] == "spot"


def test_children_are_parented_and_named_from_the_instance(case) -> None:
    _, run = case
    components = {c.urn: c.name for c in run.by_type("mlplatform:index:NodeGroup")}
    assert set(components.values()) == {"system", "gpu", "spot"}
    for res in run.resources:
        if res.custom:
            assert res.parent in components
            assert res.name.startswith(components[res.parent] + "-")
    assert run.created_in_callbacks == []


def _ignored_changes(args: NodeGroupArgs) -> list[list[str]]:
    # ignore_changes is an engine option, not an input: check it on the constructed resource.
    import pulumi

    seen: list[list[str]] = []

    def program() -> None:
        def spy(transform: pulumi.ResourceTransformationArgs) -> None:
            if transform.type_ == "aws:eks/nodeGroup:NodeGroup":
                seen.append(list(transform.opts.ignore_changes or []))

        pulumi.runtime.register_stack_transformation(spy)
        NodeGroup("system", args)

    run_program(program, project="mlplatform", stack="t", config={})
    return seen


def test_desired_size_stays_under_pulumi_unless_an_autoscaler_owns_it() -> None:
    # Raising minSize on a pool no autoscaler manages must raise desiredSize with it, or
    # EKS fails the update ("Minimum capacity can't be greater than desired size").
    assert _ignored_changes(DEV_POOLS["system"]) == [[]]
    raised = _plan({"system": replace(DEV_POOLS["system"], min_size=2, max_size=3)})
    assert _group(raised, "system")["scalingConfig"]["desiredSize"] == 2
    autoscaled = replace(DEV_POOLS["system"], autoscaled=True)
    assert _ignored_changes(autoscaled) == [["scalingConfig.desiredSize"]]


def test_bottlerocket_sizes_the_data_volume_and_leaves_the_os_volume_alone() -> None:
    args = replace(DEV_POOLS["system"], ami_type="BOTTLEROCKET_x86_64", disk_size_gib=80)
    run = _plan({"system": args})
    (lt,) = run.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    (disk,) = lt.inputs["blockDeviceMappings"]
    assert disk["deviceName"] == "/dev/xvdb"
    assert disk["ebs"] == {
        "volumeSize": 80,
        "volumeType": "gp3",
        "encrypted": "true",
        "deleteOnTermination": "true",
    }


def test_no_detailed_monitoring_unless_asked(case) -> None:
    _, run = case
    for lt in run.by_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert lt.inputs["monitoring"] == {"enabled": False}
    run = _plan({"system": replace(DEV_POOLS["system"], detailed_monitoring=True)})
    (lt,) = run.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["monitoring"] == {"enabled": True}


@pytest.mark.parametrize(
    ("ami_type", "instance_type", "accepted"),
    [
        ("AL2023_x86_64_STANDARD", "m7g.xlarge", False),
        ("AL2023_x86_64_STANDARD", "c7gn.xlarge", False),
        ("AL2023_x86_64_STANDARD", "r6gd.large", False),
        ("AL2023_x86_64_STANDARD", "t4g.large", False),
        ("AL2023_ARM_64_STANDARD", "m7g.xlarge", True),
        ("BOTTLEROCKET_ARM_64", "im4gn.large", True),
        ("AL2023_ARM_64_STANDARD", "m7i.xlarge", False),
        ("AL2023_x86_64_STANDARD", "m7i.xlarge", True),
        ("AL2023_x86_64_NVIDIA", "p6-b200.48xlarge", True),
        ("AL2023_x86_64_NVIDIA", "g4dn.xlarge", True),
        ("AL2023_x86_64_NVIDIA", "g5g.xlarge", False),
        ("AL2023_ARM_64_NVIDIA", "g5g.xlarge", True),
        ("AL2023_x86_64_NVIDIA", "m7i.large", False),
        ("AL2023_x86_64_STANDARD", "g5.xlarge", False),
    ],
)
def test_instance_architecture_must_match_the_ami_type(
    ami_type: str, instance_type: str, accepted: bool
) -> None:
    args = replace(DEV_POOLS["system"], ami_type=ami_type, instance_types=(instance_type,))
    if accepted:
        NodeGroup("pool", args)
        return
    with pytest.raises(ValueError, match=f"instance_types: '{instance_type}'"):
        NodeGroup("pool", args)


def test_presets_take_the_capacity_type_and_label_it() -> None:
    on_demand_spot = _pool("spot", "c", SUBNETS, capacity_type="ON_DEMAND")
    assert on_demand_spot.capacity_type == "ON_DEMAND"
    assert on_demand_spot.labels["mlplatform.io/capacity"] == "on-demand"
    spot_gpu = _pool(
        "gpu",
        "c",
        SUBNETS,
        capacity_type="SPOT",
        instance_types=["g5.xlarge", "g6.xlarge", "g6e.xlarge"],
    )
    assert spot_gpu.labels == {
        "mlplatform.io/pool": "gpu",
        "mlplatform.io/os": "al2023",
        "mlplatform.io/capacity": "spot",
        "nvidia.com/gpu.present": "true",
    }
    bottlerocket = _pool("gpu", "c", SUBNETS, ami_type="BOTTLEROCKET_x86_64_NVIDIA")
    assert bottlerocket.labels["mlplatform.io/os"] == "bottlerocket"
    system = _pool("system", "c", SUBNETS, critical_addons_only=True)
    assert [(t.key, t.value, t.effect) for t in system.taints] == [
        ("CriticalAddonsOnly", "true", "NoSchedule")
    ]
    with pytest.raises(KeyError, match="allowed: system, gpu, spot"):
        _pool("tpu", "c", SUBNETS)


def test_the_former_type_token_is_an_alias() -> None:
    run = _plan({"system": DEV_POOLS["system"]})
    (component,) = run.by_type("mlplatform:index:NodeGroup")
    assert alias_types(component) == {"mlplatform:compute:NodeGroup"}


def test_explicit_disk_key_and_desired_size() -> None:
    args = replace(
        DEV_POOLS["system"], disk_kms_key_arn="arn:aws:kms:us-west-2:1:key/k", desired_size=2
    )
    run = _plan({"system": args})
    (lt,) = run.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["blockDeviceMappings"][0]["ebs"]["kmsKeyId"] == "arn:aws:kms:us-west-2:1:key/k"
    assert _group(run, "system")["scalingConfig"]["desiredSize"] == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"instance_types": ()}, "instance_types"),
        ({"instance_types": ("large",)}, "instance_types"),
        ({"capacity_type": "SPOT", "instance_types": ("m7i.large", "m6i.large")}, "instance_types"),
        ({"capacity_type": "RESERVED"}, "capacity_type"),
        ({"min_size": -1}, "min_size"),
        ({"max_size": 0, "min_size": 0}, "max_size"),
        ({"desired_size": 99}, "desired_size"),
        ({"ami_type": "AL2_x86_64"}, "ami_type"),
        ({"labels": {"bad key!": "x"}}, "labels"),
        ({"taints": (NodeTaint("k", "v", "NO_SCHEDULE"),)}, "taints"),  # type: ignore[arg-type]
        ({"disk_size_gib": 5}, "disk_size_gib"),
        ({"max_unavailable_percentage": 0}, "max_unavailable_percentage"),
    ],
)
def test_invalid_args_are_rejected_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NodeGroup("pool", replace(DEV_POOLS["system"], **changes))


def test_spot_preset_refuses_fewer_than_three_types() -> None:
    args = _pool("spot", "c", SUBNETS, instance_types=["m7i.large"])
    with pytest.raises(ValueError, match="SPOT needs at least 3 instance types"):
        NodeGroup("spot", args)
