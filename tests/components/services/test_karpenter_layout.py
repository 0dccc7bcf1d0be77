"""Tests of the offline Karpenter layout checker itself (karpenter_layout)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.components.layout import Arr, Int, Map, Obj, Quantity, Str, problems
from tests.components.services.karpenter_layout import (
    CHART,
    CRD_API_VERSIONS,
    EC2NODECLASS_SPEC,
    KARPENTER_VERSION,
    NODEPOOL_SPEC,
    values_problems,
)

CLUSTER = "mlplatform-t"


def nodepool_spec() -> dict[str, Any]:
    """A GPU NodePool the way the platform would write it."""
    return {
        "template": {
            "metadata": {
                "labels": {"mlplatform.io/pool": "gpu"},
                "annotations": {"mlplatform.io/owner": "platform"},
            },
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": "gpu",
                },
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                    {
                        "key": "karpenter.k8s.aws/instance-family",
                        "operator": "In",
                        "values": ["g5", "g6", "g6e"],
                        "minValues": 2,
                    },
                    {
                        "key": "karpenter.k8s.aws/instance-gpu-count",
                        "operator": "Gt",
                        "values": ["0"],
                    },
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                ],
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                "startupTaints": [{"key": "mlplatform.io/warming", "effect": "NoExecute"}],
                "expireAfter": "720h",
                "terminationGracePeriod": "48h",
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "5m",
            "budgets": [
                {"nodes": "10%"},
                {
                    "nodes": "0",
                    "schedule": "0 9 * * mon-fri",
                    "duration": "8h",
                    "reasons": ["Drifted"],
                },
            ],
        },
        "limits": {"cpu": 1000, "memory": "4000Gi", "nvidia.com/gpu": "64"},
        "weight": 10,
    }


def ec2nodeclass_spec() -> dict[str, Any]:
    """The EC2NodeClass the GPU pool above refers to."""
    discovery = {"karpenter.sh/discovery": CLUSTER}
    return {
        "amiSelectorTerms": [{"alias": "al2023@v20240807"}],
        "role": f"KarpenterNodeRole-{CLUSTER}",
        "subnetSelectorTerms": [{"tags": discovery}, {"id": "subnet-0abc123"}],
        "securityGroupSelectorTerms": [{"tags": discovery}],
        "tags": {"team": "ml", "cost-center": "inference"},
        "kubelet": {"maxPods": 110, "systemReserved": {"cpu": "100m", "memory": "200Mi"}},
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": "200Gi",
                    "volumeType": "gp3",
                    "iops": 3000,
                    "throughput": 250,
                    "encrypted": True,
                    "kmsKeyID": "arn:aws:kms:us-west-2:111122223333:key/abc",
                    "deleteOnTermination": True,
                },
            }
        ],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "detailedMonitoring": True,
        "associatePublicIPAddress": False,
        "instanceStorePolicy": "RAID0",
        "userData": "#!/bin/bash\necho hello\n",
    }


def chart_values() -> dict[str, Any]:
    return {
        "settings": {
            "clusterName": CLUSTER,
            "interruptionQueue": CLUSTER,
            "featureGates": {"spotToSpotConsolidation": True},
        },
        "serviceAccount": {
            "name": "karpenter",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/k"},
        },
        "controller": {
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
            "image": {"tag": KARPENTER_VERSION},
        },
        "replicas": 2,
        "podDisruptionBudget": {"name": "karpenter", "maxUnavailable": 1},
        "serviceMonitor": {"enabled": True, "additionalLabels": {"release": "prom"}},
        "nodeSelector": {"mlplatform.io/pool": "system"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "podAnnotations": {"anything": "goes"},
    }


# --- the pins ---------------------------------------------------------------------------


def test_pins_name_the_same_version() -> None:
    assert CHART == ("oci://public.ecr.aws/karpenter", "karpenter", KARPENTER_VERSION)
    assert CRD_API_VERSIONS == {
        "NodePool": "karpenter.sh/v1",
        "EC2NodeClass": "karpenter.k8s.aws/v1",
    }


# --- realistic specs pass ----------------------------------------------------------------


def test_realistic_nodepool_spec_passes() -> None:
    assert problems(nodepool_spec(), NODEPOOL_SPEC) == []


def test_minimal_nodepool_spec_passes() -> None:
    spec = {"template": {"spec": nodepool_spec()["template"]["spec"]}}
    assert problems(spec, NODEPOOL_SPEC) == []


def test_realistic_ec2nodeclass_spec_passes() -> None:
    assert problems(ec2nodeclass_spec(), EC2NODECLASS_SPEC) == []


def test_bottlerocket_and_instance_profile_variant_passes() -> None:
    spec = ec2nodeclass_spec()
    del spec["role"]
    spec["instanceProfile"] = "KarpenterNodeInstanceProfile"
    spec["amiSelectorTerms"] = [{"alias": "bottlerocket@v1.20.4"}]
    spec["capacityReservationSelectorTerms"] = [{"id": "cr-0123abcd"}]
    assert problems(spec, EC2NODECLASS_SPEC) == []


def test_getting_started_shapes_pass() -> None:
    """The shapes of the v1.14 getting-started NodePool and EC2NodeClass (step12)."""
    nodepool = {
        "template": {
            "spec": {
                "requirements": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {
                        "key": "karpenter.k8s.aws/instance-generation",
                        "operator": "Gt",
                        "values": ["2"],
                    },
                ],
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": "default",
                },
                "expireAfter": "720h",
            }
        },
        "limits": {"cpu": 1000},
        "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "1m"},
    }
    nodeclass = {
        "role": f"KarpenterNodeRole-{CLUSTER}",
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": CLUSTER}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": CLUSTER}}],
    }
    assert problems(nodepool, NODEPOOL_SPEC) == []
    assert problems(nodeclass, EC2NODECLASS_SPEC) == []


def test_realistic_values_pass() -> None:
    assert values_problems(chart_values()) == []


# --- each kind of mistake is named by its path ---------------------------------------------


def test_misspelt_consolidation_policy_is_an_unknown_field() -> None:
    spec = nodepool_spec()
    spec["disruption"]["consolidatePolicy"] = spec["disruption"].pop("consolidationPolicy")
    assert problems(spec, NODEPOOL_SPEC) == ["disruption.consolidatePolicy: unknown field"]


def test_misspelt_http_tokens_is_an_unknown_field() -> None:
    spec = ec2nodeclass_spec()
    spec["metadataOptions"]["httpToken"] = spec["metadataOptions"].pop("httpTokens")
    assert problems(spec, EC2NODECLASS_SPEC) == ["metadataOptions.httpToken: unknown field"]


def test_when_idle_is_not_a_consolidation_policy() -> None:
    spec = nodepool_spec()
    spec["disruption"]["consolidationPolicy"] = "WhenIdle"
    (found,) = problems(spec, NODEPOOL_SPEC)
    assert found.startswith("disruption.consolidationPolicy: 'WhenIdle' is not one of")
    assert "WhenEmptyOrUnderutilized" in found


def test_missing_node_class_ref_name_is_reported() -> None:
    spec = nodepool_spec()
    del spec["template"]["spec"]["nodeClassRef"]["name"]
    assert problems(spec, NODEPOOL_SPEC) == [
        "template.spec.nodeClassRef.name: required field is missing"
    ]


def test_disruption_without_consolidate_after_is_reported() -> None:
    spec = nodepool_spec()
    del spec["disruption"]["consolidateAfter"]
    assert problems(spec, NODEPOOL_SPEC) == [
        "disruption.consolidateAfter: required field is missing"
    ]


def test_list_items_are_named_by_index() -> None:
    spec = nodepool_spec()
    spec["template"]["spec"]["requirements"][1]["operator"] = "Within"
    spec["template"]["spec"]["taints"][0]["efect"] = spec["template"]["spec"]["taints"][0].pop(
        "effect"
    )
    found = problems(spec, NODEPOOL_SPEC)
    assert len(found) == 3, found
    assert found[0].startswith("template.spec.requirements[1].operator: 'Within' is not one of")
    assert "template.spec.taints[0].efect: unknown field" in found
    assert "template.spec.taints[0].effect: required field is missing" in found


def test_wrong_types_are_reported() -> None:
    spec = ec2nodeclass_spec()
    spec["blockDeviceMappings"][0]["ebs"]["volumeSize"] = 200  # the CRD wants "200Gi"
    spec["detailedMonitoring"] = "true"
    spec["metadataOptions"]["httpPutResponseHopLimit"] = True
    assert problems(spec, EC2NODECLASS_SPEC) == [
        "blockDeviceMappings[0].ebs.volumeSize: expected a string, got int",
        "metadataOptions.httpPutResponseHopLimit: expected an integer, got bool",
        "detailedMonitoring: expected a boolean, got str",
    ]


def test_enum_pattern_and_bounds() -> None:
    spec = ec2nodeclass_spec()
    spec["blockDeviceMappings"][0]["ebs"]["volumeType"] = "gp4"
    spec["amiSelectorTerms"] = [{"alias": "al2023"}]
    spec["metadataOptions"]["httpPutResponseHopLimit"] = 65
    found = problems(spec, EC2NODECLASS_SPEC)
    assert [f.split(":")[0] for f in found] == [
        "amiSelectorTerms[0].alias",
        "blockDeviceMappings[0].ebs.volumeType",
        "metadataOptions.httpPutResponseHopLimit",
    ]


def test_ec2nodeclass_requires_the_selector_terms() -> None:
    spec = ec2nodeclass_spec()
    del spec["subnetSelectorTerms"]
    del spec["amiSelectorTerms"]
    assert problems(spec, EC2NODECLASS_SPEC) == [
        "amiSelectorTerms: required field is missing",
        "subnetSelectorTerms: required field is missing",
    ]


def test_nodepool_duration_pattern() -> None:
    spec = nodepool_spec()
    spec["disruption"]["consolidateAfter"] = "5 minutes"
    (found,) = problems(spec, NODEPOOL_SPEC)
    assert found.startswith("disruption.consolidateAfter: '5 minutes' does not match")


def test_unknown_values_key_is_reported_with_its_path() -> None:
    values = chart_values()
    values["settings"]["clustername"] = CLUSTER
    assert values_problems(values) == [
        f"settings.clustername: not a key karpenter {KARPENTER_VERSION} documents"
    ]


def test_removed_webhook_values_are_reported() -> None:
    (found,) = values_problems({"webhook": {"enabled": False}})
    assert found.startswith("webhook: not a key karpenter")
    assert "1.1.0" in found


def test_values_recurse_only_into_the_listed_sub_objects() -> None:
    values = chart_values()
    values["affinity"] = {"whatever": {"deeply": ["nested"]}}
    values["controller"]["resources"]["unusual"] = True
    values["controller"]["image"]["registry"] = "example"
    values["serviceMonitor"]["interval"] = "30s"
    values["podDisruptionBudget"]["minAvailable"] = 1
    assert values_problems(values) == [
        "controller.image.registry: not a key karpenter 1.14.1 documents",
        "podDisruptionBudget.minAvailable: not a key karpenter 1.14.1 documents",
        "serviceMonitor.interval: not a key karpenter 1.14.1 documents",
    ]


def test_values_sub_object_of_wrong_type() -> None:
    assert values_problems({"settings": "clusterName=x"}) == [
        "settings: expected an object, got str"
    ]


# --- the notation on its own ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ({"a": 1}, Obj(fields={"a": Int()}), []),
        ({}, Obj(fields={"a": Int()}, required=frozenset({"a"})), ["a: required field is missing"]),
        ([1, "x"], Arr(Int()), ["[1]: expected an integer, got str"]),
        ({"k": 1.5}, Map(Quantity()), ["k: expected an integer or a string, got float"]),
        ("b", Str(enum=("a",)), ["<root>: 'b' is not one of [a]"]),
        (0, Int(minimum=1), ["<root>: 0 is below the minimum 1"]),
        ({"a": None}, Obj(fields={"a": Int()}), ["a: expected an integer, got NoneType"]),
    ],
)
def test_notation(value: object, schema: Any, expected: list[str]) -> None:
    assert problems(value, schema) == expected


def test_specs_do_not_mutate_inputs() -> None:
    spec = nodepool_spec()
    before = copy.deepcopy(spec)
    problems(spec, NODEPOOL_SPEC)
    assert spec == before
