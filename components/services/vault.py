"""HashiCorp Vault in HA: integrated storage, KMS auto-unseal, TLS, audit storage, the
agent injector.

Creates, in namespace ``vault``:

- the namespace (``tenancy.application_namespace`` without the mesh: default-deny, DNS
  allowed, no sidecar injection; see "Outside the mesh" below);
- the seal (``vault_seal``): a rotating customer KMS key, the IRSA role of ``vault:vault``
  and that role's policy on the one key;
- the ``vault-tls`` Certificate from the ``internal-ca`` ClusterIssuer, for the listener
  and for the peers' ``retry_join``;
- the ``hashicorp/vault`` release (``vault_server``): ``replicas`` raft nodes spread over
  zones with a PDB of one, data and audit on encrypted volumes, the UI off unless asked,
  ``server.networkPolicy`` admitting the client namespaces only;
- the injector's NetworkPolicy (its webhook, called by the API server) and, in each
  client namespace built here, egress to Vault's port.

Outside the mesh: the Vault agent's init container runs before the pod's Istio proxy,
and with Istio CNI the pod's traffic is already redirected to that proxy, so the
init container cannot reach Vault and the pod never starts. Vault's namespace is not
injected, its own TLS (internal CA) protects the connection, and client pods exclude
Vault's port from redirection (``CLIENT_POD_ANNOTATIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components._aws import account_context
from components._k8s import ChartPin, helm_release, system_placement
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.services.ingress import INTERNAL_ISSUER
from components.services.tenancy import AppNamespace, allow_egress, application_namespace
from components.services.vault_access import NAMESPACE, PORT, RELEASE, client_namespaces
from components.services.vault_seal import create_seal
from components.services.vault_server import (
    TLS_SECRET,
    ServerValues,
    chart_values,
    injector_network_policy,
    tls_dns_names,
)

VAULT_CHART = ChartPin("https://helm.releases.hashicorp.com", "vault", "0.34.1")
CLIENT_CA_SECRET = "vault-ca"
"""The Secret in each client namespace whose ``ca.crt`` is the internal CA (the agent's
``vault.hashicorp.com/tls-secret``)."""
CLIENT_POD_ANNOTATIONS = {
    "traffic.sidecar.istio.io/excludeOutboundPorts": str(PORT),
    "vault.hashicorp.com/agent-init-first": "true",
}
"""What a client workload's pods carry: the agent's traffic to Vault bypasses the Istio
proxy (which is not running yet during init), and the agent runs before other init
containers."""
_SIZE_GIB = (1, 1000)


@dataclass(frozen=True)
class VaultArgs:
    """Inputs of :class:`Vault`."""

    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, for the seal's IRSA role. Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    storage_class: pulumi.Input[str]
    """The encrypted gp3 StorageClass of the data and audit volumes
    (``ClusterAddons.storage_class``). Required."""
    issuer: str = INTERNAL_ISSUER
    """The ClusterIssuer that signs the listener's certificate (``Ingress.internal_issuer``).
    Default ``internal-ca``."""
    cert_manager: pulumi.Resource | None = None
    """The cert-manager release (``Ingress.cert_manager``): the Certificate waits for it.
    Default None."""
    replicas: int = 3
    """Raft nodes: 1, 3 or 5 (a quorum survives one, resp. two, losses). Default 3."""
    data_storage_gib: int = 10
    """Size of each node's raft volume, 1 to 1000. Default 10."""
    audit_storage_gib: int = 10
    """Size of each node's audit-log volume, 1 to 1000. Default 10."""
    ui: bool = False
    """Serve the web UI; asked for by name. Default False."""
    client_apps: Sequence[AppNamespace] = ()
    """Client namespaces built by the platform, to open egress to Vault's port in.
    Default none."""
    key_deletion_window_days: int = 30
    """Waiting period before the seal key is deleted (7 to 30): a key deleted by mistake
    can be restored within it. Default 30."""
    system_pool: str = "system"
    """Pool label of the nodes Vault runs on. Default ``system``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the AWS resources. Default none."""
    chart: ChartPin = VAULT_CHART


def validate_vault_args(args: VaultArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if args.replicas not in (1, 3, 5):
        problems.append(
            Problem("replicas", "must be 1, 3 or 5 (an odd raft quorum)", args.replicas)
        )
    low, high = _SIZE_GIB
    for name in ("data_storage_gib", "audit_storage_gib"):
        size = getattr(args, name)
        if not (isinstance(size, int) and low <= size <= high):
            problems.append(Problem(name, f"must be whole GiB from {low} to {high}", size))
    if not 7 <= args.key_deletion_window_days <= 30:
        problems.append(
            Problem(
                "key_deletion_window_days", "must be from 7 to 30", args.key_deletion_window_days
            )
        )
    if not args.issuer:
        problems.append(Problem("issuer", "must name the ClusterIssuer of the listener's TLS"))
    return problems


class Vault(pulumi.ComponentResource):
    """Vault HA with raft, the awskms seal, TLS from cert-manager and the agent injector.

    ``opts.providers`` must carry the cluster's AWS and Kubernetes providers; the release
    waits for what ``opts.depends_on`` names, for the Certificate and for the seal's
    grant. ``address`` is Vault's in-cluster URL; ``kms_key_id`` the seal key's id.
    Raises :class:`~components._validate.ValidationError` naming every bad field.
    """

    address: str
    kms_key_id: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("VaultArgs", validate_vault_args(args))
        super().__init__(type_token("Vault"), name, None, opts)
        context = account_context(self)
        ns = application_namespace(NAMESPACE, parent=self, mesh=None)
        seal = create_seal(
            name,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            context=context,
            deletion_window_days=args.key_deletion_window_days,
            tags=args.tags,
            parent=self,
        )
        certificate = k8s.apiextensions.CustomResource(
            f"{name}-tls",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": TLS_SECRET, "namespace": ns.namespace.metadata.name},
            spec={
                "secretName": TLS_SECRET,
                "commonName": f"{RELEASE}.{NAMESPACE}.svc",
                "dnsNames": tls_dns_names(),
                "ipAddresses": ["127.0.0.1"],
                "duration": "2160h",
                "renewBefore": "720h",
                "usages": ["server auth", "digital signature", "key encipherment"],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {
                    "name": args.issuer,
                    "kind": "ClusterIssuer",
                    "group": "cert-manager.io",
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(filter(None, [args.cert_manager]))
            ),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-injector",
            metadata={"name": "allow-injector", "namespace": ns.namespace.metadata.name},
            spec=cast(Any, injector_network_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for app in args.client_apps:
            # The agent verifies Vault against the internal CA, read from a Secret in the
            # client's namespace: a leaf certificate from the same issuer carries the CA's
            # ca.crt, so cert-manager keeps one there (and renews it with the CA).
            k8s.apiextensions.CustomResource(
                f"{name}-ca-{app.name}",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={"name": CLIENT_CA_SECRET, "namespace": app.namespace.metadata.name},
                spec={
                    "secretName": CLIENT_CA_SECRET,
                    "commonName": f"{CLIENT_CA_SECRET}.{app.name}.svc",
                    "duration": "2160h",
                    "renewBefore": "720h",
                    "usages": ["client auth", "digital signature"],
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    "issuerRef": {
                        "name": args.issuer,
                        "kind": "ClusterIssuer",
                        "group": "cert-manager.io",
                    },
                },
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(filter(None, [args.cert_manager]))
                ),
            )
            allow_egress(
                app,
                name="allow-vault",
                parent=self,
                pods={},
                ports=[PORT],
                to_namespace=NAMESPACE,
                to_pods={"app.kubernetes.io/name": "vault"},
            )
        values = chart_values(
            ServerValues(
                replicas=args.replicas,
                injector_replicas=min(args.replicas, 2),
                region=context.region,
                kms_key_id=seal.key.key_id,
                role_arn=seal.role_arn,
                storage_class=args.storage_class,
                data_storage_gib=args.data_storage_gib,
                audit_storage_gib=args.audit_storage_gib,
                ui=args.ui,
                clients=client_namespaces(),
                placement=system_placement(args.system_pool),
            )
        )
        self.release = helm_release(
            f"{name}-release",
            pin=args.chart,
            namespace=ns.namespace.metadata.name,
            release_name=RELEASE,
            values=values,
            parent=self,
            depends_on=[*depends_on_of(opts), certificate, seal.key, seal.grant, *ns.policies],
        )
        self.address = f"https://{RELEASE}.{NAMESPACE}.svc:{PORT}"
        self.kms_key_id = seal.key.key_id
        self.register_outputs({"address": self.address, "kms_key_id": self.kms_key_id})
