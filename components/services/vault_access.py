"""Who may read what in Vault: the workloads, their policies and roles, and the paths
Vault's configuration step and its release share.

Written once here and read by the ``Vault`` component (which namespaces may reach Vault,
where the audit volume is mounted) and by ``python -m infra.vault_setup`` (the audit
device, the KV v2 mount, one policy and one Kubernetes auth role per workload).

A workload gets a secret this way: its pod runs as ServiceAccount ``service_account`` in
``namespace``; the Vault agent logs in at ``auth/kubernetes`` with the pod's token under
role ``name``; Kubernetes' TokenReview confirms the token; the role hands out a token with
policy ``name`` for ``token_ttl_s`` (renewable up to ``token_max_ttl_s``); the policy lets
it ``read`` ``secret/data/<paths>`` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "vault"
RELEASE = "vault"
SERVICE_ACCOUNT = "vault"
PORT = 8200
CLUSTER_PORT = 8201
INJECTOR_PORT = 8080
AUDIT_MOUNT = "/vault/audit"
AUDIT_FILE = f"{AUDIT_MOUNT}/vault-audit.log"
AUDIT_DEVICE = "file"
KV_MOUNT = "secret"
AUTH_MOUNT = "kubernetes"
KUBERNETES_HOST = "https://kubernetes.default.svc:443"
"""The API server as Vault's pods reach it; Vault reads the cluster's CA and its own
service account token from the pod (``disable_local_ca_jwt`` false)."""


@dataclass(frozen=True)
class VaultWorkload:
    """One workload's access: a Kubernetes auth role and an ACL policy, both ``name``."""

    name: str
    namespace: str
    service_account: str
    read_paths: tuple[str, ...]
    """Paths under the KV v2 mount it may read (``ml-serving/*``)."""
    token_ttl_s: int = 600
    """Lifetime of the token a login returns (10 minutes)."""
    token_max_ttl_s: int = 3600
    """Longest a token may be renewed to (1 hour): a leaked token dies within the hour."""

    def policy(self) -> str:
        """The ACL policy (HCL): ``read`` on each of ``read_paths`` in the KV v2 mount."""
        blocks = [
            f'path "{KV_MOUNT}/data/{path}" {{\n  capabilities = ["read"]\n}}\n'
            for path in self.read_paths
        ]
        return "\n".join(blocks)

    def role(self) -> dict[str, object]:
        """The body of ``auth/kubernetes/role/<name>`` (Vault's documented parameters)."""
        return {
            "bound_service_account_names": [self.service_account],
            "bound_service_account_namespaces": [self.namespace],
            "token_policies": [self.name],
            "token_ttl": self.token_ttl_s,
            "token_max_ttl": self.token_max_ttl_s,
        }


WORKLOADS: tuple[VaultWorkload, ...] = (
    VaultWorkload("ml-serving", "ml-serving", "inference", ("ml-serving/*",)),
    VaultWorkload("mlflow", "mlflow", "mlflow", ("mlflow/database",)),
)
"""The workloads that read secrets, by name. Their namespaces are the only ones the
Vault NetworkPolicy admits."""


def client_namespaces() -> tuple[str, ...]:
    """The namespaces of :data:`WORKLOADS`, sorted, each once."""
    return tuple(sorted({w.namespace for w in WORKLOADS}))
