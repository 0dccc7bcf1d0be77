"""The CrossGuard wrapping: one policy per rule, right levels, validate callables work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi.runtime.rpc
import pulumi_policy.proxy
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from policy.__main__ import build_policies, plain
from policy.rules import RESOURCE_RULES, STACK_RULES, UNKNOWN_SENTINELS, all_rules, evaluate

UNKNOWN = pulumi.runtime.rpc.UNKNOWN
CLUSTER = "aws:eks/cluster:Cluster"
CLUSTER_URN = "urn:pulumi:dev::mlplatform::aws:eks/cluster:Cluster::eks"


def test_unknown_sentinels_match_the_sdks() -> None:
    from_proxy = {
        value
        for name, value in vars(pulumi_policy.proxy).items()
        if name.startswith("UNKNOWN_") and isinstance(value, str)
    }
    assert from_proxy == UNKNOWN_SENTINELS
    assert UNKNOWN in UNKNOWN_SENTINELS


def test_one_policy_per_rule_with_unique_names_and_levels() -> None:
    policies = build_policies()
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == len(all_rules())
    by_name = {p.name: p for p in policies}
    for rule in RESOURCE_RULES:
        assert isinstance(by_name[rule.name], ResourceValidationPolicy)
    for rule in STACK_RULES:
        assert isinstance(by_name[rule.name], StackValidationPolicy)
    for rule in all_rules():
        expected = EnforcementLevel[rule.level.upper()]
        assert by_name[rule.name].enforcement_level == expected
        assert rule.description and rule.why and rule.source
    # Rules that report both levels are split into two policies.
    assert by_name["eks-public-endpoint"].enforcement_level == EnforcementLevel.MANDATORY
    assert by_name["eks-public-endpoint-restricted"].enforcement_level == EnforcementLevel.ADVISORY


def _validate(policy_name: str, resource_type: str, props: dict[str, Any]) -> list[tuple]:
    policy = next(p for p in build_policies() if p.name == policy_name)
    assert isinstance(policy, ResourceValidationPolicy)
    reported: list[tuple] = []
    args = SimpleNamespace(
        resource_type=resource_type,
        props=unknown_checking_proxy(props),
        urn=CLUSTER_URN,
        name="eks",
    )
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))  # type: ignore[arg-type]
    return reported


def test_resource_policy_reports_each_finding_with_the_urn() -> None:
    props = {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}}
    [(message, urn)] = _validate("eks-public-endpoint", CLUSTER, props)
    assert urn == CLUSTER_URN and "0.0.0.0/0" in message
    assert _validate("eks-public-endpoint", "aws:kms/key:Key", props) == []
    assert (
        _validate("eks-public-endpoint", CLUSTER, {"vpcConfig": {"endpointPublicAccess": False}})
        == []
    )


def test_resource_policy_judges_the_rest_of_a_resource_with_unknowns() -> None:
    # CrossGuard's proxy raises on reading an unknown; the pack must still judge the
    # known parts (here: logging) and treat the unknown key ARN as "cannot judge".
    props = {
        "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": UNKNOWN}},
        "enabledClusterLogTypes": ["api"],
    }
    assert _validate("eks-secrets-kms", CLUSTER, props) == []
    [(message, _)] = _validate("eks-control-plane-logging", CLUSTER, props)
    assert "audit" in message


def test_plain_unwraps_nested_proxies_keeping_sentinels() -> None:
    raw = {"a": [{"b": UNKNOWN}, 1.0], "c": {"d": True}}
    assert plain(unknown_checking_proxy(raw)) == raw


def _stack_resource(urn: str, rtype: str, props: dict[str, Any]) -> SimpleNamespace:
    """A stand-in for CrossGuard's PolicyResource with the fields the pack reads."""
    return SimpleNamespace(
        resource_type=rtype,
        props=unknown_checking_proxy(props),
        urn=urn,
        property_dependencies={},
    )


def test_stack_policy_links_through_property_dependencies() -> None:
    vpc_urn = "urn:pulumi:dev::mlplatform::aws:ec2/vpc:Vpc::net"
    vpc = _stack_resource(vpc_urn, "aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
    flow = _stack_resource(
        "urn:pulumi:dev::mlplatform::aws:ec2/flowLog:FlowLog::flow",
        "aws:ec2/flowLog:FlowLog",
        {"vpcId": UNKNOWN, "trafficType": "ALL"},
    )
    policy = next(p for p in build_policies() if p.name == "vpc-flow-logs")
    assert isinstance(policy, StackValidationPolicy)

    def run(resources: list[SimpleNamespace]) -> list[tuple]:
        reported: list[tuple] = []
        args = SimpleNamespace(resources=resources)
        policy.validate(args, lambda m, u=None: reported.append((m, u)))  # type: ignore[arg-type]
        return reported

    [(message, urn)] = run([vpc])
    assert urn == vpc_urn and "flow log" in message
    # Unknown vpcId with no dependency: cannot judge.
    assert run([vpc, flow]) == []
    # Unknown vpcId that depends on the VPC (first preview): linked, compliant.
    flow.property_dependencies["vpcId"] = [vpc]
    assert run([vpc, flow]) == []
    # Known id that depends on the VPC: the id becomes the VPC's alias.
    flow.props = unknown_checking_proxy({"vpcId": "vpc-0abc"})
    assert run([vpc, flow]) == []


# Real camelCase prop names, so that the fuzzing reaches deep into the rules.
_KEY_NAMES = """
spec template jobTemplate containers initContainers securityContext seccompProfile vpcConfig
policy Statement Effect Action Resource Principal Federated Condition StringEquals StringLike
ingress egress cidrBlocks ipv6CidrBlocks cidrIpv4 fromPort toPort protocol ipProtocol type
rules bucket vpcId id metadata annotations namespace instanceTypes capacityType amiType taints
key effect assumeRolePolicy inlinePolicies encryptionConfig provider keyArn resources
enabledClusterLogTypes endpointPublicAccess publicAccessCidrs accessConfig authenticationMode
metadataOptions httpTokens blockDeviceMappings ebs encrypted networkInterfaces remoteAccess
retentionInDays enableKeyRotation deletionWindowInDays versioning versioningConfiguration
status serverSideEncryptionConfiguration rule applyServerSideEncryptionByDefault sseAlgorithm
lifecycleRules chart version image capabilities drop requests limits hostNetwork
"""
KEYS = st.sampled_from(_KEY_NAMES.split())
LEAVES = st.sampled_from([UNKNOWN, "true", "false", "*", "0.0.0.0/0", "SPOT", "-1", "Allow"])
PROPS = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8) | LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=20,
)
TYPES = sorted({t for rule in all_rules() for t in rule.resource_types})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rtype=st.sampled_from(TYPES),
    props=st.dictionaries(KEYS, PROPS, max_size=8),
    nested=PROPS,
)
def test_rules_never_crash_on_malformed_props(
    rtype: str, props: dict[str, Any], nested: Any
) -> None:
    props = {**props, "spec": nested, "policy": json.dumps(nested) if nested is not None else "{"}
    resources = [("urn:pulumi:dev::p::x::a", rtype, props), ("urn:pulumi:dev::p::y::b", rtype, {})]
    for _, finding in evaluate(resources):
        assert finding.level in ("mandatory", "advisory") and finding.message


def test_props_that_are_not_a_mapping_raise_a_clear_error() -> None:
    with pytest.raises(TypeError, match="props of 'aws:kms/key:Key' must be a mapping"):
        evaluate([("urn:x", "aws:kms/key:Key", ["not", "a", "mapping"])])  # type: ignore[list-item]


def test_importing_the_rules_does_not_start_or_load_the_policy_server() -> None:
    code = (
        "import sys, policy.rules; "
        "assert 'pulumi_policy' not in sys.modules, 'policy server runtime imported'; "
        "import policy.__main__ as m; assert m.build_policies()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_policy_pack_project_file() -> None:
    root = Path(__file__).resolve().parents[2]
    project = yaml.safe_load((root / "policy" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (root / "policy" / project["runtime"]["options"]["virtualenv"]).resolve() == (
        root / ".venv"
    )
    assert project["description"]


def test_docs_list_every_rule_with_its_level() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")
    }
    assert set(rows) == {rule.name for rule in all_rules()}
    for rule in all_rules():
        assert f"| `{rule.name}` | {rule.level} |" in rows[rule.name]
        assert rule.description in rows[rule.name] and rule.source in rows[rule.name]
