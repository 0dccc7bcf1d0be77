"""Private S3 and KMS plumbing: a bucket that holds production data, and its key.

One function for every bucket the platform owns (MLflow's artifacts, Velero's backups),
so each gets the same controls: versioning, SSE-KMS with a bucket key, every public
access flag, a policy denying plain HTTP and uploads not encrypted with the bucket's
key, a lifecycle for non-current versions, and optional server access logging.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components._aws import AccountContext, key_administration


def customer_key(
    name: str,
    *,
    description: str,
    context: AccountContext,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    statements: Sequence[Mapping[str, Any]] = (),
) -> aws.kms.Key:
    """A rotating customer KMS key that its account administers, plus ``statements``
    (IAM principals of the account are allowed through their own policies)."""
    policy = {"Version": "2012-10-17", "Statement": [key_administration(context), *statements]}
    return aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=json.dumps(policy),
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class BucketSpec:
    """How one data bucket is kept."""

    purpose: str
    """What the bucket holds, for its tags (``mlflow-artifacts``)."""
    noncurrent_days: int
    """Days a non-current (overwritten or deleted) object version is kept."""
    access_log_bucket: str | None = None
    """Name of an existing bucket receiving server access logs; None: no access logs."""
    expirations: Mapping[str, int] = field(default_factory=dict)
    """Key prefix (``vault-snapshots/``) -> days after which its objects expire (become
    non-current, then go after ``noncurrent_days``). Default none."""
    tags: Mapping[str, str] = field(default_factory=dict)


def tls_and_kms_policy(bucket_arn: str, key_arn: str) -> str:
    """The bucket policy: deny any request over plain HTTP, and any upload encrypted
    otherwise than with ``key_arn`` (an upload naming no encryption gets the default)."""
    objects = f"{bucket_arn}/*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, objects],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "DenyOtherEncryption",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": objects,
                    "Condition": {
                        "StringNotEqualsIfExists": {
                            "s3:x-amz-server-side-encryption": "aws:kms",
                        }
                    },
                },
                {
                    "Sid": "DenyOtherKeys",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": objects,
                    "Condition": {
                        "StringNotEqualsIfExists": {
                            "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn
                        }
                    },
                },
            ],
        }
    )


def data_bucket(
    name: str, spec: BucketSpec, *, key: aws.kms.Key, parent: pulumi.Resource
) -> aws.s3.Bucket:
    """Create bucket ``name`` (auto-named) with the controls in the module docstring.

    Its settings are separate resources that wait for the bucket; the policy waits for
    the public access block (S3 refuses a policy change racing it)."""
    child = pulumi.ResourceOptions(parent=parent)
    tags = {**dict(spec.tags), "mlplatform.io/purpose": spec.purpose}
    bucket = aws.s3.Bucket(name, tags=tags, force_destroy=False, opts=child)
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key.arn,
                },
                # One data key per bucket, not per object: 99 % fewer KMS requests.
                "bucket_key_enabled": True,
            }
        ],
        opts=child,
    )
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.id,
        policy=pulumi.Output.all(bucket.arn, key.arn).apply(
            lambda arns: tls_and_kms_policy(arns[0], arns[1])
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[block]),
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=[
            {
                "id": "noncurrent-versions",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": spec.noncurrent_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            },
            *(
                {
                    "id": f"expire-{prefix.strip('/').replace('/', '-')}",
                    "status": "Enabled",
                    "filter": {"prefix": prefix},
                    "expiration": {"days": days},
                }
                for prefix, days in sorted(spec.expirations.items())
            ),
        ],
        opts=child,
    )
    if spec.access_log_bucket:
        aws.s3.BucketLogging(
            f"{name}-access-logs",
            bucket=bucket.id,
            target_bucket=spec.access_log_bucket,
            target_prefix=f"{spec.purpose}/",
            opts=child,
        )
    return bucket


def bucket_access_policy(
    bucket_arn: str, key_arn: str, *, object_actions: Sequence[str], prefix: str = ""
) -> str:
    """An IAM policy for one bucket: ``object_actions`` on its objects (under ``prefix``),
    listing the bucket, and the key use SSE-KMS needs (GenerateDataKey, Decrypt)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Objects",
                    "Effect": "Allow",
                    "Action": list(object_actions),
                    "Resource": f"{bucket_arn}/{prefix}*",
                },
                {
                    "Sid": "List",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "Key",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"],
                    "Resource": key_arn,
                },
            ],
        }
    )
