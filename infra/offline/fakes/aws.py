"""What AWS would compute for the resources the program creates: ids, ARNs, endpoints.

Every value is derived from the resource's type and name (``FakeResource.digest``), so
a plan is reproducible. Types without a function of their own get ``aws_resource``:
provider auto-naming, ``tagsAll`` and an ARN in the type's service.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from infra.offline.fakes.registry import FakeResource, Registry, ResourceFake

RESOURCES: Registry[ResourceFake] = Registry("infra/offline/fakes/aws.py")

EC2_ID_PREFIXES = {
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
"""The id prefix EC2 gives each type (``vpc-0a1b...``)."""


def arn(service: str, resource: str, *, region: str = "", account: str) -> str:
    """Return ``arn:aws:<service>:<region>:<account>:<resource>``."""
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def pem_certificate(seed: str) -> str:
    """Return base64 of a PEM-looking certificate derived from ``seed`` (as EKS returns)."""
    body = base64.b64encode(hashlib.sha256(seed.encode()).digest() * 8).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


def _uuid(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@RESOURCES.fallback("aws:")
def aws_resource(r: FakeResource) -> dict[str, Any]:
    """Any AWS type: auto-name with a random-looking suffix, ``tagsAll``, ARN and id."""
    h = r.digest
    service = r.type.split(":")[1].split("/")[0]
    return {
        "name": r.inputs.get("name") or f"{r.name}-{h[:7]}",
        "tagsAll": r.inputs.get("tags") or {},
        "arn": arn(service, f"{r.name}/{h[:17]}", region=r.region, account=r.account),
        "id": f"{r.name}-{h[:8]}",
    }


def ec2_resource(r: FakeResource) -> dict[str, Any]:
    """An EC2 type of ``EC2_ID_PREFIXES``: a prefixed id, its ARN and the owner account."""
    out = aws_resource(r)
    ident = f"{EC2_ID_PREFIXES[r.type]}-{r.digest[:17]}"
    kind = r.type.split(":")[-1]
    kind = kind[0].lower() + kind[1:]
    out.update(id=ident, arn=arn("ec2", f"{kind}/{ident}", region=r.region, account=r.account))
    out["ownerId"] = r.account
    return out


@RESOURCES.register("aws:ec2/vpc:Vpc")
def vpc(r: FakeResource) -> dict[str, Any]:
    """A VPC with its default security group, route tables and network ACL."""
    out = ec2_resource(r)
    h = r.digest
    out["defaultSecurityGroupId"] = f"sg-{h[1:18]}"
    out["defaultRouteTableId"] = f"rtb-{h[1:18]}"
    out["mainRouteTableId"] = f"rtb-{h[1:18]}"
    out["defaultNetworkAclId"] = f"acl-{h[1:18]}"
    return out


@RESOURCES.register("aws:ec2/eip:Eip", "aws:ec2/natGateway:NatGateway")
def public_address(r: FakeResource) -> dict[str, Any]:
    """An Elastic IP or NAT gateway: a documentation-range public IP and its ENI."""
    out = ec2_resource(r)
    h = r.digest
    out["publicIp"] = f"203.0.113.{int(h[:2], 16) % 254 + 1}"
    out["allocationId"] = r.inputs.get("allocationId") or f"eipalloc-{h[:17]}"
    out["privateIp"] = f"10.255.{int(h[2:4], 16)}.{int(h[4:6], 16) % 254 + 1}"
    out["networkInterfaceId"] = f"eni-{h[:17]}"
    return out


@RESOURCES.register("aws:ec2/vpcEndpoint:VpcEndpoint")
def vpc_endpoint(r: FakeResource) -> dict[str, Any]:
    """A VPC endpoint, available, with its prefix list."""
    out = ec2_resource(r)
    out["prefixListId"] = f"pl-{r.digest[:8]}"
    out["state"] = "available"
    return out


@RESOURCES.register("aws:ec2/launchTemplate:LaunchTemplate")
def launch_template(r: FakeResource) -> dict[str, Any]:
    """A launch template at its first version."""
    out = ec2_resource(r)
    out.update(latestVersion=1, defaultVersion=1)
    return out


@RESOURCES.register("aws:kms/key:Key")
def kms_key(r: FakeResource) -> dict[str, Any]:
    """A KMS key: a UUID key id and its ARN."""
    out = aws_resource(r)
    key_id = _uuid(r.digest)
    key_arn = arn("kms", f"key/{key_id}", region=r.region, account=r.account)
    out.update(id=key_id, keyId=key_id, arn=key_arn)
    return out


@RESOURCES.register("aws:kms/alias:Alias")
def kms_alias(r: FakeResource) -> dict[str, Any]:
    """A KMS alias (``alias/<name>``) and the key it targets."""
    out = aws_resource(r)
    alias = r.inputs.get("name") or f"alias/{r.name}"
    out.update(id=alias, arn=arn("kms", alias, region=r.region, account=r.account))
    out["targetKeyArn"] = arn("kms", f"key/{r.digest[:8]}", region=r.region, account=r.account)
    return out


@RESOURCES.register("aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/user:User")
def iam_principal(r: FakeResource) -> dict[str, Any]:
    """An IAM role, policy or user: global ARN (no region), unique and policy ids."""
    out = aws_resource(r)
    h = r.digest
    principal = r.inputs.get("name") or f"{r.name}-{h[:7]}"
    kind = r.type.split(":")[-1].lower()
    out.update(id=principal, name=principal, arn=f"arn:aws:iam::{r.account}:{kind}/{principal}")
    out["uniqueId"] = "AROA" + h[:17].upper()
    out["policyId"] = "ANPA" + h[:17].upper()
    return out


@RESOURCES.register("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def oidc_provider(r: FakeResource) -> dict[str, Any]:
    """An IAM OIDC provider, whose id is its ARN (the issuer host)."""
    out = aws_resource(r)
    host = str(r.inputs.get("url", "")).removeprefix("https://")
    out["arn"] = f"arn:aws:iam::{r.account}:oidc-provider/{host}"
    out["id"] = out["arn"]
    return out


@RESOURCES.register("aws:cloudwatch/logGroup:LogGroup")
def log_group(r: FakeResource) -> dict[str, Any]:
    """A CloudWatch log group, whose id is its name."""
    out = aws_resource(r)
    group = r.inputs.get("name") or f"{r.name}-{r.digest[:7]}"
    out.update(id=group, name=group)
    out["arn"] = arn("logs", f"log-group:{group}", region=r.region, account=r.account)
    return out


@RESOURCES.register("aws:eks/cluster:Cluster")
def eks_cluster(r: FakeResource) -> dict[str, Any]:
    """An active EKS cluster: endpoint, CA data, OIDC issuer and its security group."""
    out = aws_resource(r)
    h = r.digest
    cluster = r.inputs.get("name") or f"{r.name}-{h[:7]}"
    upper = h.upper()
    out.update(id=cluster, name=cluster, status="ACTIVE", platformVersion="eks.1")
    out["arn"] = arn("eks", f"cluster/{cluster}", region=r.region, account=r.account)
    out["endpoint"] = f"https://{upper}.gr7.{r.region}.eks.amazonaws.com"
    out["certificateAuthority"] = {"data": pem_certificate(cluster)}
    issuer = f"https://oidc.eks.{r.region}.amazonaws.com/id/{upper}"
    out["identities"] = [{"oidcs": [{"issuer": issuer}]}]
    vpc_config = dict(r.inputs.get("vpcConfig") or {})
    vpc_config.update(clusterSecurityGroupId=f"sg-{h[2:19]}", vpcId=f"vpc-{h[3:20]}")
    out["vpcConfig"] = vpc_config
    out["createdAt"] = "2025-01-01T00:00:00Z"
    return out


@RESOURCES.register("aws:eks/nodeGroup:NodeGroup")
def eks_node_group(r: FakeResource) -> dict[str, Any]:
    """An active managed node group (id ``cluster:group``) and its autoscaling group."""
    out = aws_resource(r)
    h = r.digest
    group = r.inputs.get("nodeGroupName") or f"{r.name}-{h[:7]}"
    cluster = r.inputs.get("clusterName")
    out.update(id=f"{cluster}:{group}", nodeGroupName=group, status="ACTIVE")
    out["arn"] = arn(
        "eks", f"nodegroup/{cluster}/{group}/{h[:8]}", region=r.region, account=r.account
    )
    out["resources"] = [{"autoscalingGroups": [{"name": f"eks-{group}-{h[:8]}"}]}]
    return out


@RESOURCES.register("aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry")
def eks_cluster_child(r: FakeResource) -> dict[str, Any]:
    """An EKS add-on or access entry, whose id is ``cluster:<add-on or principal>``."""
    out = aws_resource(r)
    cluster = r.inputs.get("clusterName")
    key = r.inputs.get("addonName") or r.inputs.get("principalArn")
    out["id"] = f"{cluster}:{key}"
    kind = "addon" if r.type.endswith("Addon") else "access-entry"
    out["arn"] = arn("eks", f"{kind}/{cluster}/{r.digest[:12]}", region=r.region, account=r.account)
    return out


@RESOURCES.register("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def s3_bucket(r: FakeResource) -> dict[str, Any]:
    """An S3 bucket, whose id is its name, with its global and regional domain names."""
    out = aws_resource(r)
    bucket = r.inputs.get("bucket") or f"{r.name}-{r.digest[:7]}"
    out.update(id=bucket, bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
    out["bucketDomainName"] = f"{bucket}.s3.amazonaws.com"
    out["bucketRegionalDomainName"] = f"{bucket}.s3.{r.region}.amazonaws.com"
    return out


@RESOURCES.register("aws:sqs/queue:Queue")
def sqs_queue(r: FakeResource) -> dict[str, Any]:
    """An SQS queue, whose id is its URL."""
    out = aws_resource(r)
    queue = r.inputs.get("name") or f"{r.name}-{r.digest[:7]}"
    out.update(id=f"https://sqs.{r.region}.amazonaws.com/{r.account}/{queue}", name=queue)
    out["url"] = out["id"]
    out["arn"] = arn("sqs", queue, region=r.region, account=r.account)
    return out


@RESOURCES.register("aws:rds/instance:Instance")
def rds_instance(r: FakeResource) -> dict[str, Any]:
    """An RDS instance: its DNS address, endpoint and port."""
    out = aws_resource(r)
    host = f"{r.name}.{r.digest[:12]}.{r.region}.rds.amazonaws.com"
    out.update(address=host, endpoint=f"{host}:5432", port=r.inputs.get("port") or 5432)
    out["arn"] = arn("rds", f"db:{r.name}", region=r.region, account=r.account)
    return out


# Every EC2 type of the table that has no function of its own gets the EC2 id shape.
RESOURCES.register(*(t for t in EC2_ID_PREFIXES if t not in RESOURCES.tokens))(ec2_resource)


@RESOURCES.register("aws:ecr/repository:Repository")
def ecr_repository(r: FakeResource) -> dict[str, Any]:
    """An ECR repository: its registry (the account) and the URL images are pushed to."""
    out = aws_resource(r)
    name = r.inputs.get("name") or out["name"]
    out.update(
        name=name,
        id=name,
        registryId=r.account,
        arn=arn("ecr", f"repository/{name}", region=r.region, account=r.account),
        repositoryUrl=f"{r.account}.dkr.ecr.{r.region}.amazonaws.com/{name}",
    )
    return out
