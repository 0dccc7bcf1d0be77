"""The VPC an EKS cluster lives in: subnets per zone, NAT, flow logs, an S3 endpoint."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

# The values CloudWatch Logs accepts for retentionInDays.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192}
    | {2557, 2922, 3288, 3653}
)
_ZONE_LETTERS = "abcdef"
NatStrategy = Literal["single", "per_az"]


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
    ``az_count`` zones that need no opt-in."""
    flow_log_retention_days: int = 90
    """Retention of the VPC flow log group, a CloudWatch-allowed value. Default 90."""
    map_public_ip_on_launch: bool = False
    """Whether instances in the PUBLIC subnets get a public IP. Private subnets never do.
    Default False."""
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


def validate_network_args(args: NetworkArgs) -> list[str]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[str] = []
    if not args.cluster_name:
        problems.append("cluster_name: must be a non-empty EKS cluster name")
    try:
        net = ipaddress.ip_network(args.cidr_block)
        if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 20:
            problems.append(
                f"cidr_block: {args.cidr_block!r} must be a private IPv4 range /16 to /20"
            )
    except ValueError:
        problems.append(f"cidr_block: {args.cidr_block!r} is not a CIDR (e.g. 10.0.0.0/16)")
    if isinstance(args.az_count, bool) or not isinstance(args.az_count, int):
        problems.append(f"az_count: {args.az_count!r} must be an integer from 2 to 6")
    elif not 2 <= args.az_count <= 6:
        problems.append(f"az_count: {args.az_count} must be from 2 to 6 (EKS needs two zones)")
    if args.nat_strategy not in ("single", "per_az"):
        problems.append(f"nat_strategy: {args.nat_strategy!r} must be 'single' or 'per_az'")
    if args.flow_log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            f"flow_log_retention_days: {args.flow_log_retention_days!r} must be one of "
            f"{sorted(LOG_RETENTION_DAYS)}"
        )
    if args.availability_zones:
        if isinstance(args.az_count, int) and len(args.availability_zones) < args.az_count:
            problems.append(
                f"availability_zones: {len(args.availability_zones)} given, az_count needs "
                f"{args.az_count}"
            )
        for zone in args.availability_zones:
            if zone[-1:] not in _ZONE_LETTERS:
                problems.append(f"availability_zones: {zone!r} must end in a letter a-f")
        if len(set(args.availability_zones)) != len(args.availability_zones):
            problems.append("availability_zones: must not repeat a zone")
    return problems


class Network(pulumi.ComponentResource):
    """A VPC across ``az_count`` zones with public and private subnets per zone.

    Private subnets route out through NAT (one shared, or one per zone) and reach S3
    through a gateway endpoint; the default security group is taken over with no rules;
    all traffic is recorded by VPC flow logs in CloudWatch. Raises ``ValueError`` naming
    every bad field of ``args``.
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
        problems = validate_network_args(args)
        if problems:
            raise ValueError("invalid NetworkArgs: " + "; ".join(problems))
        super().__init__("mlplatform:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)

        zones = list(args.availability_zones[: args.az_count])
        if not zones:
            found = aws.get_availability_zones(
                state="available",
                filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
                opts=invoke,
            ).names
            zones = sorted(z for z in found if z[-1:] in _ZONE_LETTERS)[: args.az_count]
            if len(zones) < args.az_count:
                raise ValueError(
                    f"invalid NetworkArgs: az_count: {args.az_count} but the region has only "
                    f"{len(zones)} zones: {zones}"
                )
        region = aws.get_region(opts=invoke).region
        account = aws.get_caller_identity(opts=invoke).account_id
        self._partition = aws.get_partition(opts=invoke).partition
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
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rts[k].id for k in keys],
            tags=named("s3"),
            opts=child,
        )
        self._flow_logs(name, vpc, args, region, account, tags)

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

    def _flow_logs(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        args: NetworkArgs,
        region: str,
        account: str,
        tags: dict[str, str],
    ) -> None:
        """Flow logs to CloudWatch, delivered by a role that can write only that group."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/aws/vpc/{name}/flow-logs",
            retention_in_days=args.flow_log_retention_days,
            tags=tags,
            opts=child,
        )
        # The source conditions stop another account's flow logs from using this role.
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {
                            "aws:SourceArn": (
                                f"arn:{self._partition}:ec2:{region}:{account}:vpc-flow-log/*"
                            )
                        },
                    },
                }
            ],
        }
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=json.dumps(trust),
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
