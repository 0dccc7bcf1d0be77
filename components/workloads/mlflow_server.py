"""The MLflow tracking server and model registry: RDS PostgreSQL, an S3 artifact bucket,
and the server's pods in ``mlflow``.

- RDS PostgreSQL (pinned major version, gp3 encrypted with the component's customer KMS
  key, Multi-AZ unless turned off, backups kept ``backup_retention_days``, deletion
  protection and a final snapshot when asked, private subnets only, reachable only from
  the cluster's security group, TLS forced by its parameter group, Performance Insights
  encrypted, automatic minor upgrades, logs exported to CloudWatch).
- The master password is generated (``pulumi-random``) and stays a secret: in state, in
  the Kubernetes Secret the pods read their database URI from, never in a literal. RDS's
  own Secrets Manager password was not chosen: nothing in the cluster syncs Secrets
  Manager into pods yet, and its rotation would silently break the server's URI.
- The artifact bucket (``components._s3.data_bucket``) and an IRSA role limited to its
  ``artifacts/`` prefix and the key.
- The server (``mlflow_pods``): the basic-auth app in front of the registry, its config
  and admin in Secrets; a Service, a PodDisruptionBudget with two or more replicas, and a
  NetworkPolicy admitting the inference namespace, the user Job, the CI runners and the
  gateway.
- The inference service's read-only user (``mlflow_reader``): a generated password and a
  Job that creates the user in the running server (or sets its password).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components._aws import account_context
from components._s3 import BucketSpec, bucket_access_policy, customer_key, data_bucket
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from components.services.tenancy import application_namespace
from components.workloads import mlflow_command as cmd
from components.workloads import mlflow_pods as pods
from components.workloads.mlflow_reader import Reader, create_reader

NAMESPACE = "mlflow"
SERVICE_ACCOUNT = "mlflow"
POSTGRES_MAJOR = "17"
ARTIFACT_PREFIX = "artifacts"
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
MIN_BACKUP_RETENTION_DAYS = 7


@dataclass(frozen=True)
class MlflowServerArgs:
    """Inputs of :class:`MlflowServer`."""

    image: pulumi.Input[str]
    """The server image, ``repository@sha256:<64 hex>`` (built from
    ``mlflow_server/Dockerfile``; a plain string is checked, an Output is the digest a
    ``ContainerImage`` pushed). Required."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC. Required."""
    vpc_cidr: str
    """The VPC's range (the pods' egress to PostgreSQL). Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets for the database. Required."""
    cluster_security_group_id: pulumi.Input[str]
    """The cluster security group of the nodes, the only source the database admits.
    Required."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider (IRSA). Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    instance_class: str = "db.t4g.medium"
    """RDS instance class. Default ``db.t4g.medium``."""
    allocated_storage_gib: int = 20
    """Initial gp3 storage, 20 to 65536 GiB. Default 20."""
    max_allocated_storage_gib: int = 100
    """Storage autoscaling ceiling, at least ``allocated_storage_gib``. Default 100."""
    backup_retention_days: int = 14
    """Automated backups (point-in-time restore) kept, 7 to 35 days. Default 14."""
    multi_az: bool = True
    """A standby in a second zone. Default on."""
    deletion_protection: bool = True
    """Refuse deletion, and take a final snapshot if it is ever deleted. Default on."""
    replicas: int = 2
    """Server pods, 1 to 10; two or more get a PodDisruptionBudget. Default 2."""
    workers: int = 2
    """uvicorn workers per pod, 1 to 16. Default 2."""
    ci_runner_cidrs: Sequence[str] = ()
    """IPv4 ranges of the CI runners that register models. Default none."""
    gateway_namespace: str | None = None
    """The ingress gateway's namespace when the registry is exposed. Default none."""
    access_log_bucket: str | None = None
    """An existing bucket for the artifact bucket's access logs. Default none."""
    noncurrent_version_days: int = 90
    """Days a replaced or deleted artifact version is kept. Default 90."""
    system_pool: str = "system"
    """Pool label of the nodes the server runs on. Default ``system``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every AWS resource. Default none."""


def validate_mlflow_server_args(args: MlflowServerArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if isinstance(args.image, str) and not IMAGE.match(args.image):
        problems.append(
            Problem("image", "must be pinned as repository@sha256:<64 hex>", args.image)
        )
    if not INSTANCE_CLASS.match(args.instance_class):
        problems.append(
            Problem(
                "instance_class", "must be an RDS class like db.t4g.medium", args.instance_class
            )
        )
    storage = args.allocated_storage_gib
    if not 20 <= storage <= 65536:
        problems.append(Problem("allocated_storage_gib", "must be from 20 to 65536", storage))
    if args.max_allocated_storage_gib < storage:
        problems.append(
            Problem(
                "max_allocated_storage_gib",
                f"must be at least allocated_storage_gib ({storage})",
                args.max_allocated_storage_gib,
            )
        )
    days = args.backup_retention_days
    if not MIN_BACKUP_RETENTION_DAYS <= days <= 35:
        problems.append(Problem("backup_retention_days", "must be from 7 to 35", days))
    for label, value, high in (("replicas", args.replicas, 10), ("workers", args.workers, 16)):
        if not 1 <= value <= high:
            problems.append(Problem(label, f"must be from 1 to {high}", value))
    for cidr in args.ci_runner_cidrs:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            problems.append(
                Problem("ci_runner_cidrs", "is not an IPv4 range like 10.8.0.0/16", cidr)
            )
    if not 1 <= args.noncurrent_version_days <= 3650:
        problems.append(
            Problem(
                "noncurrent_version_days", "must be from 1 to 3650", args.noncurrent_version_days
            )
        )
    return problems


class MlflowServer(pulumi.ComponentResource):
    """The MLflow tracking server and registry (see the module docstring).

    ``opts.providers`` must carry the AWS provider and the cluster's Kubernetes provider.
    ``tracking_uri`` is the in-cluster URL, ``bucket_name`` the artifact bucket,
    ``database_endpoint`` the RDS ``host:port`` (none of them secret); ``reader`` the
    inference service's read-only user (its password secret) and the Job that made it,
    which whatever authenticates as it depends on. Raises
    :class:`~components._validate.ValidationError` naming every bad field.
    """

    tracking_uri: pulumi.Output[str]
    reader: Reader
    bucket_name: pulumi.Output[str]
    database_endpoint: pulumi.Output[str]

    def __init__(
        self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("MlflowServerArgs", validate_mlflow_server_args(args))
        super().__init__(type_token("MlflowServer"), name, None, opts)
        after = depends_on_of(opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        context = account_context(self)
        key = customer_key(
            f"{name}-key",
            description="Encrypts the MLflow registry database and its artifacts",
            context=context,
            tags=tags,
            parent=self,
        )
        bucket = data_bucket(
            f"{name}-artifacts",
            BucketSpec(
                purpose="mlflow-artifacts",
                noncurrent_days=args.noncurrent_version_days,
                access_log_bucket=args.access_log_bucket,
                tags=tags,
            ),
            key=key,
            parent=self,
        )
        database, password = self._database(name, args, key, tags)
        role = ServiceAccountRole(
            f"{name}-irsa",
            ServiceAccountRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                inline_policies={
                    "artifacts": pulumi.Output.all(bucket.arn, key.arn).apply(
                        lambda arns: bucket_access_policy(
                            arns[0],
                            arns[1],
                            object_actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                            prefix=f"{ARTIFACT_PREFIX}/",
                        )
                    )
                },
                tags=tags,
            ),
            opts=child,
        )
        # Outside the mesh (its pods hold their own TLS to RDS and S3); the default-deny
        # baseline plus the server's own policy below decide who reaches it.
        ns = application_namespace(NAMESPACE, parent=self, mesh=None).namespace
        uri = pulumi.Output.all(database.address, database.port, password.result).apply(
            lambda v: cmd.database_uri(
                user=cmd.REGISTRY_DATABASE,
                password=str(v[2]),
                host=str(v[0]),
                port=int(v[1]),
                database=cmd.REGISTRY_DATABASE,
                sslmode="require",
            )
        )
        admin = random.RandomPassword(f"{name}-admin", length=32, special=False, opts=child)
        csrf = random.RandomPassword(f"{name}-csrf", length=48, special=False, opts=child)
        secrets = [
            k8s.core.v1.Secret(
                f"{name}-server",
                metadata={"name": pods.SECRET, "namespace": ns.metadata.name},
                string_data={
                    "backend-store-uri": pulumi.Output.secret(uri),
                    "admin-username": cmd.ADMIN_USERNAME,
                    "admin-password": admin.result,
                    "csrf-key": csrf.result,
                },
                opts=child,
            ),
            k8s.core.v1.Secret(
                f"{name}-auth-config",
                metadata={"name": pods.AUTH_SECRET, "namespace": ns.metadata.name},
                string_data={
                    cmd.AUTH_CONFIG_FILE: pulumi.Output.secret(uri.apply(cmd.auth_config))
                },
                opts=child,
            ),
        ]
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                "name": SERVICE_ACCOUNT,
                "namespace": ns.metadata.name,
                "annotations": {"eks.amazonaws.com/role-arn": role.role_arn},
            },
            opts=child,
        )
        labels = {"app.kubernetes.io/name": pods.APP}
        tracking_uri = f"http://{pods.APP}.{NAMESPACE}.svc.cluster.local:{cmd.PORT}"
        server = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata={"name": pods.APP, "namespace": ns.metadata.name, "labels": labels},
            spec=cast(
                Any,
                pods.deployment_spec(
                    image=args.image,
                    artifacts_destination=pulumi.Output.concat(
                        "s3://", bucket.bucket, f"/{ARTIFACT_PREFIX}"
                    ),
                    workers=args.workers,
                    replicas=args.replicas,
                    namespace=NAMESPACE,
                    service_account=SERVICE_ACCOUNT,
                    system_pool=args.system_pool,
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*secrets, account, database, *after]
            ),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": pods.APP, "namespace": ns.metadata.name, "labels": labels},
            spec=cast(
                Any,
                {
                    "selector": labels,
                    "ports": [{"name": "http", "port": cmd.PORT, "targetPort": "http"}],
                },
            ),
            opts=child,
        )
        if args.replicas >= 2:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata={"name": pods.APP, "namespace": ns.metadata.name},
                spec=cast(Any, {"minAvailable": 1, "selector": {"matchLabels": labels}}),
                opts=child,
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata={"name": pods.APP, "namespace": ns.metadata.name},
            spec=cast(
                Any,
                pods.network_policy_spec(
                    ci_runner_cidrs=args.ci_runner_cidrs,
                    gateway_namespace=args.gateway_namespace,
                    vpc_cidr=args.vpc_cidr,
                ),
            ),
            opts=child,
        )
        reader = create_reader(
            name,
            parent=self,
            namespace=ns.metadata.name,
            image=args.image,
            tracking_uri=tracking_uri,
            server_secret=pods.SECRET,
            server_app=pods.APP,
            system_pool=args.system_pool,
            after=[server, *secrets],
        )
        self.reader = reader
        self.tracking_uri = pulumi.Output.from_input(tracking_uri)
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        """The artifact bucket's ARN (readers' roles are scoped to it)."""
        self.key_arn = key.arn
        """The customer KMS key of the bucket and the database."""
        self.database_endpoint = database.endpoint
        self.register_outputs(
            {
                "tracking_uri": self.tracking_uri,
                "bucket_name": self.bucket_name,
                "database_endpoint": self.database_endpoint,
            }
        )

    def _database(
        self, name: str, args: MlflowServerArgs, key: aws.kms.Key, tags: dict[str, str]
    ) -> tuple[aws.rds.Instance, random.RandomPassword]:
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(f"{name}-db", length=40, special=False, opts=child)
        subnets = aws.rds.SubnetGroup(
            f"{name}-db", subnet_ids=args.subnet_ids, tags=tags, opts=child
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-db",
            vpc_id=args.vpc_id,
            description="MLflow registry database: PostgreSQL from the cluster's nodes only",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-from-nodes",
            security_group_id=group.id,
            referenced_security_group_id=args.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=pods.POSTGRES_PORT,
            to_port=pods.POSTGRES_PORT,
            description="PostgreSQL from the cluster security group",
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-db",
            family=f"postgres{POSTGRES_MAJOR}",
            description="MLflow registry: TLS only",
            parameters=[{"name": "rds.force_ssl", "value": "1"}],
            tags=tags,
            opts=child,
        )
        database = aws.rds.Instance(
            f"{name}-db",
            engine="postgres",
            engine_version=POSTGRES_MAJOR,
            auto_minor_version_upgrade=True,
            instance_class=args.instance_class,
            storage_type="gp3",
            allocated_storage=args.allocated_storage_gib,
            max_allocated_storage=args.max_allocated_storage_gib,
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_name=cmd.REGISTRY_DATABASE,
            username=cmd.REGISTRY_DATABASE,
            password=pulumi.Output.secret(password.result),
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=args.multi_az,
            backup_retention_period=args.backup_retention_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=f"{name}-final" if args.deletion_protection else None,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            performance_insights_retention_period=7,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            tags=tags,
            opts=child,
        )
        return database, password
