"""The AWS Load Balancer Controller: it turns the gateway's ``LoadBalancer`` Service into
an NLB with IP targets.

The controller runs in its own namespace (``aws-load-balancer-controller``, Pod Security
``restricted``) rather than ``kube-system``, which the platform leaves to EKS. Its IAM
role (IRSA) carries the policy the controller's project publishes
(``load_balancer_iam.py``). Region and VPC id are passed explicitly: pods cannot reach the
instance metadata service at the nodes' hop limit of 1, so the controller could not
discover them. Two replicas with a PDB on the system pool; the webhook that would take
over every ``LoadBalancer`` Service is off, so only Services that name the controller's
class (``service.k8s.aws/nlb``) get a load balancer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components._aws import account_context
from components._k8s import ChartPin, helm_release, namespace, system_placement
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.foundation.irsa import ROLE_ARN_ANNOTATION, inline_policy_role
from components.services.load_balancer_iam import controller_policy

CHART = ChartPin("https://aws.github.io/eks-charts", "aws-load-balancer-controller", "3.5.0")
NAMESPACE = "aws-load-balancer-controller"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
LOAD_BALANCER_CLASS = "service.k8s.aws/nlb"


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    """Inputs of :class:`LoadBalancerController`."""

    cluster_name: pulumi.Input[str]
    """The EKS cluster's name (tags on what the controller creates). Required."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC. Required."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, for the controller's role. Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    replicas: int = 2
    """Controller replicas (one leads; a PDB from 2). Default 2."""
    system_pool: str = "system"
    """Pool label of the nodes the controller runs on. Default ``system``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the IAM role. Default none."""
    chart: ChartPin = CHART


def validate_load_balancer_controller_args(args: LoadBalancerControllerArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    if not 1 <= args.replicas <= 3:
        return [Problem("replicas", "must be from 1 to 3", args.replicas)]
    return []


class LoadBalancerController(pulumi.ComponentResource):
    """The AWS Load Balancer Controller with its own IAM role.

    ``opts.providers`` must carry the cluster's AWS and Kubernetes providers; the release
    waits for what ``opts.depends_on`` names. ``release`` is what a ``LoadBalancer``
    Service must depend on, so that it is deleted (and its NLB with it) while the
    controller still runs. Raises :class:`~components._validate.ValidationError`.
    """

    release: k8s.helm.v3.Release
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: LoadBalancerControllerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        raise_for("LoadBalancerControllerArgs", validate_load_balancer_controller_args(args))
        super().__init__(type_token("LoadBalancerController"), name, None, opts)
        context = account_context(self)
        ns = namespace(NAMESPACE, parent=self)
        role = inline_policy_role(
            f"{name}-controller",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            service_account=(NAMESPACE, SERVICE_ACCOUNT),
            policy=("load-balancer-controller", json.dumps(controller_policy(context.partition))),
            tags=args.tags,
            parent=self,
        )
        self.release = helm_release(
            name,
            pin=args.chart,
            namespace=ns.metadata.name,
            release_name="aws-load-balancer-controller",
            values={
                "clusterName": args.cluster_name,
                "region": context.region,
                "vpcId": args.vpc_id,
                "replicaCount": args.replicas,
                "podDisruptionBudget": {"maxUnavailable": 1} if args.replicas > 1 else {},
                "serviceAccount": {
                    "create": True,
                    "name": SERVICE_ACCOUNT,
                    "annotations": {ROLE_ARN_ANNOTATION: role.role_arn},
                },
                "enableServiceMutatorWebhook": False,
                "podSecurityContext": {
                    "fsGroup": 65534,
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "securityContext": {
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                **system_placement(args.system_pool),
            },
            parent=self,
            depends_on=depends_on_of(opts),
        )
        self.role_arn = role.role_arn
        self.register_outputs({"role_arn": self.role_arn})
