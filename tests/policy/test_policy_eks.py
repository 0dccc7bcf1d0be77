"""EKS control plane, KMS key, launch template and node group rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policy.rules import check_resource

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
CLUSTER = "aws:eks/cluster:Cluster"
KMS = "aws:kms/key:Key"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
NG = "aws:eks/nodeGroup:NodeGroup"

GOOD_CLUSTER: dict[str, Any] = {
    "roleArn": "arn:aws:iam::123456789012:role/eks",
    "encryptionConfig": {
        "resources": ["secrets"],
        "provider": {"keyArn": "arn:aws:kms:us-west-2:123456789012:key/abc"},
    },
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "vpcConfig": {
        "subnetIds": ["subnet-1", "subnet-2"],
        "endpointPublicAccess": False,
        "endpointPrivateAccess": True,
    },
    "accessConfig": {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    },
    "upgradePolicy": {"supportType": "STANDARD"},
    "deletionProtection": True,
}


def fired(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    """Rule name -> level of every finding."""
    return {f.policy: f.level for f in check_resource(resource_type, props)}


def cluster(**changes: Any) -> dict[str, Any]:
    props = copy.deepcopy(GOOD_CLUSTER)
    for path, value in changes.items():
        target = props
        *parents, leaf = path.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        if value is KeyError:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return props


def test_compliant_cluster_has_no_finding() -> None:
    assert fired(CLUSTER, GOOD_CLUSTER) == {}


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"encryptionConfig": KeyError}, "eks-secrets-kms"),
        ({"encryptionConfig__resources": ["configmaps"]}, "eks-secrets-kms"),
        ({"encryptionConfig__provider": {"keyArn": ""}}, "eks-secrets-kms"),
        ({"enabledClusterLogTypes": ["api", "audit"]}, "eks-control-plane-logging"),
        ({"enabledClusterLogTypes": KeyError}, "eks-control-plane-logging"),
        ({"vpcConfig__endpointPublicAccess": KeyError}, "eks-public-endpoint"),
        ({"vpcConfig__endpointPublicAccess": True}, "eks-public-endpoint"),
        (
            {"vpcConfig__endpointPublicAccess": "true", "vpcConfig__publicAccessCidrs": ["::/0"]},
            "eks-public-endpoint",
        ),
        ({"accessConfig__authenticationMode": "CONFIG_MAP"}, "eks-auth-mode-api"),
        ({"accessConfig__authenticationMode": KeyError}, "eks-auth-mode-api"),
        ({"accessConfig__bootstrapClusterCreatorAdminPermissions": True}, "eks-no-creator-admin"),
        (
            {"accessConfig__bootstrapClusterCreatorAdminPermissions": KeyError},
            "eks-no-creator-admin",
        ),
        ({"upgradePolicy": KeyError}, "eks-support-type-explicit"),
        ({"upgradePolicy__supportType": "LONG"}, "eks-support-type-explicit"),
    ],
)
def test_cluster_violation_is_mandatory(changes: dict[str, Any], rule: str) -> None:
    assert fired(CLUSTER, cluster(**changes)) == {rule: "mandatory"}


def test_public_endpoint_open_to_world_names_cidr_and_property() -> None:
    props = cluster(
        vpcConfig__endpointPublicAccess=True,
        vpcConfig__publicAccessCidrs=["203.0.113.0/24", "0.0.0.0/0"],
    )
    [finding] = check_resource(CLUSTER, props)
    assert finding.policy == "eks-public-endpoint"
    assert "0.0.0.0/0" in finding.message and "publicAccessCidrs" in finding.message


def test_public_endpoint_with_restricted_cidrs_is_advisory_only() -> None:
    props = cluster(
        vpcConfig__endpointPublicAccess=True, vpcConfig__publicAccessCidrs=["203.0.113.0/24"]
    )
    assert fired(CLUSTER, props) == {"eks-public-endpoint-restricted": "advisory"}


def test_cluster_unknowns_cannot_be_judged() -> None:
    props = cluster(
        encryptionConfig__provider={"keyArn": UNKNOWN},
        enabledClusterLogTypes=UNKNOWN,
        vpcConfig__endpointPublicAccess=True,
        vpcConfig__publicAccessCidrs=[UNKNOWN],
        accessConfig__authenticationMode=UNKNOWN,
        accessConfig__bootstrapClusterCreatorAdminPermissions=UNKNOWN,
        upgradePolicy__supportType=UNKNOWN,
        deletionProtection=UNKNOWN,
    )
    assert fired(CLUSTER, props) == {}


def test_extended_support_is_allowed_when_asked_for_by_name() -> None:
    assert fired(CLUSTER, cluster(upgradePolicy__supportType="EXTENDED")) == {}


@pytest.mark.parametrize("value", [False, "false", KeyError])
def test_a_cluster_without_deletion_protection_is_advisory(value: Any) -> None:
    assert fired(CLUSTER, cluster(deletionProtection=value)) == {
        "eks-deletion-protection": "advisory"
    }


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"enableKeyRotation": True, "deletionWindowInDays": 7.0}, {}),
        ({"enableKeyRotation": "true"}, {}),
        ({"enableKeyRotation": False}, {"kms-key-rotation": "mandatory"}),
        ({}, {"kms-key-rotation": "mandatory"}),
        (
            {"enableKeyRotation": True, "deletionWindowInDays": 6.0},
            {"kms-deletion-window": "mandatory"},
        ),
        (
            {"enableKeyRotation": True, "deletionWindowInDays": "3"},
            {"kms-deletion-window": "mandatory"},
        ),
        ({"enableKeyRotation": True, "deletionWindowInDays": "30"}, {}),
        ({"customerMasterKeySpec": "RSA_2048", "deletionWindowInDays": 10}, {}),
        ({"enableKeyRotation": UNKNOWN, "deletionWindowInDays": UNKNOWN}, {}),
    ],
)
def test_kms_key(props: dict[str, Any], expected: dict[str, str]) -> None:
    assert fired(KMS, props) == expected


GOOD_LT: dict[str, Any] = {
    "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1.0},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}],
    "networkInterfaces": [{"associatePublicIpAddress": "false"}],
}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("metadataOptions", {"httpTokens": "optional"}, "ec2-imdsv2-required"),
        ("metadataOptions", KeyError, "ec2-imdsv2-required"),
        (
            "blockDeviceMappings",
            [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}],
            "ec2-encrypted-volumes",
        ),
        (
            "blockDeviceMappings",
            [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 100}}],
            "ec2-encrypted-volumes",
        ),
        ("blockDeviceMappings", KeyError, "ec2-encrypted-volumes"),
        ("networkInterfaces", [{"associatePublicIpAddress": True}], "ec2-no-public-ip"),
        ("networkInterfaces", [{"associatePublicIpAddress": "true"}], "ec2-no-public-ip"),
    ],
)
def test_launch_template_violations(field: str, value: Any, rule: str) -> None:
    props = copy.deepcopy(GOOD_LT)
    if value is KeyError:
        del props[field]
    else:
        props[field] = value
    assert fired(LT, GOOD_LT) == {}
    assert fired(LT, props) == {rule: "mandatory"}


def test_launch_template_accepts_disabled_metadata_and_bool_encryption() -> None:
    props = copy.deepcopy(GOOD_LT)
    props["metadataOptions"] = {"httpEndpoint": "disabled"}
    props["blockDeviceMappings"][0]["ebs"]["encrypted"] = True
    assert fired(LT, props) == {}


def test_launch_template_unknowns_cannot_be_judged() -> None:
    props = {
        "metadataOptions": {"httpTokens": UNKNOWN},
        "blockDeviceMappings": UNKNOWN,
        "networkInterfaces": [{"associatePublicIpAddress": UNKNOWN}],
    }
    assert fired(LT, props) == {}


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"instanceTypes": ["m6i.large"], "capacityType": "ON_DEMAND"}, {}),
        ({"remoteAccess": {"ec2SshKey": "ops"}}, {"eks-nodegroup-no-ssh": "mandatory"}),
        ({"amiType": "AL2023_x86_64_NVIDIA", "taints": [GPU_TAINT]}, {}),
        ({"amiType": "AL2023_x86_64_NVIDIA"}, {"eks-gpu-nodegroup-taint": "mandatory"}),
        (
            {"amiType": "AL2_x86_64_GPU", "taints": [{**GPU_TAINT, "effect": "NO_EXECUTE"}]},
            {"eks-gpu-nodegroup-taint": "mandatory"},
        ),
        ({"instanceTypes": ["g5.2xlarge"]}, {"eks-gpu-nodegroup-taint": "mandatory"}),
        ({"instanceTypes": ["p4d.24xlarge"], "taints": [GPU_TAINT]}, {}),
        ({"instanceTypes": ["inf2.xlarge", "g4ad.xlarge"]}, {}),
        (
            {"capacityType": "SPOT", "instanceTypes": ["m6i.large"]},
            {"eks-spot-min-instance-types": "mandatory"},
        ),
        ({"capacityType": "SPOT"}, {"eks-spot-min-instance-types": "mandatory"}),
        (
            {"capacityType": "SPOT", "instanceTypes": ["m6i.large", "m5.large"]},
            {"eks-spot-instance-diversity": "advisory"},
        ),
        ({"capacityType": "SPOT", "instanceTypes": ["m6i.large", "m5.large", "m6a.large"]}, {}),
    ],
)
def test_node_group(props: dict[str, Any], expected: dict[str, str]) -> None:
    base = {"clusterName": "c", "nodeRoleArn": "arn", "subnetIds": ["s"]}
    assert fired(NG, {**base, **props}) == expected


def test_node_group_unknowns_cannot_be_judged() -> None:
    props = {
        "amiType": UNKNOWN,
        "instanceTypes": UNKNOWN,
        "capacityType": "SPOT",
        "remoteAccess": UNKNOWN,
    }
    assert fired(NG, props) == {}
    assert fired(NG, {"amiType": "AL2023_x86_64_NVIDIA", "taints": UNKNOWN}) == {}


@pytest.mark.parametrize(
    "instance_type",
    [
        "g4dn.xlarge",
        "g5.xlarge",
        "g5g.xlarge",
        "g6.xlarge",
        "g6e.xlarge",
        "g6f.large",
        "gr6.4xlarge",
        "p4d.24xlarge",
        "p5.48xlarge",
        "p5en.48xlarge",
        "p6-b200.48xlarge",
        "m7i.large",
        "g4ad.xlarge",
        "inf2.xlarge",
        "m7g.large",
    ],
)
def test_the_packs_nvidia_families_equal_the_components(instance_type: str) -> None:
    # The pack keeps its own copy (it is published alone): a type is NVIDIA to both or
    # to neither.
    from components._aws import is_nvidia

    untainted = {
        "amiType": "AL2023_x86_64_STANDARD",
        "instanceTypes": [instance_type],
        "taints": [],
    }
    flagged = "eks-gpu-nodegroup-taint" in fired(NG, untainted)
    assert flagged is is_nvidia(instance_type), instance_type
