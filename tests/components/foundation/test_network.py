"""Network on the mock engine: zones, subnets, NAT strategy, flow logs, endpoints."""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.foundation.network import INTERFACE_ENDPOINTS, Network, NetworkArgs, subnet_cidrs
from infra.offline import ProgramRun, hex_digest, run_program
from tests.components.support import alias_types

DEV = NetworkArgs(
    cluster_name="ml-dev",
    az_count=2,
    nat_strategy="single",
    cidr_block="10.20.0.0/16",
    interface_endpoints=False,
)
PROD = NetworkArgs(
    cluster_name="ml-prod",
    az_count=3,
    nat_strategy="per_az",
    flow_log_retention_days=365,
    tags={"env": "prod"},
)


def _plan(args: NetworkArgs) -> ProgramRun:
    def program() -> None:
        Network("net", args)

    return run_program(program, project="mlplatform", stack="t", config={"aws:region": "us-west-2"})


@pytest.fixture(scope="module", params=[DEV, PROD], ids=["dev", "prod"])
def case(request: pytest.FixtureRequest) -> tuple[NetworkArgs, ProgramRun]:
    return request.param, _plan(request.param)


def _subnets(run: ProgramRun, role: str) -> list[dict]:
    return [r.inputs for r in run.by_type("aws:ec2/subnet:Subnet") if f"-{role}-" in r.name]


def test_subnets_per_zone_with_load_balancer_and_discovery_tags(case) -> None:
    args, run = case
    public, private = _subnets(run, "public"), _subnets(run, "private")
    assert len(public) == len(private) == args.az_count
    zones = [s["availabilityZone"] for s in private]
    assert zones == [f"us-west-2{x}" for x in "abc"[: args.az_count]]
    discovery = f"kubernetes.io/cluster/{args.cluster_name}"
    for s in public:
        assert s["tags"]["kubernetes.io/role/elb"] == "1"
        assert s["tags"][discovery] == "shared"
        assert s["mapPublicIpOnLaunch"] is False
    for s in private:
        assert s["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert s["tags"]["karpenter.sh/discovery"] == args.cluster_name
        assert s["tags"][discovery] == "shared"
        assert s["mapPublicIpOnLaunch"] is False
    vpc = ipaddress.IPv4Network(run.by_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"])
    nets = [ipaddress.IPv4Network(s["cidrBlock"]) for s in public + private]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_nat_strategy(case) -> None:
    args, run = case
    nats = run.by_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == (3 if args.nat_strategy == "per_az" else 1)
    assert len(run.by_type("aws:ec2/eip:Eip")) == len(nats)
    nat_ids = set()
    for rt in run.by_type("aws:ec2/routeTable:RouteTable"):
        if "-private-" in rt.name:
            (route,) = rt.inputs["routes"]
            assert route["cidrBlock"] == "0.0.0.0/0"
            nat_ids.add(route["natGatewayId"])
    assert len(nat_ids) == len(nats)


def test_flow_logs_with_retention_and_least_privilege_role(case) -> None:
    args, run = case
    (group,) = run.by_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == args.flow_log_retention_days
    # Encrypted with a customer key that CloudWatch Logs may use for this group only.
    (key,) = run.by_type("aws:kms/key:Key")
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    logs = statements["CloudWatchLogsForTheseGroups"]
    assert logs["Principal"] == {"Service": "logs.us-west-2.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": (
                f"arn:aws:logs:us-west-2:123456789012:log-group:{group.inputs['name']}"
            )
        }
    }
    (flow,) = run.by_type("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow.inputs["logDestination"].endswith(f":log-group:{group.inputs['name']}")
    (role,) = run.by_type("aws:iam/role:Role")
    assert flow.inputs["iamRoleArn"].startswith(f"arn:aws:iam::123456789012:role/{role.name}-")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert trust["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws:ec2:us-west-2:123456789012:vpc-flow-log/*"
    }
    (policy,) = run.by_type("aws:iam/rolePolicy:RolePolicy")
    (stmt,) = json.loads(policy.inputs["policy"])["Statement"]
    assert "*" not in json.dumps(stmt["Action"])
    assert "logs:DescribeLogGroups" in stmt["Action"]
    assert all(r.startswith(flow.inputs["logDestination"]) for r in stmt["Resource"])
    assert not run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_default_security_group_has_no_rules_and_s3_endpoint_on_private_tables(case) -> None:
    _, run = case
    (sg,) = run.by_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert sg.inputs["ingress"] == [] and sg.inputs["egress"] == []
    (endpoint,) = [e for e in run.by_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.name == "net-s3"]
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-west-2.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    private_rt_ids = {
        "rtb-" + hex_digest(f"{r.type}::{r.name}", 17)
        for r in run.by_type("aws:ec2/routeTable:RouteTable")
        if "-private-" in r.name
    }
    assert set(endpoint.inputs["routeTableIds"]) == private_rt_ids


def test_every_child_is_parented_to_the_component_and_nothing_is_made_in_apply(case) -> None:
    _, run = case
    (component,) = run.by_type("mlplatform:index:Network")
    assert component.parent is None
    assert all(r.parent == component.urn for r in run.resources if r is not component)
    assert all(r.name.startswith("net-") for r in run.resources if r is not component)


def test_subnet_cidrs_are_stable_per_zone_key() -> None:
    # Zone b keeps its ranges whether or not zone a exists.
    assert subnet_cidrs("10.0.0.0/16", "b") == ("10.0.228.0/22", "10.0.32.0/19")
    assert subnet_cidrs("10.0.0.0/16", "a") == ("10.0.224.0/22", "10.0.0.0/19")
    run = run_program(
        lambda: Network(
            "net",
            NetworkArgs(
                cluster_name="c", az_count=2, availability_zones=("us-west-2b", "us-west-2c")
            ),
        ),
        project="mlplatform",
        stack="t",
        config={},
    )
    cidrs = {r.name: r.inputs["cidrBlock"] for r in run.by_type("aws:ec2/subnet:Subnet")}
    assert cidrs["net-private-b"] == "10.0.32.0/19"
    assert cidrs["net-public-c"] == subnet_cidrs("10.0.0.0/16", "c")[0]


def test_public_ip_on_public_subnets_only_when_asked() -> None:
    args = NetworkArgs(cluster_name="c", az_count=2, map_public_ip_on_launch=True)
    run = _plan(args)
    assert all(s["mapPublicIpOnLaunch"] is True for s in _subnets(run, "public"))
    assert all(s["mapPublicIpOnLaunch"] is False for s in _subnets(run, "private"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cluster_name", ""),
        ("cidr_block", "10.0.0.0/8"),
        ("cidr_block", "8.8.0.0/16"),
        ("cidr_block", "not-a-cidr"),
        ("az_count", 1),
        ("az_count", 7),
        ("nat_strategy", "none"),
        ("flow_log_retention_days", 10),
        ("availability_zones", ("us-west-2a",)),
    ],
)
def test_invalid_args_are_rejected_naming_the_field(field: str, value: object) -> None:
    base = {"cluster_name": "c", "az_count": 2}
    args = NetworkArgs(**{**base, field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=field):
        Network("net", args)


def test_all_problems_are_reported_at_once() -> None:
    args = NetworkArgs(cluster_name="c", az_count=9, nat_strategy="x", flow_log_retention_days=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as err:
        Network("net", args)
    for name in ("az_count", "nat_strategy", "flow_log_retention_days"):
        assert name in str(err.value)


def test_region_with_too_few_zones_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="az_count: 5 but us-west-2 has only 4 zones"):
        _plan(NetworkArgs(cluster_name="c", az_count=5))


def test_interface_endpoints_keep_image_pulls_and_tokens_off_the_nat(case) -> None:
    args, run = case
    interface = [
        e.inputs
        for e in run.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Interface"
    ]
    if not args.interface_endpoints:
        assert interface == []
        return
    services = sorted(e["serviceName"].removeprefix("com.amazonaws.us-west-2.") for e in interface)
    assert services == sorted(INTERFACE_ENDPOINTS) == ["ec2", "ecr.api", "ecr.dkr", "logs", "sts"]
    private_ids = {
        "subnet-" + hex_digest(f"{s.type}::{s.name}", 17)
        for s in run.by_type("aws:ec2/subnet:Subnet")
        if "-private-" in s.name
    }
    (group,) = [g for g in run.by_type("aws:ec2/securityGroup:SecurityGroup")]
    (rule,) = group.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == (443, 443, [args.cidr_block])
    for endpoint in interface:
        assert endpoint["privateDnsEnabled"] is True
        assert set(endpoint["subnetIds"]) == private_ids
        assert endpoint["securityGroupIds"] == [group.id]


def test_zones_the_eks_control_plane_cannot_use_are_skipped_by_zone_id() -> None:
    # In us-east-1 the mock's third zone has the ID use1-az3, which EKS refuses.
    run = run_program(
        lambda: Network("net", NetworkArgs(cluster_name="c", az_count=3)),
        project="mlplatform",
        stack="t",
        config={"aws:region": "us-east-1"},
    )
    zones = sorted(s.inputs["availabilityZone"] for s in run.by_type("aws:ec2/subnet:Subnet"))
    assert sorted(set(zones)) == ["us-east-1a", "us-east-1b", "us-east-1d"]


def test_the_former_type_token_is_an_alias() -> None:
    # Stacks created before the token rule keep their resources.
    run = _plan(DEV)
    (component,) = run.by_type("mlplatform:index:Network")
    assert alias_types(component) == {"mlplatform:network:Network"}
