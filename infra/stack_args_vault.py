"""Stack settings to ``VaultArgs``, and its fields back to config keys (the same scheme as
``infra/stack_args.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components import AppNamespace, Backups, VaultArgs, VaultSnapshotsArgs
from components.foundation.cluster_addons import STORAGE_CLASS
from components.services.ingress import INTERNAL_ISSUER
from infra.config_keys import Settings
from infra.stack_args import Placeholders

VAULT_KEYS = {
    "replicas": "vault.replicas",
    "data_storage_gib": "vault.dataStorageGib",
    "audit_storage_gib": "vault.auditStorageGib",
    "ui": "vault.ui",
}
VAULT_SNAPSHOT_KEYS = {
    "schedule": "backups.vaultSnapshotSchedule",
    "size_limit_gib": "vault.dataStorageGib",
    "system_pool": "nodeGroups",
}
VALIDATING = Placeholders()
"""Stand-ins for deploy-time values while arguments are only validated."""


def vault_args(
    settings: Settings,
    tags: Mapping[str, str],
    deploy: Placeholders = VALIDATING,
    *,
    storage_class: pulumi.Input[str] = STORAGE_CLASS,
    issuer: str = INTERNAL_ISSUER,
    cert_manager: pulumi.Resource | None = None,
    client_apps: Sequence[AppNamespace] = (),
) -> VaultArgs:
    """The stack's ``VaultArgs``: the seal's role trusts the cluster's OIDC provider; the
    listener's certificate comes from ``issuer`` once ``cert_manager`` runs."""
    return VaultArgs(
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        storage_class=storage_class,
        issuer=issuer,
        cert_manager=cert_manager,
        replicas=settings.vault_replicas,
        data_storage_gib=settings.vault_data_storage_gib,
        audit_storage_gib=settings.vault_audit_storage_gib,
        ui=settings.vault_ui,
        client_apps=tuple(client_apps),
        system_pool=settings.system_pool,
        tags=dict(tags),
    )


def vault_snapshots_args(
    settings: Settings,
    tags: Mapping[str, str],
    deploy: Placeholders = VALIDATING,
    *,
    backups: Backups | None = None,
) -> VaultSnapshotsArgs:
    """The stack's ``VaultSnapshotsArgs``: snapshots into ``backups``' bucket (stand-ins
    while only validating), with room for a snapshot as large as the raft volume."""
    return VaultSnapshotsArgs(
        oidc_provider_arn=deploy.oidc_provider_arn,
        oidc_issuer=deploy.oidc_issuer,
        bucket=backups.bucket_name if backups else "backups",
        bucket_arn=backups.bucket_arn if backups else "arn:aws:s3:::backups",
        key_arn=backups.key_arn if backups else "arn:aws:kms:us-west-2:000000000000:key/x",
        schedule=settings.backups.vault_snapshot_schedule,
        size_limit_gib=settings.vault_data_storage_gib,
        system_pool=settings.system_pool,
        tags=dict(tags),
    )
