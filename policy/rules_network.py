"""Rules for the VPC: flow logs, the default security group and world-open ingress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    Aliases,
    ResourceRule,
    Resources,
    StackRule,
    as_list,
    as_number,
    dig,
    is_unknown,
    iter_mappings,
    link_targets,
)

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"

OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
_ALL_PROTOCOLS = frozenset({"-1", "all"})
_TCP = frozenset({"tcp", "6"})
_TCP_UDP = frozenset({"tcp", "6", "udp", "17"})


def _exposure(protocol: Any, from_port: Any, to_port: Any) -> str | None:
    """What a world-open rule exposes that policy forbids, or None (fine or unknown)."""
    if is_unknown(protocol):
        return None
    proto = str(protocol).strip().lower()
    if proto in _ALL_PROTOCOLS:
        return "all ports (protocol -1)"
    if is_unknown(from_port) or is_unknown(to_port):
        return None
    low, high = as_number(from_port), as_number(to_port)
    if low is None or high is None:
        return None
    if low <= 0 and high >= 65535 and proto in _TCP_UDP:
        return f"all {proto} ports (0-65535)"
    if proto in _TCP and low <= 22 <= high:
        return "SSH (port 22)"
    if proto in _TCP_UDP and low <= 3389 <= high:
        return "RDP (port 3389)"
    return None


def _open_cidrs(*values: Any) -> list[str] | None:
    """The world-open CIDRs among ``values`` (lists or single CIDRs); None if unknown."""
    found: list[str] = []
    for value in values:
        if is_unknown(value):
            return None
        for cidr in as_list(value):
            if is_unknown(cidr):
                return None
            if isinstance(cidr, str) and cidr.strip() in OPEN_CIDRS:
                found.append(cidr.strip())
    return found


def _violation(where: str, cidrs: list[str], exposed: str) -> str:
    return (
        f"{where} allows {', '.join(cidrs)} to reach {exposed}; restrict the source CIDRs "
        "or the ports (SSH/RDP go through SSM, never the internet)"
    )


def _open_ingress(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == SECURITY_GROUP:
        problems: list[str] = []
        for index, rule in enumerate(iter_mappings(dig(props, "ingress"))):
            cidrs = _open_cidrs(dig(rule, "cidrBlocks"), dig(rule, "ipv6CidrBlocks"))
            exposed = _exposure(dig(rule, "protocol"), dig(rule, "fromPort"), dig(rule, "toPort"))
            if cidrs and exposed:
                problems.append(_violation(f"ingress[{index}]", cidrs, exposed))
        return problems
    if resource_type == SG_RULE and dig(props, "type") != "ingress":
        return []
    if resource_type == SG_RULE:
        cidrs = _open_cidrs(dig(props, "cidrBlocks"), dig(props, "ipv6CidrBlocks"))
        exposed = _exposure(dig(props, "protocol"), dig(props, "fromPort"), dig(props, "toPort"))
        where = "cidrBlocks/ipv6CidrBlocks"
    else:
        cidrs = _open_cidrs(dig(props, "cidrIpv4"), dig(props, "cidrIpv6"))
        exposed = _exposure(dig(props, "ipProtocol"), dig(props, "fromPort"), dig(props, "toPort"))
        where = "cidrIpv4/cidrIpv6"
    return [_violation(where, cidrs, exposed)] if cidrs and exposed else []


def _default_sg_rules(_: str, props: Mapping[str, Any]) -> list[str]:
    present = [k for k in ("ingress", "egress") if as_list(dig(props, k))]
    if not present:
        return []
    return [
        f"the default security group must have no rules; found {' and '.join(present)} rules "
        "(give workloads their own security groups)"
    ]


def _vpcs_without(
    kind: str, resources: Resources, aliases: Aliases, message: str
) -> list[tuple[str, str]]:
    vpcs = [(urn, props) for urn, rtype, props in resources if rtype == VPC]
    refs = [dig(props, "vpcId") for _, rtype, props in resources if rtype == kind]
    covered = link_targets(vpcs, refs, aliases)
    if covered is None:
        return []
    return [(urn, message) for urn, _ in vpcs if urn not in covered]


def _flow_logs(resources: Resources, aliases: Aliases) -> list[tuple[str, str]]:
    return _vpcs_without(
        FLOW_LOG,
        resources,
        aliases,
        "the VPC has no flow log: add an aws.ec2.FlowLog with vpcId set to this VPC",
    )


def _default_sg_managed(resources: Resources, aliases: Aliases) -> list[tuple[str, str]]:
    return _vpcs_without(
        DEFAULT_SG,
        resources,
        aliases,
        "the VPC's default security group is not managed, so it keeps AWS's allow-all rules: "
        "adopt it with an aws.ec2.DefaultSecurityGroup (vpcId set to this VPC) with no rules",
    )


RULES: list[ResourceRule] = [
    ResourceRule(
        "vpc-default-sg-no-rules",
        "mandatory",
        frozenset({DEFAULT_SG}),
        "The default security group of a VPC has no ingress or egress rules.",
        "Anything launched without an explicit security group would otherwise get open access.",
        "AWS Security Hub EC2.2; Checkov CKV2_AWS_12",
        _default_sg_rules,
    ),
    ResourceRule(
        "sg-no-world-admin-ingress",
        "mandatory",
        frozenset({SECURITY_GROUP, INGRESS_RULE, SG_RULE}),
        "No security group ingress from 0.0.0.0/0 or ::/0 to port 22, 3389 or all ports.",
        "Admin ports open to the internet are scanned and brute-forced within minutes.",
        "AWS Security Hub EC2.13, EC2.14; Checkov CKV_AWS_24, CKV_AWS_25, CKV_AWS_277",
        _open_ingress,
    ),
]

STACK_RULES: list[StackRule] = [
    StackRule(
        "vpc-flow-logs",
        "mandatory",
        frozenset({VPC, FLOW_LOG}),
        "Every VPC has a flow log attached (aws.ec2.FlowLog with its vpcId).",
        "Flow logs are the network record needed to investigate an incident.",
        "AWS Security Hub EC2.6; Checkov CKV2_AWS_11",
        _flow_logs,
    ),
    StackRule(
        "vpc-default-sg-managed",
        "mandatory",
        frozenset({VPC, DEFAULT_SG}),
        "Every VPC adopts its default security group (aws.ec2.DefaultSecurityGroup).",
        "An unmanaged default security group keeps AWS's allow-all rules.",
        "AWS Security Hub EC2.2; Checkov CKV2_AWS_12",
        _default_sg_managed,
    ),
]
