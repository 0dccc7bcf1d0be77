"""The ML engineers' tenancy: the ``ml-serving`` namespace and what its people may do there.

- ``ml-serving``, an application namespace (``tenancy.application_namespace``: Pod Security
  ``restricted``, default-deny networking, the mesh's allow-nothing policy);
- a namespaced ``Role`` ``ml-engineer``: read pods, their logs, services, deployments and
  replica sets, scale deployments; no Secrets, no exec, no create or delete;
- a ``RoleBinding`` of that Role to the Kubernetes group ``ml-engineers``;
- an EKS access entry per configured IAM role, mapping it to that group (no access policy:
  the group's bindings are all it gets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._aws import ROLE_ARN
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.foundation.cluster import access_entry_key
from components.services.tenancy import AppNamespace, application_namespace

SERVING_NAMESPACE = "ml-serving"
ROLE = "ml-engineer"
GROUP = "ml-engineers"
RBAC_GROUP = "rbac.authorization.k8s.io"


def _rule(group: str, resources: list[str], verbs: list[str]) -> k8s.rbac.v1.PolicyRuleArgs:
    return k8s.rbac.v1.PolicyRuleArgs(api_groups=[group], resources=resources, verbs=verbs)


_READ = ["get", "list", "watch"]
ML_ENGINEER_RULES: tuple[k8s.rbac.v1.PolicyRuleArgs, ...] = (
    _rule("", ["pods", "pods/log", "services", "endpoints", "events"], _READ),
    _rule("apps", ["deployments", "replicasets"], _READ),
    _rule("apps", ["deployments/scale"], ["get", "update", "patch"]),
)
"""What an ML engineer may do in ``ml-serving``: no Secrets, no ``pods/exec``, no
create or delete."""


@dataclass(frozen=True)
class TenancyArgs:
    """Inputs of :class:`Tenancy`."""

    cluster_name: pulumi.Input[str]
    """The EKS cluster the access entries belong to. Required."""
    ml_engineer_role_arns: Sequence[str] = ()
    """IAM roles mapped to the ``ml-engineers`` group. Default none."""
    admin_role_arns: Sequence[str] = ()
    """The cluster's admin roles (an IAM role has one access entry: it cannot also be an
    ML engineer). Default none."""
    mesh: pulumi.Resource | None = None
    """What Istio custom resources wait for (``Mesh.control_plane``); None without the
    mesh. Default None."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the access entries. Default none."""


def validate_tenancy_args(args: TenancyArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    for arn in args.ml_engineer_role_arns:
        if not ROLE_ARN.match(arn):
            problems.append(
                Problem(
                    "ml_engineer_role_arns", "is not an IAM role ARN (arn:aws:iam::ID:role/N)", arn
                )
            )
        elif arn in args.admin_role_arns:
            problems.append(
                Problem(
                    "ml_engineer_role_arns",
                    "is already an admin role; an IAM role has one access entry, so list it once",
                    arn,
                )
            )
    if len(set(args.ml_engineer_role_arns)) != len(args.ml_engineer_role_arns):
        problems.append(Problem("ml_engineer_role_arns", "lists a role twice"))
    return problems


class Tenancy(pulumi.ComponentResource):
    """The ``ml-serving`` namespace, the ``ml-engineer`` Role and its group's access.

    ``opts.providers`` must carry the cluster's Kubernetes provider, and the access
    entries wait for what ``opts.depends_on`` names. Raises
    :class:`~components._validate.ValidationError` naming every bad field.
    """

    serving: AppNamespace

    def __init__(
        self,
        name: str,
        args: TenancyArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        raise_for("TenancyArgs", validate_tenancy_args(args))
        super().__init__(type_token("Tenancy"), name, None, opts)
        self.serving = application_namespace(SERVING_NAMESPACE, parent=self, mesh=args.mesh)
        child = pulumi.ResourceOptions(parent=self)
        role = k8s.rbac.v1.Role(
            f"{name}-{ROLE}",
            metadata={"name": ROLE, "namespace": self.serving.namespace.metadata.name},
            rules=list(ML_ENGINEER_RULES),
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-{ROLE}",
            metadata={"name": ROLE, "namespace": self.serving.namespace.metadata.name},
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="Role", name=ROLE),
            subjects=[k8s.rbac.v1.SubjectArgs(api_group=RBAC_GROUP, kind="Group", name=GROUP)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role]),
        )
        for arn in args.ml_engineer_role_arns:
            aws.eks.AccessEntry(
                f"{name}-ml-engineer-{access_entry_key(arn)}",
                cluster_name=args.cluster_name,
                principal_arn=arn,
                type="STANDARD",
                kubernetes_groups=[GROUP],
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on_of(opts)),
            )
        self.register_outputs({})
