"""The IAM documents of the backup bucket's writers: Velero's role, as
velero-plugin-for-aws documents it (README, "Set permissions for Velero", at the plugin's
pinned v1.14.2), and the Vault snapshot job's, which may only add objects under its prefix.
"""

from __future__ import annotations

from typing import Any

PREFIX = "velero"
"""Velero's prefix in the backup bucket (the BackupStorageLocation's)."""
VAULT_SNAPSHOT_PREFIX = "vault-snapshots"
"""Where ``VaultSnapshots`` writes in the backup bucket (``vault-snapshots/<time>.snap``)."""


def volume_key_statements(volume_key_arn: str) -> list[dict[str, Any]]:
    """What velero-plugin-for-aws documents for snapshotting volumes encrypted with a
    customer key: EBS's grants on it (only for AWS resources) and its use."""
    return [
        {
            "Sid": "VolumeKeyGrants",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": volume_key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {
            "Sid": "VolumeKey",
            "Effect": "Allow",
            "Action": [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
            ],
            "Resource": volume_key_arn,
        },
    ]


def velero_policy(
    bucket_arn: str, key_arn: str, volume_key_arn: str | None = None
) -> dict[str, Any]:
    """The IAM policy velero-plugin-for-aws documents, on the backup bucket's prefix, plus
    the bucket key's use (SSE-KMS), plus :func:`volume_key_statements` when the volumes
    are on ``volume_key_arn``."""
    volume_key = volume_key_statements(volume_key_arn) if volume_key_arn else []
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Snapshots",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeVolumes",
                    "ec2:DescribeSnapshots",
                    "ec2:CreateTags",
                    "ec2:CreateVolume",
                    "ec2:CreateSnapshot",
                    "ec2:DeleteSnapshot",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Objects",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:DeleteObject",
                    "s3:PutObject",
                    "s3:PutObjectTagging",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": f"{bucket_arn}/{PREFIX}/*",
            },
            {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
            {
                "Sid": "BucketKey",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"],
                "Resource": key_arn,
            },
            *volume_key,
        ],
    }


def snapshot_writer_policy(bucket_arn: str, key_arn: str) -> dict[str, Any]:
    """The Vault snapshot job's IAM policy: ``s3:PutObject`` under ``vault-snapshots/``
    and the bucket key's ``kms:GenerateDataKey`` (what a single-request SSE-KMS upload
    needs). It can neither read, list, overwrite-by-delete nor remove a snapshot, so a
    leaked role cannot destroy the backups it writes."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PutSnapshots",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{VAULT_SNAPSHOT_PREFIX}/*",
            },
            {
                "Sid": "BucketKey",
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": key_arn,
            },
        ],
    }
