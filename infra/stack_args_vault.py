"""Stack settings to ``VaultArgs``, and its fields back to config keys (the same scheme as
``infra/stack_args.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components import AppNamespace, VaultArgs
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
