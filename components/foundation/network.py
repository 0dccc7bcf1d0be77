"""The VPC an EKS cluster lives in: subnets per zone, NAT, endpoints and flow logs.

One component, one file: its Args, validator, zone and subnet arithmetic and the two
helpers that add endpoints and flow logs stay together, which is why it runs past 300
lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components._aws import (
    EKS_UNSUPPORTED_ZONE_IDS,
    LOG_RETENTION_DAYS,
    AccountContext,
    LogGroupSpec,
    account_context,
    encrypted_log_group,
    service_trust_policy,
)
from components._tokens import type_token, with_aliases
from components._validate import Problem, raise_for

_ZONE_LETTERS = "abcdef"
NatStrategy = Literal["single", "per_az"]
# Interface endpoints that keep node bootstrap, image pulls, IRSA token exchange and log
# shipping off the NAT gateways (the EKS guide's list for private nodes).
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "ec2", "logs")


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    cluster_name: str
    """EKS cluster name the subnets are tagged for (``kubernetes.io/cluster/<name>``). Required."""
    cidr_block: str = "10.0.0.0/16"
    """Private (RFC 1918) IPv4 VPC range, prefix /16 to /20. Default ``10.0.0.0/16``."""
    az_count: int = 3
    """Number of availability zones (2 to 6). Default 3."""
    nat_strategy: NatStrategy = "per_az"
    """``"per_az"`` (one NAT gateway per zone, survives a zone outage) or ``"single"``
    (one shared NAT gateway, cheaper). Default ``"per_az"``."""
    availability_zones: Sequence[str] = ()
    """Zone names to use (the first ``az_count``). Default: the region's first
    ``az_count`` zones that need no opt-in and that the EKS control plane supports
    (chosen by zone ID: ``use1-az3`` is a different name in every account)."""
    flow_log_retention_days: int = 90
    """Retention of the VPC flow log group, a CloudWatch-allowed value. Default 90."""
    interface_endpoints: bool = True
    """Create interface endpoints for ECR (api, dkr), STS, EC2 and CloudWatch Logs in the
    private subnets, so image pulls and token calls do not pay for NAT. Default True."""
    map_public_ip_on_launch: bool = False
    """Whether instances in the PUBLIC subnets get a public IP. Private subnets never do.
    Default False."""
    kms_deletion_window_days: int = 30
    """Waiting period before the flow-log key is deleted, 7 to 30 days. Default 30."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags applied to every taggable resource. Default none."""


def zone_key(zone: str) -> str:
    """Return the stable key of an availability zone: its letter (``us-west-2b`` -> ``b``).

    Raises ``ValueError`` when the zone name does not end in a letter a-f.
    """
    letter = zone[-1:]
    if letter not in _ZONE_LETTERS:
        raise ValueError(f"availability zone {zone!r} must end in one of a-f")
    return letter


def subnet_cidrs(cidr_block: str, key: str) -> tuple[str, str]:
    """Return (public, private) CIDRs for zone ``key`` inside ``cidr_block``.

    The VPC is cut into eight blocks: blocks 0-5 are the private subnets of zones a-f
    (large, because the VPC CNI gives every pod an address), block 7 is cut into eight
    small public subnets. A zone's ranges depend only on its letter, so adding or removing
    a zone never renumbers the others.
    """
    vpc = ipaddress.ip_network(cidr_block)
    index = _ZONE_LETTERS.index(key)
    blocks = list(vpc.subnets(prefixlen_diff=3))
    private = blocks[index]
    public = list(blocks[7].subnets(prefixlen_diff=3))[index]
    return str(public), str(private)


def validate_network_args(args: NetworkArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if not args.cluster_name:
        problems.append(Problem("cluster_name", "must be a non-empty EKS cluster name"))
    try:
        net = ipaddress.ip_network(args.cidr_block)
        if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 20:
            problems.append(
                Problem("cidr_block", "must be a private IPv4 range /16 to /20", args.cidr_block)
            )
    except ValueError:
        problems.append(Problem("cidr_block", "is not a CIDR (e.g. 10.0.0.0/16)", args.cidr_block))
    if isinstance(args.az_count, bool) or not isinstance(args.az_count, int):
        problems.append(Problem("az_count", "must be an integer from 2 to 6", args.az_count))
    elif not 2 <= args.az_count <= 6:
        problems.append(
            Problem("az_count", "is outside 2..6 (EKS needs two zones; six at most)", args.az_count)
        )
    if args.nat_strategy not in ("single", "per_az"):
        problems.append(Problem("nat_strategy", "must be 'single' or 'per_az'", args.nat_strategy))
    if args.flow_log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            Problem(
                "flow_log_retention_days",
                f"is not a CloudWatch retention; use one of {sorted(LOG_RETENTION_DAYS)}",
                args.flow_log_retention_days,
            )
        )
    if not 7 <= args.kms_deletion_window_days <= 30:
        problems.append(
            Problem(
                "kms_deletion_window_days", "must be from 7 to 30", args.kms_deletion_window_days
            )
        )
    if args.availability_zones:
        if isinstance(args.az_count, int) and len(args.availability_zones) < args.az_count:
            problems.append(
                Problem(
                    "availability_zones",
                    f"{len(args.availability_zones)} given, az_count needs {args.az_count}",
                )
            )
        for zone in args.availability_zones:
            if zone[-1:] not in _ZONE_LETTERS:
                problems.append(Problem("availability_zones", "must end in a letter a-f", zone))
        if len(set(args.availability_zones)) != len(args.availability_zones):
            problems.append(Problem("availability_zones", "must not repeat a zone"))
    return problems


def eks_zones(names: Sequence[str], zone_ids: Sequence[str], count: int) -> list[str]:
    """Return the first ``count`` zone names (sorted) whose zone ID the EKS control plane
    supports and whose name ends in a letter a-f."""
    usable = sorted(
        name
        for name, zone_id in zip(names, zone_ids, strict=False)
        if zone_id not in EKS_UNSUPPORTED_ZONE_IDS and name[-1:] in _ZONE_LETTERS
    )
    return usable[:count]


class Network(pulumi.ComponentResource):
    """A VPC across ``az_count`` zones with public and private subnets per zone.

    Private subnets route out through NAT (one shared, or one per zone), reach S3 through
    a gateway endpoint and ECR, STS, EC2 and CloudWatch Logs through interface endpoints;
    the default security group is taken over with no rules; all traffic is recorded by
    VPC flow logs in a KMS-encrypted log group. Raises
    :class:`~components._validate.ValidationError` naming every bad field of ``args``.
    """

    vpc_id: pulumi.Output[str]
    vpc_cidr_block: pulumi.Output[str]
    availability_zones: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    private_route_table_ids: pulumi.Output[list[str]]
    nat_gateway_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("NetworkArgs", validate_network_args(args))
        super().__init__(
            type_token("Network"), name, None, with_aliases(opts, "mlplatform:network:Network")
        )
        child = pulumi.ResourceOptions(parent=self)
        context = account_context(self)

        zones = list(args.availability_zones[: args.az_count])
        if not zones:
            found = aws.get_availability_zones(
                state="available",
                filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
                opts=pulumi.InvokeOptions(parent=self),
            )
            zones = eks_zones(found.names, found.zone_ids, args.az_count)
            if len(zones) < args.az_count:
                raise_for(
                    "NetworkArgs",
                    [
                        Problem(
                            "az_count",
                            f"but {context.region} has only {len(zones)} zones EKS supports: "
                            f"{zones}",
                            args.az_count,
                        )
                    ],
                )
        tags = dict(args.tags)

        def named(suffix: str) -> dict[str, str]:
            return {**tags, "Name": f"{name}-{suffix}"}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # EKS private endpoint and nodes need DNS hostnames
            tags=named("vpc"),
            opts=child,
        )
        # Taking over the default security group with no rules: anything that lands in it
        # by accident can talk to nothing.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=named("default-sg"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=named("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=named("public"),
            opts=child,
        )

        cluster_tag = f"kubernetes.io/cluster/{args.cluster_name}"
        public_subnets: dict[str, aws.ec2.Subnet] = {}
        private_subnets: dict[str, aws.ec2.Subnet] = {}
        for zone in zones:
            key = zone_key(zone)
            public_cidr, private_cidr = subnet_cidrs(args.cidr_block, key)
            public_subnets[key] = aws.ec2.Subnet(
                f"{name}-public-{key}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=public_cidr,
                map_public_ip_on_launch=args.map_public_ip_on_launch,
                tags={
                    **named(f"public-{key}"),
                    "kubernetes.io/role/elb": "1",
                    cluster_tag: "shared",
                },
                opts=child,
            )
            private_subnets[key] = aws.ec2.Subnet(
                f"{name}-private-{key}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=private_cidr,
                map_public_ip_on_launch=False,
                tags={
                    **named(f"private-{key}"),
                    "kubernetes.io/role/internal-elb": "1",
                    cluster_tag: "shared",
                    # Karpenter finds the subnets to launch nodes in by this tag.
                    "karpenter.sh/discovery": args.cluster_name,
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{key}",
                subnet_id=public_subnets[key].id,
                route_table_id=public_rt.id,
                opts=child,
            )

        keys = sorted(public_subnets)
        nat_keys = keys if args.nat_strategy == "per_az" else keys[:1]
        nats: dict[str, aws.ec2.NatGateway] = {}
        for key in nat_keys:
            eip = aws.ec2.Eip(
                f"{name}-nat-{key}", domain="vpc", tags=named(f"nat-{key}"), opts=child
            )
            nats[key] = aws.ec2.NatGateway(
                f"{name}-nat-{key}",
                allocation_id=eip.id,
                subnet_id=public_subnets[key].id,
                tags=named(f"nat-{key}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )

        private_rts: dict[str, aws.ec2.RouteTable] = {}
        for key in keys:
            nat = nats.get(key, nats[nat_keys[0]])
            private_rts[key] = aws.ec2.RouteTable(
                f"{name}-private-{key}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=named(f"private-{key}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{key}",
                subnet_id=private_subnets[key].id,
                route_table_id=private_rts[key].id,
                opts=child,
            )

        # Image layers and model artifacts come from S3: keep that traffic off the NAT.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{context.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rts[k].id for k in keys],
            tags=named("s3"),
            opts=child,
        )
        if args.interface_endpoints:
            _interface_endpoints(
                self, name, vpc, [private_subnets[k].id for k in keys], args, context
            )
        _flow_logs(self, name, vpc, args, context, tags)

        self.vpc_id = vpc.id
        self.vpc_cidr_block = vpc.cidr_block
        self.availability_zones = pulumi.Output.from_input(zones)
        self.public_subnet_ids = pulumi.Output.all(*[public_subnets[k].id for k in keys])
        self.private_subnet_ids = pulumi.Output.all(*[private_subnets[k].id for k in keys])
        self.private_route_table_ids = pulumi.Output.all(*[private_rts[k].id for k in keys])
        self.nat_gateway_ids = pulumi.Output.all(*[nats[k].id for k in nat_keys])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr_block": self.vpc_cidr_block,
                "availability_zones": self.availability_zones,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "private_route_table_ids": self.private_route_table_ids,
                "nat_gateway_ids": self.nat_gateway_ids,
            }
        )


def _interface_endpoints(
    parent: Network,
    name: str,
    vpc: aws.ec2.Vpc,
    subnet_ids: list[pulumi.Output[str]],
    args: NetworkArgs,
    context: AccountContext,
) -> None:
    """Interface endpoints with private DNS, reachable on 443 from inside the VPC only."""
    child = pulumi.ResourceOptions(parent=parent)
    tags = dict(args.tags)
    group = aws.ec2.SecurityGroup(
        f"{name}-endpoints",
        vpc_id=vpc.id,
        description=f"HTTPS from inside VPC {name} to its interface endpoints",
        ingress=[
            {
                "description": "HTTPS from the VPC",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": [args.cidr_block],
            }
        ],
        egress=[],
        tags={**tags, "Name": f"{name}-endpoints"},
        opts=child,
    )
    for service in INTERFACE_ENDPOINTS:
        key = service.replace(".", "-")
        aws.ec2.VpcEndpoint(
            f"{name}-{key}",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{context.region}.{service}",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=subnet_ids,
            security_group_ids=[group.id],
            tags={**tags, "Name": f"{name}-{key}"},
            opts=child,
        )


def _flow_logs(
    parent: Network,
    name: str,
    vpc: aws.ec2.Vpc,
    args: NetworkArgs,
    context: AccountContext,
    tags: dict[str, str],
) -> None:
    """Flow logs to a KMS-encrypted CloudWatch group, delivered by a role that can write
    only that group."""
    child = pulumi.ResourceOptions(parent=parent)
    group = encrypted_log_group(
        f"{name}-flow-logs",
        LogGroupSpec(
            group_name=f"/aws/vpc/{name}/flow-logs",
            retention_days=args.flow_log_retention_days,
            description=f"the VPC flow logs of {name}",
            deletion_window_days=args.kms_deletion_window_days,
            tags=tags,
        ),
        context=context,
        parent=parent,
    )
    # The source conditions stop another account's flow logs from using this role.
    role = aws.iam.Role(
        f"{name}-flow-logs",
        assume_role_policy=service_trust_policy(
            "vpc-flow-logs.amazonaws.com",
            source_account=context.account_id,
            source_arn=context.arn("ec2", "vpc-flow-log/*"),
        ),
        description=f"Delivers VPC flow logs of {name} to CloudWatch Logs",
        tags=tags,
        opts=child,
    )
    aws.iam.RolePolicy(
        f"{name}-flow-logs",
        role=role.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                            "logs:PutLogEvents",
                        ],
                        "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
                    }
                ],
            }
        ),
        opts=child,
    )
    aws.ec2.FlowLog(
        f"{name}-flow-logs",
        vpc_id=vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=group.arn,
        iam_role_arn=role.arn,
        max_aggregation_interval=60,
        tags=tags,
        opts=child,
    )
