"""An inference service: the bundled ``python -m serving`` behind the ingress gateway.

Per release (one under ``rolling``, blue and green under the two-release strategies): a
Deployment, a PodDisruptionBudget (one pod at a time, so consolidation and spot
reclaims drain pods one by one) and a KEDA ``ScaledObject`` (queue depth per pod from
the service's own metrics, CPU as a floor). Shared by the releases: the ServiceAccount
and its IAM role (read the MLflow artifact bucket and its key, nothing else), the
Secret with the registry's read-only user (the pods' ``MLFLOW_TRACKING_USERNAME`` and
``PASSWORD``; the Deployments wait for the Job that makes the user), the
Service, the ServiceMonitor, the service's PrometheusRule, the NetworkPolicy and the
mesh policies admitting only the gateway and Prometheus, the routes
(``VirtualService``, ``DestinationRule``) and, at the gateway, the JWT rules and the
rate limit of its routes (``inference_routing``).

A model added or removed changes only this service's Deployments; a release's
Deployment changes only when its own image or models do.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components._tokens import depends_on_of, type_token
from components._validate import raise_for
from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from components.workloads import inference_routing as routing
from components.workloads.inference_args import (
    PORT,
    TWO_RELEASES,
    InferenceServiceArgs,
    release_image,
    release_models,
    validate_inference_service_args,
)
from components.workloads.inference_pods import (
    RELEASE_LABEL,
    deployment_name,
    deployment_spec,
    mlflow_secret_name,
    release_labels,
    service_labels,
)
from components.workloads.inference_rules import service_rule_groups
from components.workloads.inference_scaling import (
    MERGED_METRICS_PORT,
    network_policy_specs,
    scaled_object_spec,
)


def _artifact_policy(args: InferenceServiceArgs) -> pulumi.Output[str] | None:
    """Read-only access to the artifact bucket (and decrypt with its key), or none."""
    if args.artifact_bucket_arn is None:
        return None
    bucket = pulumi.Output.from_input(args.artifact_bucket_arn)
    key = pulumi.Output.from_input(args.artifact_kms_key_arn or "")

    def document(values: list[str]) -> str:
        arn, kms = values
        statements: list[dict[str, Any]] = [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": arn},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{arn}/*"},
        ]
        if kms:
            statements.append({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": kms})
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    return pulumi.Output.all(bucket, key).apply(document)


class InferenceService(pulumi.ComponentResource):
    """One inference service (``name``, a DNS label) in ``args.namespace``.

    ``opts.providers`` must carry the cluster's Kubernetes provider; ``opts.depends_on``
    names what its custom resources need (the Prometheus Operator, KEDA and Istio
    releases). The artifact bucket is optional: without ``artifact_bucket_arn`` the role
    has no S3 access. Raises :class:`~components._validate.ValidationError` naming every
    bad field.
    """

    deployments: dict[str, k8s.apps.v1.Deployment]
    """Deployments by release colour."""
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: InferenceServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("InferenceServiceArgs", validate_inference_service_args(name, args))
        super().__init__(type_token("InferenceService"), name, None, opts)
        after = depends_on_of(opts)
        child = pulumi.ResourceOptions(parent=self)
        custom = pulumi.ResourceOptions(parent=self, depends_on=after)
        ns = args.namespace
        gateway_ns = args.gateway.split("/", 1)[0]
        labels = service_labels(name)
        rollout = args.rollout
        two = rollout.strategy in TWO_RELEASES

        role = ServiceAccountRole(
            f"{name}-role",
            ServiceAccountRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=ns,
                service_account=name,
                inline_policies=(
                    {"artifact-read": policy}
                    if (policy := _artifact_policy(args)) is not None
                    else {}
                ),
                tags=dict(args.tags),
            ),
            opts=child,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                "name": name,
                "namespace": ns,
                "labels": labels,
                "annotations": {"eks.amazonaws.com/role-arn": role.role_arn},
            },
            opts=child,
        )
        # Specs use the API's camelCase keys (the SDK's TypedDicts spell them in snake_case).
        service_spec: Any = {
            "selector": labels,
            "ports": [
                {"name": "http", "port": PORT, "targetPort": "http", "appProtocol": "http"},
                {
                    "name": "http-monitoring",
                    "port": MERGED_METRICS_PORT,
                    "targetPort": MERGED_METRICS_PORT,
                },
            ],
        }
        k8s.core.v1.Service(
            f"{name}-svc",
            metadata={"name": name, "namespace": ns, "labels": labels},
            spec=service_spec,
            opts=child,
        )
        needs: list[pulumi.Resource] = [account]
        if (credentials := args.mlflow_credentials) is not None:
            # The pods start once the user exists in the registry, or they would get 401.
            needs += [credentials.ready] if credentials.ready is not None else []
            needs.append(
                k8s.core.v1.Secret(
                    f"{name}-mlflow",
                    metadata={"name": mlflow_secret_name(name), "namespace": ns, "labels": labels},
                    string_data={
                        "username": credentials.username,
                        "password": pulumi.Output.secret(credentials.password),
                    },
                    opts=child,
                )
            )
        self.deployments = {}
        for colour in rollout.colours():
            deploy = deployment_name(name, colour, two)
            self.deployments[colour] = k8s.apps.v1.Deployment(
                f"{name}-{colour}",
                metadata={"name": deploy, "namespace": ns, "labels": release_labels(name, colour)},
                spec=deployment_spec(
                    args,
                    service=name,
                    colour=colour,
                    image=release_image(args, colour),
                    service_account=name,
                ),
                # The autoscaler owns the replica count once the Deployment exists.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=needs, ignore_changes=["spec.replicas"]
                ),
            )
            budget: Any = {
                "maxUnavailable": 1,
                "selector": {"matchLabels": release_labels(name, colour)},
            }
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{colour}-pdb",
                metadata={"name": deploy, "namespace": ns},
                spec=budget,
                opts=child,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{colour}-scaler",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata={"name": deploy, "namespace": ns},
                spec=scaled_object_spec(args, service=name, colour=colour, deployment=deploy),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*after, self.deployments[colour]]
                ),
            )
        k8s.apiextensions.CustomResource(
            f"{name}-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata={"name": name, "namespace": ns, "labels": labels},
            spec={
                "selector": {"matchLabels": labels},
                "namespaceSelector": {"matchNames": [ns]},
                "podTargetLabels": [RELEASE_LABEL],
                "endpoints": [
                    {"port": "http-monitoring", "path": "/stats/prometheus", "interval": "15s"}
                ],
            },
            opts=custom,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": name, "namespace": ns, "labels": labels},
            spec={
                "groups": service_rule_groups(
                    name,
                    namespace=ns,
                    deployments=[deployment_name(name, c, two) for c in rollout.colours()],
                    max_replicas=args.max_replicas,
                    runbook_base_url=args.runbook_base_url,
                )
            },
            opts=custom,
        )
        for suffix, policy in network_policy_specs(name, args, gateway_ns).items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{suffix}",
                metadata={"name": f"{name}-{suffix}", "namespace": ns},
                spec=policy,
                opts=child,
            )
        for mesh in routing.mesh_objects(args, name, gateway_ns, _all_models(args)):
            k8s.apiextensions.CustomResource(
                f"{name}-{mesh.suffix}",
                api_version=mesh.api_version,
                kind=mesh.kind,
                metadata={"name": f"{name}-{mesh.suffix}", "namespace": mesh.namespace},
                spec=mesh.spec,
                opts=custom,
            )
        self.role_arn = role.role_arn
        self.register_outputs({"role_arn": self.role_arn})


def _all_models(args: InferenceServiceArgs) -> list[str]:
    """Every model name any running release serves (routes for each)."""
    names: list[str] = []
    for colour in args.rollout.colours():
        names += [m for m in release_models(args, colour) if m not in names]
    return names
