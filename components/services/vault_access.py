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

The raft snapshot CronJob (``components/services/vault_snapshots.py``) logs in the same
way as :data:`SNAPSHOT`, whose policy reads ``sys/storage/raft/snapshot`` (not a
root-protected path: ``read`` is enough) and nothing else; it is no KV client, so its
namespace is not among :func:`client_namespaces`.
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
    api_read_paths: tuple[str, ...] = ()
    """Vault API paths it may read as they are, outside the KV mount. Default none."""
    audience: str = ""
    """The ``aud`` the login token must carry (a projected token minted for Vault alone);
    empty: the API server's own audience, as the agent's pod token has. Default empty."""
    token_ttl_s: int = 600
    """Lifetime of the token a login returns (10 minutes)."""
    token_max_ttl_s: int = 3600
    """Longest a token may be renewed to (1 hour): a leaked token dies within the hour."""

    def policy(self) -> str:
        """The ACL policy (HCL): ``read`` on each of ``read_paths`` in the KV v2 mount and
        on each of ``api_read_paths``."""
        paths = [*(f"{KV_MOUNT}/data/{path}" for path in self.read_paths), *self.api_read_paths]
        blocks = [f'path "{path}" {{\n  capabilities = ["read"]\n}}\n' for path in paths]
        return "\n".join(blocks)

    def role(self) -> dict[str, object]:
        """The body of ``auth/kubernetes/role/<name>`` (Vault's documented parameters)."""
        return {
            "bound_service_account_names": [self.service_account],
            "bound_service_account_namespaces": [self.namespace],
            "token_policies": [self.name],
            "token_ttl": self.token_ttl_s,
            "token_max_ttl": self.token_max_ttl_s,
            **({"audience": self.audience} if self.audience else {}),
        }


WORKLOADS: tuple[VaultWorkload, ...] = (
    VaultWorkload("ml-serving", "ml-serving", "inference", ("ml-serving/*",)),
    VaultWorkload("mlflow", "mlflow", "mlflow", ("mlflow/database",)),
)
"""The workloads that read secrets, by name. Their namespaces are the only ones the
Vault NetworkPolicy admits."""


SNAPSHOT_PATH = "sys/storage/raft/snapshot"
SNAPSHOT = VaultWorkload(
    "vault-snapshot",
    NAMESPACE,
    "vault-snapshot",
    (),
    api_read_paths=(SNAPSHOT_PATH,),
    audience="vault",
    # One login and one snapshot a run: a token that outlives the job by minutes at most.
    token_ttl_s=300,
    token_max_ttl_s=900,
)
"""The raft snapshot CronJob's access: its service account in Vault's own namespace,
reading the snapshot endpoint and nothing else."""
ROLES: tuple[VaultWorkload, ...] = (*WORKLOADS, SNAPSHOT)
"""Every Kubernetes auth role and policy ``infra.vault_setup`` writes."""


def client_namespaces() -> tuple[str, ...]:
    """The namespaces of :data:`WORKLOADS`, sorted, each once."""
    return tuple(sorted({w.namespace for w in WORKLOADS}))
