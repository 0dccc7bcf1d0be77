"""VPC rules: default security group, world-open ingress, flow logs (stack level)."""

from __future__ import annotations

from typing import Any

import pytest

from policy.rules import check_resource, check_stack, evaluate

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC_URN = "urn:pulumi:dev::mlplatform::mlplatform:network:Network$aws:ec2/vpc:Vpc::net-vpc"


def fired(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    return {f.policy: f.level for f in check_resource(resource_type, props)}


def ingress(protocol: str, low: float, high: float, cidr: str = "0.0.0.0/0") -> dict[str, Any]:
    key = "ipv6CidrBlocks" if ":" in cidr else "cidrBlocks"
    return {"protocol": protocol, "fromPort": low, "toPort": high, key: [cidr]}


@pytest.mark.parametrize(
    "rule",
    [
        ingress("tcp", 22.0, 22.0),
        ingress("tcp", 0.0, 1024.0),
        ingress("6", 3389.0, 3389.0),
        ingress("udp", 3389.0, 3389.0),
        ingress("-1", 0.0, 0.0),
        ingress("all", 0.0, 0.0, "::/0"),
        ingress("tcp", 0.0, 65535.0),
    ],
)
def test_inline_world_ingress_to_admin_ports_is_a_violation(rule: dict[str, Any]) -> None:
    findings = check_resource(SG, {"vpcId": "vpc-1", "ingress": [rule]})
    assert [f.policy for f in findings] == ["sg-no-world-admin-ingress"]
    assert findings[0].level == "mandatory"
    assert "ingress[0]" in findings[0].message


@pytest.mark.parametrize(
    "rule",
    [
        ingress("tcp", 443.0, 443.0),
        ingress("tcp", 22.0, 22.0, "10.0.0.0/16"),
        ingress("-1", 0.0, 0.0, "10.0.0.0/8"),
        ingress("udp", 53.0, 53.0),
        ingress("tcp", 22.0, 22.0, UNKNOWN),
        {"protocol": "tcp", "fromPort": UNKNOWN, "toPort": 22.0, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": UNKNOWN},
    ],
)
def test_inline_ingress_that_is_fine_or_unknown(rule: dict[str, Any]) -> None:
    assert fired(SG, {"vpcId": "vpc-1", "ingress": [rule]}) == {}


def test_separate_ingress_rule_resources() -> None:
    open_ssh = {"ipProtocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrIpv4": "0.0.0.0/0"}
    assert fired(INGRESS, open_ssh) == {"sg-no-world-admin-ingress": "mandatory"}
    assert fired(INGRESS, {"ipProtocol": "-1", "cidrIpv6": "::/0"}) == {
        "sg-no-world-admin-ingress": "mandatory"
    }
    assert fired(INGRESS, {**open_ssh, "cidrIpv4": "10.0.0.0/16"}) == {}
    assert fired(INGRESS, {**open_ssh, "cidrIpv4": UNKNOWN}) == {}
    assert fired(INGRESS, {"ipProtocol": "-1", "referencedSecurityGroupId": "sg-1"}) == {}


def test_security_group_rule_resources_check_ingress_only() -> None:
    rule = {"protocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrBlocks": ["0.0.0.0/0"]}
    assert fired(SG_RULE, {**rule, "type": "ingress"}) == {"sg-no-world-admin-ingress": "mandatory"}
    assert fired(SG_RULE, {**rule, "type": "egress"}) == {}
    assert fired(SG_RULE, {**rule, "type": "ingress", "fromPort": "80", "toPort": "80"}) == {}


def test_default_security_group_must_have_no_rules() -> None:
    assert fired(DEFAULT_SG, {"vpcId": "vpc-1"}) == {}
    assert fired(DEFAULT_SG, {"vpcId": "vpc-1", "ingress": [], "egress": []}) == {}
    self_rule = {"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "self": True}
    findings = check_resource(DEFAULT_SG, {"vpcId": "vpc-1", "ingress": [self_rule]})
    assert [(f.policy, f.level) for f in findings] == [("vpc-default-sg-no-rules", "mandatory")]
    assert "ingress" in findings[0].message
    assert fired(DEFAULT_SG, {"vpcId": "vpc-1", "egress": UNKNOWN}) == {}


def _stack(*extra: tuple[str, str, dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(VPC_URN, VPC, {"cidrBlock": "10.0.0.0/16"}), *extra]


def _flow_log(vpc_id: Any) -> tuple[str, str, dict[str, Any]]:
    props = {"vpcId": vpc_id, "trafficType": "ALL", "logDestinationType": "cloud-watch-logs"}
    return ("urn:pulumi:dev::mlplatform::aws:ec2/flowLog:FlowLog::net-flow", FLOW_LOG, props)


def _default_sg(vpc_id: Any) -> tuple[str, str, dict[str, Any]]:
    urn = "urn:pulumi:dev::mlplatform::aws:ec2/defaultSecurityGroup:DefaultSecurityGroup::d"
    return (urn, DEFAULT_SG, {"vpcId": vpc_id})


def _stack_rules(findings: list[tuple[str, Any]]) -> set[tuple[str, str]]:
    return {(urn, f.policy) for urn, f in findings}


def test_vpc_without_flow_log_or_managed_default_sg_is_flagged_on_the_vpc() -> None:
    findings = check_stack(_stack())
    assert _stack_rules(findings) == {
        (VPC_URN, "vpc-flow-logs"),
        (VPC_URN, "vpc-default-sg-managed"),
    }
    assert all(f.level == "mandatory" for _, f in findings)


def test_vpc_linked_by_physical_id_alias() -> None:
    resources = _stack(_flow_log("vpc-0abc"), _default_sg("vpc-0abc"))
    assert check_stack(resources, aliases={VPC_URN: {"vpc-0abc"}}) == []
    # Without knowing the VPC's id, nothing links the flow log to it.
    assert _stack_rules(check_stack(resources)) == {
        (VPC_URN, "vpc-flow-logs"),
        (VPC_URN, "vpc-default-sg-managed"),
    }


def test_vpc_linked_by_id_prop_urn_or_name() -> None:
    by_id = [(VPC_URN, VPC, {"id": "vpc-9"}), _flow_log("vpc-9"), _default_sg(VPC_URN)]
    assert check_stack(by_id) == []
    by_name = _stack(_flow_log("net-vpc"), _default_sg("net-vpc"))
    assert check_stack(by_name) == []


def test_flow_log_on_another_vpc_does_not_count() -> None:
    resources = _stack(_flow_log("vpc-other"), _default_sg("vpc-0abc"))
    findings = check_stack(resources, aliases={VPC_URN: ["vpc-0abc"]})
    assert _stack_rules(findings) == {(VPC_URN, "vpc-flow-logs")}


def test_unknown_vpc_reference_cannot_be_judged() -> None:
    assert check_stack(_stack(_flow_log(UNKNOWN), _default_sg(None))) == []


def test_evaluate_combines_resource_and_stack_findings() -> None:
    sg_urn = "urn:pulumi:dev::mlplatform::aws:ec2/securityGroup:SecurityGroup::web"
    resources = _stack((sg_urn, SG, {"ingress": [ingress("tcp", 22.0, 22.0)]}))
    assert _stack_rules(evaluate(resources)) == {
        (sg_urn, "sg-no-world-admin-ingress"),
        (VPC_URN, "vpc-flow-logs"),
        (VPC_URN, "vpc-default-sg-managed"),
    }
