"""Vault's auto-unseal: a customer KMS key only Vault's role may use, and that role.

The role and the key refer to each other (the key policy names the role; the role's
policy names the key), so they are created in three steps: the IRSA role for
``vault:vault`` with no permissions, the key whose policy lets that role encrypt,
decrypt and describe, then the role's inline policy on that one key. The release waits
for the last step, so no Vault pod starts with a role that cannot reach its seal.

The key is retained when the stack drops it: deleting it would make the raft data
unreadable, so its deletion is an operator's decision (docs/runbooks/vault-init.md).

The account keeps administering the key (rotation, policy, deletion) but not using it:
the account statement grants no cryptographic action, so no IAM policy elsewhere in the
account can let another principal decrypt with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components._aws import AccountContext
from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from components.services.vault_access import NAMESPACE, SERVICE_ACCOUNT

SEAL_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt")
"""What Vault's awskms seal calls (wrap, unwrap, and the key check at start)."""
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)
"""The account's administration of the key: every action but Encrypt, Decrypt,
ReEncrypt, GenerateDataKey*, Sign/Verify and the MAC calls."""


def seal_key_policy(context: AccountContext, role_arn: str) -> dict[str, Any]:
    """The key policy: the account administers, ``role_arn`` alone uses the key."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": context.root},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "VaultSeal",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": list(SEAL_ACTIONS),
                "Resource": "*",
            },
        ],
    }


def seal_role_policy(key_arn: str) -> dict[str, Any]:
    """The role's inline policy: the seal's three actions on the one key."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "VaultSeal",
                "Effect": "Allow",
                "Action": list(SEAL_ACTIONS),
                "Resource": key_arn,
            }
        ],
    }


@dataclass(frozen=True)
class Seal:
    """What the release needs from the seal."""

    key: aws.kms.Key
    role_arn: pulumi.Output[str]
    """The role for ``vault:vault``, handed out once its key policy is attached."""
    grant: aws.iam.RolePolicy
    """The role's policy on the key: the release waits for it."""


def create_seal(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    context: AccountContext,
    deletion_window_days: int,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> Seal:
    """Create the role ``<name>-seal``, the key ``<name>-seal`` and the role's policy."""
    child = pulumi.ResourceOptions(parent=parent)
    role = ServiceAccountRole(
        f"{name}-seal",
        ServiceAccountRoleArgs(
            oidc_provider_arn=oidc_provider_arn,
            oidc_issuer=oidc_issuer,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            tags=dict(tags),
        ),
        opts=child,
    )
    key = aws.kms.Key(
        f"{name}-seal",
        description="Vault auto-unseal (awskms seal); only Vault's role may use it",
        enable_key_rotation=True,
        deletion_window_in_days=deletion_window_days,
        policy=role.role_arn.apply(lambda arn: json.dumps(seal_key_policy(context, arn))),
        tags=dict(tags),
        # Raft data is readable only while this key exists: removing Vault from the
        # stack (or replacing the key) must never schedule its deletion.
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True),
    )
    grant = aws.iam.RolePolicy(
        f"{name}-seal",
        name="vault-seal",
        role=role.role_name,
        policy=key.arn.apply(lambda arn: json.dumps(seal_role_policy(arn))),
        opts=child,
    )
    return Seal(key=key, role_arn=role.role_arn, grant=grant)
