"""Vault's server configuration (HCL) and the ``hashicorp/vault`` chart's values.

Pure functions of plain values and Outputs, kept apart from the component so that the
configuration a reviewer reads is in one place:

- the listener on 8200 with TLS from the ``vault-tls`` Secret (cert-manager, internal CA),
  TLS 1.2 at least; the CLI in the pod trusts that CA through ``VAULT_CACERT``;
- integrated storage (raft) on the data volume, each node joining its peers over HTTPS
  and checking them against the same CA; node ids are the pod names;
- ``seal "awskms"`` with the stack's key, reached through the pod's IRSA role;
- audit logs on their own volume (the file device is enabled by ``infra.vault_setup``);
- no dev mode, no standalone mode, no root token, no AWS keys: nothing in these values
  is a credential (the chart stores its configuration in a ConfigMap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.services.vault_access import (
    AUDIT_MOUNT,
    CLUSTER_PORT,
    INJECTOR_PORT,
    NAMESPACE,
    PORT,
    RELEASE,
    SERVICE_ACCOUNT,
)

TLS_SECRET = "vault-tls"
TLS_DIR = "/vault/userconfig/vault-tls"
TLS_CERT = f"{TLS_DIR}/tls.crt"
TLS_KEY = f"{TLS_DIR}/tls.key"
TLS_CA = f"{TLS_DIR}/ca.crt"
DATA_MOUNT = "/vault/data"
VAULT_IMAGE = ("hashicorp/vault", "2.0.4")
INJECTOR_IMAGE = ("hashicorp/vault-k8s", "1.7.6")
"""The chart 0.34.1's own images, pinned here so that a chart bump cannot move them."""
SERVER_LABELS = {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": RELEASE}
INJECTOR_LABELS = {"app.kubernetes.io/name": "vault-agent-injector"}
_NAMESPACE_NAME = "kubernetes.io/metadata.name"


def tls_dns_names() -> list[str]:
    """The names Vault is reached by: its Services, and each pod through the headless
    ``vault-internal`` Service (``retry_join``'s ``leader_api_addr``)."""
    names: list[str] = []
    for service in (RELEASE, f"{RELEASE}-active", f"{RELEASE}-standby", f"*.{RELEASE}-internal"):
        names += [service, f"{service}.{NAMESPACE}", f"{service}.{NAMESPACE}.svc"]
        names.append(f"{service}.{NAMESPACE}.svc.cluster.local")
    return names


def peer_address(ordinal: int) -> str:
    """The API address of pod ``vault-<ordinal>`` through the headless Service."""
    return f"https://{RELEASE}-{ordinal}.{RELEASE}-internal:{PORT}"


def server_config(
    *, replicas: int, region: str, kms_key_id: pulumi.Input[str], ui: bool
) -> pulumi.Output[str]:
    """The HCL of ``server.ha.raft.config``: TLS listener, raft joining ``replicas`` peers
    over HTTPS, the ``awskms`` seal on ``kms_key_id`` in ``region``."""
    joins = "".join(
        "  retry_join {\n"
        f'    leader_api_addr = "{peer_address(i)}"\n'
        f'    leader_ca_cert_file = "{TLS_CA}"\n'
        "  }\n"
        for i in range(replicas)
    )
    return pulumi.Output.concat(
        f"ui = {str(ui).lower()}\n",
        # Integrated storage needs no mlock (its data is memory-mapped); the container
        # then needs no IPC_LOCK capability.
        "disable_mlock = true\n",
        'listener "tcp" {\n',
        f'  address = "[::]:{PORT}"\n',
        f'  cluster_address = "[::]:{CLUSTER_PORT}"\n',
        "  tls_disable = 0\n",
        f'  tls_cert_file = "{TLS_CERT}"\n',
        f'  tls_key_file = "{TLS_KEY}"\n',
        '  tls_min_version = "tls12"\n',
        "}\n",
        'storage "raft" {\n',
        f'  path = "{DATA_MOUNT}"\n',
        joins,
        "}\n",
        'seal "awskms" {\n',
        f'  region = "{region}"\n',
        '  kms_key_id = "',
        kms_key_id,
        '"\n',
        "}\n",
        'service_registration "kubernetes" {}\n',
    )


@dataclass(frozen=True)
class ServerValues:
    """What the chart's values are made of (see ``VaultArgs`` for each)."""

    replicas: int
    injector_replicas: int
    region: str
    kms_key_id: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    storage_class: pulumi.Input[str]
    data_storage_gib: int
    audit_storage_gib: int
    ui: bool
    clients: Sequence[str]
    placement: Mapping[str, object]


def _volume(size_gib: int, mount: str, storage_class: pulumi.Input[str]) -> dict[str, object]:
    return {
        "enabled": True,
        "size": f"{size_gib}Gi",
        "mountPath": mount,
        "storageClass": storage_class,
        "accessMode": "ReadWriteOnce",
    }


def _security(uid: int, gid: int) -> dict[str, object]:
    return {
        "pod": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "fsGroup": gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "container": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
    }


def _in_namespaces(names: Sequence[str]) -> dict[str, object]:
    return {
        "namespaceSelector": {
            "matchExpressions": [{"key": _NAMESPACE_NAME, "operator": "In", "values": list(names)}]
        }
    }


def network_policy(clients: Sequence[str]) -> dict[str, object]:
    """``server.networkPolicy``: the API port from the client namespaces and from Vault's
    own namespace, the cluster port from the peers only; egress to the peers and to
    HTTPS (the API server for TokenReview and service registration, KMS and STS)."""
    peers = {"podSelector": {"matchLabels": dict(SERVER_LABELS)}}
    tcp = [{"port": PORT, "protocol": "TCP"}]
    return {
        "enabled": True,
        "ingress": [
            {"from": [_in_namespaces([NAMESPACE, *clients])], "ports": tcp},
            {"from": [peers], "ports": [{"port": CLUSTER_PORT, "protocol": "TCP"}]},
        ],
        "egress": [
            {"to": [peers], "ports": [*tcp, {"port": CLUSTER_PORT, "protocol": "TCP"}]},
            {"ports": [{"port": 443, "protocol": "TCP"}]},
        ],
    }


def chart_values(v: ServerValues) -> dict[str, object]:
    """The ``hashicorp/vault`` chart's values (every key is documented at 0.34.1)."""
    zone_spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {**SERVER_LABELS, "component": "server"}},
        }
    ]
    injector_budget = {"maxUnavailable": 1} if v.injector_replicas > 1 else {}
    return {
        # The chart's own switch for https in its probes, VAULT_ADDR and Services.
        "global": {"tlsDisable": False},
        "injector": {
            "enabled": True,
            "replicas": v.injector_replicas,
            "image": {"repository": INJECTOR_IMAGE[0], "tag": INJECTOR_IMAGE[1]},
            "agentImage": {"repository": VAULT_IMAGE[0], "tag": VAULT_IMAGE[1]},
            # Pods in the client namespaces are not admitted without their secrets; no
            # other namespace's pods pass through the webhook.
            "webhook": {
                "failurePolicy": "Fail",
                "namespaceSelector": _in_namespaces(v.clients)["namespaceSelector"],
            },
            "securityContext": _security(100, 1000),
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "128Mi"},
            },
            "podDisruptionBudget": injector_budget,
            **v.placement,
        },
        "server": {
            "image": {"repository": VAULT_IMAGE[0], "tag": VAULT_IMAGE[1]},
            "dev": {"enabled": False},
            "standalone": {"enabled": False},
            "ha": {
                "enabled": True,
                "replicas": v.replicas,
                "raft": {
                    "enabled": True,
                    "setNodeId": True,
                    "config": server_config(
                        replicas=v.replicas, region=v.region, kms_key_id=v.kms_key_id, ui=v.ui
                    ),
                },
                "disruptionBudget": {"enabled": True, "maxUnavailable": 1},
            },
            "extraEnvironmentVars": {"VAULT_CACERT": TLS_CA},
            "volumes": [{"name": TLS_SECRET, "secret": {"secretName": TLS_SECRET}}],
            "volumeMounts": [{"name": TLS_SECRET, "mountPath": TLS_DIR, "readOnly": True}],
            "dataStorage": _volume(v.data_storage_gib, DATA_MOUNT, v.storage_class),
            "auditStorage": _volume(v.audit_storage_gib, AUDIT_MOUNT, v.storage_class),
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"memory": "512Mi"},
            },
            "serviceAccount": {
                "create": True,
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": v.role_arn},
            },
            "authDelegator": {"enabled": True},
            "networkPolicy": network_policy(v.clients),
            "topologySpreadConstraints": zone_spread,
            "statefulSet": {"securityContext": _security(100, 1000)},
            **v.placement,
        },
        "ui": {"enabled": v.ui},
        "csi": {"enabled": False},
    }


def injector_network_policy() -> dict[str, Any]:
    """The injector's NetworkPolicy spec, in the API's spelling: the API server calls its
    webhook on 8080 (from the control plane's addresses, which no namespace selector
    names); it calls the API server on 443."""
    return {
        "podSelector": {"matchLabels": dict(INJECTOR_LABELS)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [{"port": INJECTOR_PORT, "protocol": "TCP"}]}],
        "egress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
    }
