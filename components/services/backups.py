"""Velero: scheduled backups of the stateful namespaces to an encrypted S3 bucket, with
EBS snapshots of their volumes.

- ``velero`` (Pod Security ``baseline``: the chart's CRD-upgrade Job sets no seccomp
  profile): the pinned ``vmware-tanzu/velero`` chart with ``velero-plugin-for-aws`` as an
  init container, no static credentials (``credentials.useSecret: false``), its service
  account bound to an IRSA role with the EC2 snapshot and S3 permissions the plugin
  documents, scoped to the backup bucket's ``velero/`` prefix and the bucket's key.
- The backup bucket (``components._s3.data_bucket``): versioned, SSE-KMS, public access
  blocked, TLS only; non-current versions are kept as long as a backup lives, and Vault's
  raft snapshots (``vault-snapshots/``, written by ``VaultSnapshots``) expire after
  ``vault_snapshot_retention_days``.
- EBS snapshots: the platform's volumes (the ``gp3-encrypted`` StorageClass, no
  ``kmsKeyId``) are encrypted with the account's EBS default key, whose AWS-managed
  policy lets EBS act for any principal of the account: Velero needs no key permission.
  A StorageClass on a customer key passes it as ``volume_kms_key_arn``, and the role
  gets the key use the plugin documents for such volumes, on that key alone.
- The BackupStorageLocation and VolumeSnapshotLocation (both AWS) and one Schedule per
  stateful namespace, rendered by the chart from its values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components._aws import account_context
from components._k8s import (
    ChartPin,
    helm_release,
    namespace,
    restricted_container_security_context,
    system_placement,
)
from components._s3 import BucketSpec, customer_key, data_bucket
from components._tokens import depends_on_of, type_token
from components._validate import CRON, Problem, raise_for
from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from components.services.backups_iam import PREFIX, VAULT_SNAPSHOT_PREFIX, velero_policy

VELERO_CHART = ChartPin("https://vmware-tanzu.github.io/helm-charts", "velero", "12.1.0")
VELERO_IMAGE = ("docker.io/velero/velero", "v1.18.1")
# Plugin v1.14.x supports Velero v1.14 to v1.18 (the plugin's compatibility table).
AWS_PLUGIN_IMAGE = "docker.io/velero/velero-plugin-for-aws:v1.14.2"
NAMESPACE = "velero"
SERVICE_ACCOUNT = "velero-server"
RELEASE = "velero"
STATEFUL_NAMESPACES = ("vault", "monitoring", "mlflow", "ml-serving")
# Velero's images run as the distroless "nonroot" user.
VELERO_UID = 65532
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class BackupsArgs:
    """Inputs of :class:`Backups`."""

    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider (IRSA). Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    namespaces: Sequence[str] = STATEFUL_NAMESPACES
    """Namespaces with one Schedule each. Default vault, monitoring, mlflow, ml-serving."""
    schedule: str = "0 3 * * *"
    """Cron schedule (UTC) of every namespace's backup. Default daily at 03:00."""
    ttl_hours: int = 720
    """Hours a backup is kept, 24 to 8760. Default 720 (30 days)."""
    vault_snapshot_retention_days: int = 30
    """Days a Vault raft snapshot stays current in the bucket (1 to 3650), then it is kept
    as a non-current version as long as a backup. Default 30."""
    volume_kms_key_arn: pulumi.Input[str] | None = None
    """The customer KMS key of the snapshotted EBS volumes, if their StorageClass names
    one. Default None: the account's EBS default key, which needs no grant."""
    system_pool: str = "system"
    """Pool label of the nodes Velero runs on. Default ``system``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every AWS resource. Default none."""
    chart: ChartPin = VELERO_CHART


def validate_backups_args(args: BackupsArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if not CRON.match(args.schedule.strip()):
        problems.append(
            Problem(
                "schedule", "must be a five-field cron expression like '0 3 * * *'", args.schedule
            )
        )
    if not 24 <= args.ttl_hours <= 8760:
        problems.append(Problem("ttl_hours", "must be from 24 to 8760", args.ttl_hours))
    retention = args.vault_snapshot_retention_days
    if not (isinstance(retention, int) and 1 <= retention <= 3650):
        problems.append(
            Problem("vault_snapshot_retention_days", "must be whole days from 1 to 3650", retention)
        )
    if not args.namespaces:
        problems.append(Problem("namespaces", "must name at least one namespace"))
    for ns in args.namespaces:
        if not _DNS_LABEL.match(ns):
            problems.append(Problem("namespaces", "is not a namespace name (a DNS label)", ns))
    if len(set(args.namespaces)) != len(args.namespaces):
        problems.append(Problem("namespaces", "must not repeat a namespace", list(args.namespaces)))
    return problems


def schedule_name(namespace: str) -> str:
    """The Schedule object the chart renders for ``namespace`` (``<release>-<key>``), which
    labels its backups ``velero.io/schedule-name``."""
    return f"{RELEASE}-{namespace}"


def velero_values(
    args: BackupsArgs, *, bucket: pulumi.Input[str], region: str, role_arn: pulumi.Input[str]
) -> dict[str, Any]:
    """The chart's values: IRSA instead of a credentials Secret, the AWS plugin, one BSL and
    one VSL, and a Schedule per namespace with an explicit TTL (Velero's own default is
    30 days whatever the chart's comment says)."""
    ttl = f"{args.ttl_hours}h0m0s"
    container_context = restricted_container_security_context()
    return {
        "image": {
            "repository": VELERO_IMAGE[0],
            "tag": VELERO_IMAGE[1],
            "pullPolicy": "IfNotPresent",
        },
        "initContainers": [
            {
                "name": "velero-plugin-for-aws",
                "image": AWS_PLUGIN_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
                "securityContext": container_context,
            }
        ],
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": VELERO_UID,
            "fsGroup": VELERO_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": container_context,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "credentials": {"useSecret": False},
        "serviceAccount": {
            "server": {
                "create": True,
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "configuration": {
            "backupStorageLocation": [
                {
                    "name": "default",
                    "provider": "aws",
                    "bucket": bucket,
                    "prefix": PREFIX,
                    "default": True,
                    "config": {"region": region},
                }
            ],
            "volumeSnapshotLocation": [
                {"name": "default", "provider": "aws", "config": {"region": region}}
            ],
            "defaultBackupTTL": ttl,
        },
        "deployNodeAgent": False,
        "schedules": {
            ns: {
                "schedule": args.schedule,
                "template": {
                    "ttl": ttl,
                    "includedNamespaces": [ns],
                    "storageLocation": "default",
                    "snapshotVolumes": True,
                },
            }
            for ns in args.namespaces
        },
        **system_placement(args.system_pool),
    }


class Backups(pulumi.ComponentResource):
    """Velero and its backup bucket (see the module docstring).

    ``opts.providers`` must carry the AWS provider and the cluster's Kubernetes provider;
    the release waits for what ``opts.depends_on`` names. ``bucket_name`` is the backup
    bucket (``infra.backup_check`` reads it), ``bucket_arn`` and ``key_arn`` what a writer
    of ``vault-snapshots/`` is granted. Raises
    :class:`~components._validate.ValidationError` naming every bad field.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    release: pulumi.Resource

    def __init__(
        self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("BackupsArgs", validate_backups_args(args))
        super().__init__(type_token("Backups"), name, None, opts)
        after = depends_on_of(opts)
        tags = dict(args.tags)
        context = account_context(self)
        key = customer_key(
            f"{name}-key",
            description="Encrypts the Velero backups",
            context=context,
            tags=tags,
            parent=self,
        )
        bucket: aws.s3.Bucket = data_bucket(
            f"{name}-bucket",
            BucketSpec(
                purpose="velero-backups",
                noncurrent_days=-(-args.ttl_hours // 24),
                expirations={f"{VAULT_SNAPSHOT_PREFIX}/": args.vault_snapshot_retention_days},
                tags=tags,
            ),
            key=key,
            parent=self,
        )
        role = ServiceAccountRole(
            f"{name}-irsa",
            ServiceAccountRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                inline_policies={
                    "velero": pulumi.Output.json_dumps(
                        pulumi.Output.all(bucket.arn, key.arn, args.volume_kms_key_arn).apply(
                            lambda arns: velero_policy(arns[0], arns[1], arns[2])
                        )
                    )
                },
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        ns = namespace(NAMESPACE, parent=self, pod_security="baseline")
        self.release = helm_release(
            f"{name}-velero",
            pin=args.chart,
            namespace=ns.metadata.name,
            release_name=RELEASE,
            values=velero_values(
                args, bucket=bucket.bucket, region=context.region, role_arn=role.role_arn
            ),
            parent=self,
            depends_on=after,
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "key_arn": self.key_arn,
            }
        )
