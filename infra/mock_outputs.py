"""What the mock engine answers: realistic computed outputs per resource type and data source.

``PlatformMocks`` is the ``pulumi.runtime.Mocks`` the offline plan and the tests install
(through ``infra.mocks.run_program``). Every value is derived from a resource's type and
name, so a plan is reproducible run to run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

ACCOUNT_ID = "123456789012"
"""The AWS account every mocked ARN lives in."""

DEFAULT_REGION = "us-west-2"
"""The region used when the program's config does not set ``aws:region``."""

# us-west-2 really has four zones; other regions get a plausible count.
_ZONE_COUNTS = {"us-east-1": 6, "us-west-2": 4}

_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"


def plain_value(value: Any) -> tuple[Any, bool]:
    """Turn one wire value into plain JSON-like data; return (value, contained a secret).

    Secrets and output values are unwrapped, resource references become their URN,
    unknowns (previews) become None and integral numbers become ints.
    """
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            inner, _ = plain_value(value.get("value"))
            return inner, True
        if sig == _OUTPUT_SIG:
            inner, _ = plain_value(value.get("value"))
            return inner, bool(value.get("secret"))
        if sig == _RESOURCE_SIG:
            return value.get("urn"), False
        out: dict[str, Any] = {}
        secret = False
        for key, item in value.items():
            out[key], item_secret = plain_value(item)
            secret = secret or item_secret
        return out, secret
    if isinstance(value, list):
        items = [plain_value(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    if value == rpc.UNKNOWN:
        return None, False
    if isinstance(value, float) and value.is_integer():
        return int(value), False
    return value, False


def hex_digest(seed: str, length: int) -> str:
    """Return ``length`` lowercase hex characters derived from ``seed`` (deterministic)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _arn(service: str, resource: str, *, region: str = "", account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def computed_outputs(
    typ: str, name: str, inputs: Mapping[str, Any], *, region: str, account: str
) -> dict[str, Any]:
    """Return the properties a real provider would compute for one resource, with ``id``.

    Values are derived from ``typ`` and ``name`` only, so they are stable run to run.
    """
    h = hex_digest(f"{typ}::{name}", 32)
    out: dict[str, Any] = {}
    if typ.startswith("aws:"):
        # Provider auto-naming: a physical name with a random-looking suffix.
        out["name"] = inputs.get("name") or f"{name}-{h[:7]}"
        out["tagsAll"] = inputs.get("tags") or {}
        service = typ.split(":")[1].split("/")[0]
        out["arn"] = _arn(service, f"{name}/{h[:17]}", region=region, account=account)
        out["id"] = f"{name}-{h[:8]}"
    elif typ.startswith("kubernetes:") and not typ.startswith("pulumi:providers"):
        metadata = dict(inputs.get("metadata") or {})
        metadata.setdefault("name", f"{name}-{h[:8]}")
        metadata.setdefault("uid", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}")
        out["metadata"] = metadata
        out["id"] = metadata["name"]
        if typ == "kubernetes:helm.sh/v3:Release":
            out["status"] = {"status": "deployed", "revision": 1, "name": inputs.get("name")}
    elif typ.startswith("random:"):
        out["id"] = h[:16]
        out["result"] = base64.b64encode(bytes.fromhex(h)).decode()[: inputs.get("length", 24)]
        out["hex"] = h[: 2 * int(inputs.get("byteLength", 8))]
        out["b64Std"] = base64.b64encode(bytes.fromhex(out["hex"])).decode()
        out["b64Url"] = base64.urlsafe_b64encode(bytes.fromhex(out["hex"])).decode().rstrip("=")
    else:
        out["id"] = f"{name}-{h[:8]}"
    out.update(_typed_outputs(typ, name, h, inputs, region, account))
    return out


def _typed_outputs(
    typ: str, name: str, h: str, inputs: Mapping[str, Any], region: str, account: str
) -> dict[str, Any]:
    """The type-specific computed outputs (ids, ARNs, endpoints) of the AWS resources."""
    ec2_prefixes = {
        "aws:ec2/vpc:Vpc": "vpc",
        "aws:ec2/subnet:Subnet": "subnet",
        "aws:ec2/internetGateway:InternetGateway": "igw",
        "aws:ec2/natGateway:NatGateway": "nat",
        "aws:ec2/eip:Eip": "eipalloc",
        "aws:ec2/routeTable:RouteTable": "rtb",
        "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
        "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
        "aws:ec2/flowLog:FlowLog": "fl",
        "aws:ec2/securityGroup:SecurityGroup": "sg",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
        "aws:ec2/launchTemplate:LaunchTemplate": "lt",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    }
    out: dict[str, Any] = {}
    if typ in ec2_prefixes:
        ident = f"{ec2_prefixes[typ]}-{h[:17]}"
        kind = typ.split(":")[-1]
        kind = kind[0].lower() + kind[1:]
        out.update(id=ident, arn=_arn("ec2", f"{kind}/{ident}", region=region, account=account))
        out["ownerId"] = account
    if typ == "aws:ec2/vpc:Vpc":
        out["defaultSecurityGroupId"] = f"sg-{h[1:18]}"
        out["defaultRouteTableId"] = f"rtb-{h[1:18]}"
        out["mainRouteTableId"] = f"rtb-{h[1:18]}"
        out["defaultNetworkAclId"] = f"acl-{h[1:18]}"
    elif typ in ("aws:ec2/eip:Eip", "aws:ec2/natGateway:NatGateway"):
        out["publicIp"] = f"203.0.113.{int(h[:2], 16) % 254 + 1}"
        out["allocationId"] = inputs.get("allocationId") or f"eipalloc-{h[:17]}"
        out["privateIp"] = f"10.255.{int(h[2:4], 16)}.{int(h[4:6], 16) % 254 + 1}"
        out["networkInterfaceId"] = f"eni-{h[:17]}"
    elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
        out["prefixListId"] = f"pl-{h[:8]}"
        out["state"] = "available"
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out.update(latestVersion=1, defaultVersion=1)
    elif typ == "aws:kms/key:Key":
        key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        arn = _arn("kms", f"key/{key_id}", region=region, account=account)
        out.update(id=key_id, keyId=key_id, arn=arn)
    elif typ == "aws:kms/alias:Alias":
        alias = inputs.get("name") or f"alias/{name}"
        out.update(id=alias, arn=_arn("kms", alias, region=region, account=account))
        out["targetKeyArn"] = _arn("kms", f"key/{h[:8]}", region=region, account=account)
    elif typ in ("aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/user:User"):
        role_name = inputs.get("name") or f"{name}-{h[:7]}"
        kind = typ.split(":")[-1].lower()
        out.update(id=role_name, name=role_name, arn=_arn("iam", f"{kind}/{role_name}"))
        out["arn"] = f"arn:aws:iam::{account}:{kind}/{role_name}"
        out["uniqueId"] = "AROA" + h[:17].upper()
        out["policyId"] = "ANPA" + h[:17].upper()
    elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        host = str(inputs.get("url", "")).removeprefix("https://")
        out["arn"] = f"arn:aws:iam::{account}:oidc-provider/{host}"
        out["id"] = out["arn"]
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        group = inputs.get("name") or f"{name}-{h[:7]}"
        out.update(id=group, name=group)
        out["arn"] = _arn("logs", f"log-group:{group}", region=region, account=account)
    elif typ == "aws:eks/cluster:Cluster":
        cluster = inputs.get("name") or f"{name}-{h[:7]}"
        upper = h.upper()
        out.update(id=cluster, name=cluster, status="ACTIVE", platformVersion="eks.1")
        out["arn"] = _arn("eks", f"cluster/{cluster}", region=region, account=account)
        out["endpoint"] = f"https://{upper}.gr7.{region}.eks.amazonaws.com"
        out["certificateAuthority"] = {"data": pem_certificate(cluster)}
        issuer = f"https://oidc.eks.{region}.amazonaws.com/id/{upper}"
        out["identities"] = [{"oidcs": [{"issuer": issuer}]}]
        vpc = dict(inputs.get("vpcConfig") or {})
        vpc.update(clusterSecurityGroupId=f"sg-{h[2:19]}", vpcId=f"vpc-{h[3:20]}")
        out["vpcConfig"] = vpc
        out["createdAt"] = "2025-01-01T00:00:00Z"
    elif typ == "aws:eks/nodeGroup:NodeGroup":
        group = inputs.get("nodeGroupName") or f"{name}-{h[:7]}"
        cluster = inputs.get("clusterName")
        out.update(id=f"{cluster}:{group}", nodeGroupName=group, status="ACTIVE")
        out["arn"] = _arn(
            "eks", f"nodegroup/{cluster}/{group}/{h[:8]}", region=region, account=account
        )
        out["resources"] = [{"autoscalingGroups": [{"name": f"eks-{group}-{h[:8]}"}]}]
    elif typ in ("aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry"):
        cluster = inputs.get("clusterName")
        key = inputs.get("addonName") or inputs.get("principalArn")
        out["id"] = f"{cluster}:{key}"
        kind = "addon" if typ.endswith("Addon") else "access-entry"
        out["arn"] = _arn("eks", f"{kind}/{cluster}/{h[:12]}", region=region, account=account)
    elif typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        bucket = inputs.get("bucket") or f"{name}-{h[:7]}"
        out.update(id=bucket, bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
        out["bucketDomainName"] = f"{bucket}.s3.amazonaws.com"
        out["bucketRegionalDomainName"] = f"{bucket}.s3.{region}.amazonaws.com"
    elif typ == "aws:sqs/queue:Queue":
        queue = inputs.get("name") or f"{name}-{h[:7]}"
        out.update(id=f"https://sqs.{region}.amazonaws.com/{account}/{queue}", name=queue)
        out["url"] = out["id"]
        out["arn"] = _arn("sqs", queue, region=region, account=account)
    elif typ == "aws:rds/instance:Instance":
        host = f"{name}.{h[:12]}.{region}.rds.amazonaws.com"
        out.update(address=host, endpoint=f"{host}:5432", port=inputs.get("port") or 5432)
        out["arn"] = _arn("rds", f"db:{name}", region=region, account=account)
    return out


def _statement(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Render one ``getPolicyDocument`` statement as IAM JSON."""
    out: dict[str, Any] = {}
    if raw.get("sid"):
        out["Sid"] = raw["sid"]
    out["Effect"] = raw.get("effect") or "Allow"
    for src, dst in (
        ("actions", "Action"),
        ("notActions", "NotAction"),
        ("resources", "Resource"),
        ("notResources", "NotResource"),
    ):
        values = raw.get(src)
        if values:
            out[dst] = values[0] if len(values) == 1 else sorted(values)
    for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
        principals = raw.get(src)
        if principals:
            block: dict[str, Any] = {}
            for p in principals:
                ids = p.get("identifiers") or []
                block[p["type"]] = ids[0] if len(ids) == 1 else sorted(ids)
            out[dst] = "*" if block == {"*": "*"} else block
    conditions = raw.get("conditions")
    if conditions:
        cond: dict[str, dict[str, Any]] = {}
        for c in conditions:
            values = c.get("values") or []
            cond.setdefault(c["test"], {})[c["variable"]] = (
                values[0] if len(values) == 1 else values
            )
        out["Condition"] = cond
    return out


def render_policy_document(args: Mapping[str, Any]) -> dict[str, Any]:
    """Render ``aws.iam.get_policy_document`` arguments as the IAM JSON document."""
    plain, _ = plain_value(dict(args))
    document: dict[str, Any] = {"Version": plain.get("version") or "2012-10-17"}
    if plain.get("policyId"):
        document["Id"] = plain["policyId"]
    document["Statement"] = [_statement(s) for s in plain.get("statements") or []]
    return document


class PlatformMocks(pulumi.runtime.Mocks):
    """Mocks returning deterministic, realistic outputs for the AWS and Kubernetes types.

    Every output is derived from the resource's type and name (a hash), so a plan is
    reproducible. Inputs are echoed back as outputs, plus the computed properties the real
    provider would fill in. ``call`` answers the data sources the components use and
    raises ``NotImplementedError`` naming any other token.
    """

    def __init__(self, region: str = DEFAULT_REGION, account_id: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        """Return (physical id, outputs) for one resource registration."""
        computed = computed_outputs(
            args.typ, args.name, args.inputs, region=self.region, account=self.account_id
        )
        resource_id = computed.pop("id", None)
        if args.resource_id:
            resource_id = args.resource_id
        outputs = {**computed, **args.inputs}
        return resource_id, outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        """Answer one data-source call; raise ``NotImplementedError`` for unknown tokens."""
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            count = _ZONE_COUNTS.get(self.region, 3)
            letters = "abcdefgh"[:count]
            parts = self.region.split("-")
            prefix = parts[0] + "".join(part[0] for part in parts[1:-1])
            number = self.region.split("-")[-1]
            return {
                "id": self.region,
                "names": [f"{self.region}{letter}" for letter in letters],
                "zoneIds": [f"{prefix}{number}-az{i + 1}" for i in range(count)],
                "groupNames": [self.region] * count,
                "state": args.args.get("state", "available"),
            }, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "id": self.account_id,
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/platform-deployer",
                "userId": "AIDA" + hex_digest("caller", 16).upper(),
            }, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "id": "aws",
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        if token == "aws:index/getRegion:getRegion":
            return {
                "id": self.region,
                "name": self.region,
                "region": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
            }, []
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            rendered = render_policy_document(args.args)
            return {
                "id": hex_digest(json.dumps(rendered, sort_keys=True), 10),
                "json": json.dumps(rendered, indent=2),
                "minifiedJson": json.dumps(rendered, separators=(",", ":")),
            }, []
        raise NotImplementedError(
            f"the mock engine has no answer for data source {token!r}; "
            "add it to infra/mock_outputs.py PlatformMocks.call"
        )


def pem_certificate(seed: str) -> str:
    """Return base64 of a PEM-looking certificate derived from ``seed`` (as EKS returns)."""
    body = base64.b64encode(hashlib.sha256(seed.encode()).digest() * 8).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()
