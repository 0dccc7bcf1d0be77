"""The AWS Load Balancer Controller's IAM policy, as its project publishes it.

Transcribed from ``docs/install/iam_policy.json`` at tag ``v3.5.0`` of
kubernetes-sigs/aws-load-balancer-controller (the controller release the pinned chart
installs), with the partition made a parameter. Creating and changing load balancers,
target groups and security groups is limited to those tagged ``elbv2.k8s.aws/cluster``
(the tag the controller puts on what it creates); reads are account-wide because the
controller discovers subnets, zones and certificates. When the chart's pin moves, re-read
that file at the new tag.
"""

from __future__ import annotations

from typing import Any

CLUSTER_TAG = "elbv2.k8s.aws/cluster"

_DESCRIBE = [
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeTags",
    "ec2:GetCoipPoolUsage",
    "ec2:DescribeCoipPools",
    "ec2:GetSecurityGroupsForVpc",
    "ec2:DescribeIpamPools",
    "ec2:DescribeRouteTables",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeCapacityReservation",
]
_INTEGRATIONS = [
    "cognito-idp:DescribeUserPoolClient",
    "acm:ListCertificates",
    "acm:DescribeCertificate",
    "iam:ListServerCertificates",
    "iam:GetServerCertificate",
    "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource",
    "waf-regional:AssociateWebACL",
    "waf-regional:DisassociateWebACL",
    "wafv2:GetWebACL",
    "wafv2:GetWebACLForResource",
    "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL",
    "shield:GetSubscriptionState",
    "shield:DescribeProtection",
    "shield:CreateProtection",
    "shield:DeleteProtection",
]
_MODIFY_TAGGED = [
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyIpPools",
]
_LISTENERS = [
    "elasticloadbalancing:SetWebAcl",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:SetRulePriorities",
]


def _allow(actions: list[str], resource: Any = "*", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def controller_policy(partition: str) -> dict[str, Any]:
    """The controller's policy document in ``partition`` (``aws``, ``aws-cn``...)."""
    tagged = {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}
    requested = {f"aws:RequestTag/{CLUSTER_TAG}": "false"}
    retag = {f"aws:RequestTag/{CLUSTER_TAG}": "true", f"aws:ResourceTag/{CLUSTER_TAG}": "false"}
    groups = f"arn:{partition}:ec2:*:*:security-group/*"
    elb = f"arn:{partition}:elasticloadbalancing:*:*"
    balancers = [
        f"{elb}:targetgroup/*/*",
        f"{elb}:loadbalancer/net/*/*",
        f"{elb}:loadbalancer/app/*/*",
    ]
    listeners = [
        f"{elb}:listener/net/*/*/*",
        f"{elb}:listener/app/*/*/*",
        f"{elb}:listener-rule/net/*/*/*",
        f"{elb}:listener-rule/app/*/*/*",
    ]
    create_actions = ["CreateTargetGroup", "CreateLoadBalancer"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            _allow(
                ["iam:CreateServiceLinkedRole"],
                StringEquals={"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"},
            ),
            _allow(_DESCRIBE),
            _allow(_INTEGRATIONS),
            _allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]),
            _allow(["ec2:CreateSecurityGroup"]),
            _allow(
                ["ec2:CreateTags"],
                groups,
                StringEquals={"ec2:CreateAction": "CreateSecurityGroup"},
                Null=requested,
            ),
            _allow(["ec2:CreateTags", "ec2:DeleteTags"], groups, Null=retag),
            _allow(
                [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                ],
                Null=tagged,
            ),
            _allow(
                [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                Null=requested,
            ),
            _allow(
                [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:DeleteRule",
                ]
            ),
            _allow(
                ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                balancers,
                Null=retag,
            ),
            _allow(["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], listeners),
            _allow(_MODIFY_TAGGED, Null=tagged),
            _allow(
                ["elasticloadbalancing:AddTags"],
                balancers,
                StringEquals={"elasticloadbalancing:CreateAction": create_actions},
                Null=requested,
            ),
            _allow(
                ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                f"{elb}:targetgroup/*/*",
            ),
            _allow(_LISTENERS),
        ],
    }
