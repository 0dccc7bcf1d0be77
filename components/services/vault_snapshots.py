"""Vault's raft snapshots, on a schedule, into the backup bucket.

A CronJob in Vault's own namespace, each run one pod of two steps:

1. ``snapshot`` (the Vault image the chart runs): logs in at ``auth/kubernetes`` as role
   ``vault-snapshot`` with a projected service account token minted for the ``vault``
   audience (valid 10 minutes, mounted in this container only), saves
   ``vault operator raft snapshot save`` from the active node over TLS checked against
   the internal CA, and checks the file with ``snapshot inspect``. The Vault token lives
   in the shell only, never in the pod spec, the environment or a file.
2. ``upload`` (the AWS CLI image): puts the file at ``vault-snapshots/<UTC time>.snap``
   in the backup bucket, SSE-KMS with the bucket's key, through its IRSA role, which may
   do that and nothing else (``backups_iam.snapshot_writer_policy``).

Why Vault's namespace and not one of its own: Vault's server NetworkPolicy already admits
its own namespace on the API port, and the internal CA is there (``vault-tls``; the pod
mounts its ``ca.crt`` only). A namespace of its own would have to become a Vault client
namespace, and every client namespace's pods pass the agent injector's webhook, which
fails closed: the job would stop whenever the injector is down. Velero's ``vault``
schedule also carries the job along with the data it protects. The job's NetworkPolicy
selects its pods alone: Vault's API on the server pods, and HTTPS for STS and S3 (VPC
endpoints, whose addresses no policy can name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components._aws import account_context
from components._k8s import restricted_container_security_context, system_placement
from components._tokens import type_token
from components._validate import CRON, Problem, raise_for
from components.foundation.irsa import ROLE_ARN_ANNOTATION, inline_policy_role
from components.services.backups_iam import VAULT_SNAPSHOT_PREFIX, snapshot_writer_policy
from components.services.vault_access import NAMESPACE, PORT, RELEASE, SNAPSHOT
from components.services.vault_server import SERVER_LABELS, TLS_SECRET, VAULT_IMAGE

AWS_CLI_IMAGE = ("public.ecr.aws/aws-cli/aws-cli", "2.32.2")
"""AWS's own image of the CLI, pinned (ECR Public: no Docker Hub pull limits)."""
SERVICE_ACCOUNT = SNAPSHOT.service_account
TOKEN_AUDIENCE = SNAPSHOT.audience
JOB = "vault-snapshot"
LABELS = {"app.kubernetes.io/name": JOB, "app.kubernetes.io/part-of": "vault"}
ACTIVE_ADDRESS = f"https://{RELEASE}-active.{NAMESPACE}.svc:{PORT}"
"""The active node's Service: a snapshot is taken there, not forwarded by a standby."""
CA_DIR = "/vault/ca"
TOKEN_DIR = "/var/run/secrets/vault"
SNAPSHOT_DIR = "/snapshots"
SNAPSHOT_FILE = f"{SNAPSHOT_DIR}/vault.snap"
# The Vault image's "vault" user and group (the chart runs the server as the same).
VAULT_UID, VAULT_GID = 100, 1000
TOKEN_TTL_S = 600

SNAPSHOT_SCRIPT = f"""set -eu
VAULT_TOKEN="$(vault write -field=token auth/kubernetes/login role={SNAPSHOT.name} \\
  jwt=@{TOKEN_DIR}/token)"
export VAULT_TOKEN
vault operator raft snapshot save {SNAPSHOT_FILE}
vault operator raft snapshot inspect {SNAPSHOT_FILE} >/dev/null
echo "saved $(wc -c < {SNAPSHOT_FILE}) bytes"
"""
UPLOAD_SCRIPT = f"""set -eu
key="{VAULT_SNAPSHOT_PREFIX}/$(date -u +%Y%m%dT%H%M%SZ).snap"
aws s3api put-object --bucket "$BUCKET" --key "$key" --body {SNAPSHOT_FILE} \\
  --server-side-encryption aws:kms --ssekms-key-id "$KMS_KEY_ARN" --bucket-key-enabled \\
  --no-cli-pager >/dev/null
echo "uploaded s3://$BUCKET/$key"
"""


@dataclass(frozen=True)
class VaultSnapshotsArgs:
    """Inputs of :class:`VaultSnapshots`."""

    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider (IRSA). Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    bucket: pulumi.Input[str]
    """The backup bucket's name (``Backups.bucket_name``). Required."""
    bucket_arn: pulumi.Input[str]
    """The backup bucket's ARN (``Backups.bucket_arn``). Required."""
    key_arn: pulumi.Input[str]
    """The backup bucket's KMS key (``Backups.key_arn``). Required."""
    schedule: str = "0 * * * *"
    """Cron schedule (UTC) of the snapshots. Default hourly."""
    size_limit_gib: int = 10
    """Scratch space for one snapshot, in GiB (the raft volume's size is enough), 1 to
    1000. Default 10."""
    system_pool: str = "system"
    """Pool label of the nodes the job runs on. Default ``system``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the IAM role. Default none."""


def validate_vault_snapshots_args(args: VaultSnapshotsArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if not CRON.match(args.schedule.strip()):
        problems.append(
            Problem(
                "schedule", "must be a five-field cron expression like '0 * * * *'", args.schedule
            )
        )
    if not (isinstance(args.size_limit_gib, int) and 1 <= args.size_limit_gib <= 1000):
        problems.append(
            Problem("size_limit_gib", "must be whole GiB from 1 to 1000", args.size_limit_gib)
        )
    return problems


def _pod_spec(args: VaultSnapshotsArgs, region: str) -> dict[str, Any]:
    """The job's pod: the snapshot as an init container, the upload after it."""
    secure = restricted_container_security_context()
    scratch = {"name": "tmp", "mountPath": "/tmp"}
    snapshots = {"name": "snapshots", "mountPath": SNAPSHOT_DIR}
    return {
        "serviceAccountName": SERVICE_ACCOUNT,
        # The IRSA webhook projects the AWS token; Vault's token comes from its own volume.
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": VAULT_UID,
            "runAsGroup": VAULT_GID,
            "fsGroup": VAULT_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [
            {
                "name": "snapshot",
                "image": f"{VAULT_IMAGE[0]}:{VAULT_IMAGE[1]}",
                "command": ["/bin/sh", "-c", SNAPSHOT_SCRIPT],
                "env": [
                    {"name": "VAULT_ADDR", "value": ACTIVE_ADDRESS},
                    {"name": "VAULT_CACERT", "value": f"{CA_DIR}/ca.crt"},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "volumeMounts": [
                    {"name": "vault-ca", "mountPath": CA_DIR, "readOnly": True},
                    {"name": "vault-token", "mountPath": TOKEN_DIR, "readOnly": True},
                    snapshots,
                    scratch,
                ],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "securityContext": secure,
            }
        ],
        "containers": [
            {
                "name": "upload",
                "image": f"{AWS_CLI_IMAGE[0]}:{AWS_CLI_IMAGE[1]}",
                "command": ["/bin/sh", "-c", UPLOAD_SCRIPT],
                "env": [
                    {"name": "BUCKET", "value": args.bucket},
                    {"name": "KMS_KEY_ARN", "value": args.key_arn},
                    {"name": "AWS_REGION", "value": region},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "volumeMounts": [{**snapshots, "readOnly": True}, scratch],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "securityContext": secure,
            }
        ],
        "volumes": [
            {
                "name": "vault-ca",
                "secret": {
                    "secretName": TLS_SECRET,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            },
            {
                "name": "vault-token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": TOKEN_AUDIENCE,
                                "expirationSeconds": TOKEN_TTL_S,
                                "path": "token",
                            }
                        }
                    ]
                },
            },
            {"name": "snapshots", "emptyDir": {"sizeLimit": f"{args.size_limit_gib}Gi"}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
        **system_placement(args.system_pool),
    }


def cronjob_spec(args: VaultSnapshotsArgs, region: str) -> dict[str, Any]:
    """The CronJob's spec, in the API's spelling: one run at a time, a failed run retried
    twice and given up after 30 minutes, the last runs kept for their logs."""
    return {
        "schedule": args.schedule,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        # A run missed by more than 10 minutes is skipped; the next one comes on time.
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": dict(LABELS)},
            "spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": 1800,
                "ttlSecondsAfterFinished": 86400,
                "template": {"metadata": {"labels": dict(LABELS)}, "spec": _pod_spec(args, region)},
            },
        },
    }


def network_policy_spec() -> dict[str, Any]:
    """The job's pods may reach Vault's API on the server pods, and HTTPS (STS and S3);
    nothing reaches them. DNS comes from the namespace's baseline."""
    return {
        "podSelector": {"matchLabels": dict(LABELS)},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [
            {
                "to": [{"podSelector": {"matchLabels": dict(SERVER_LABELS)}}],
                "ports": [{"port": PORT, "protocol": "TCP"}],
            },
            {"ports": [{"port": 443, "protocol": "TCP"}]},
        ],
    }


class VaultSnapshots(pulumi.ComponentResource):
    """The raft snapshot CronJob (see the module docstring).

    ``opts.providers`` must carry the AWS provider and the cluster's Kubernetes provider;
    ``opts.depends_on`` should name the Vault release (its namespace and CA Secret).
    Raises :class:`~components._validate.ValidationError` naming every bad field.
    """

    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: VaultSnapshotsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("VaultSnapshotsArgs", validate_vault_snapshots_args(args))
        super().__init__(type_token("VaultSnapshots"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = inline_policy_role(
            f"{name}-irsa",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            service_account=(NAMESPACE, SERVICE_ACCOUNT),
            policy=(
                "vault-snapshots",
                pulumi.Output.json_dumps(
                    pulumi.Output.all(args.bucket_arn, args.key_arn).apply(
                        lambda arns: snapshot_writer_policy(arns[0], arns[1])
                    )
                ),
            ),
            parent=self,
            tags=args.tags,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                "name": SERVICE_ACCOUNT,
                "namespace": NAMESPACE,
                "labels": dict(LABELS),
                "annotations": {ROLE_ARN_ANNOTATION: role.role_arn},
            },
            automount_service_account_token=False,
            opts=child,
        )
        policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-egress",
            metadata={"name": "allow-vault-snapshot", "namespace": NAMESPACE},
            spec=cast(Any, network_policy_spec()),
            opts=child,
        )
        k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata={"name": JOB, "namespace": NAMESPACE, "labels": dict(LABELS)},
            spec=cast(Any, cronjob_spec(args, account_context(self).region)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account, policy]),
        )
        self.role_arn = role.role_arn
        self.register_outputs({"role_arn": self.role_arn})
