"""HTTPS into the mesh: cert-manager and its issuers, the gateway's certificate, its
Gateway and its load balancer.

- cert-manager (its CRDs installed by the chart, kept on uninstall) in ``cert-manager``;
- issuers: ``selfsigned`` only signs ``internal-ca``, a CA whose ClusterIssuer
  ``internal-ca`` signs in-cluster TLS (Vault's listener later); with ``domain`` and
  ``hosted_zone_id`` set, ``letsencrypt`` answers ACME DNS-01 challenges in that Route 53
  zone, through an IRSA role that may change only ``_acme-challenge`` TXT records of that
  zone; without them the gateway's certificate comes from ``internal-ca`` (dev);
- the ``gateway-tls`` Certificate in the gateway's namespace (Istio reads the Secret there);
- the Istio ``Gateway``: HTTP redirected to HTTPS, HTTPS with ``tls.mode: SIMPLE`` on that
  Secret, TLS 1.2 at least;
- the gateway's ``LoadBalancer`` Service: an NLB (the controller's class) with IP targets,
  cross-zone, health-checked on the gateway's readiness port, internal unless ``public``.
  It depends on the controller's release and names the NLB's subnets, so ``pulumi
  destroy`` deletes it (and the controller deletes the NLB, its target groups and
  interfaces) before the controller goes, and the subnets after both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components._aws import account_context
from components._k8s import ChartPin, helm_release, namespace, system_placement
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for
from components.foundation.irsa import ROLE_ARN_ANNOTATION, inline_policy_role
from components.services.ingress_specs import (
    GATEWAY_SECRET,
    NLB_ANNOTATION,
    gateway_hosts,
    gateway_servers,
    load_balancer_hostname,
    nlb_annotations,
    route53_policy,
)
from components.services.load_balancer import LOAD_BALANCER_CLASS
from components.services.tenancy import (
    GATEWAY_LABELS,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_SERVICE_ACCOUNT,
)

CERT_MANAGER_CHART = ChartPin("https://charts.jetstack.io", "cert-manager", "v1.21.1")
NAMESPACE = "cert-manager"
SERVICE_ACCOUNT = "cert-manager"
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
INTERNAL_ISSUER = "internal-ca"
PUBLIC_ISSUER = "letsencrypt"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_ISSUER = {"kind": "ClusterIssuer", "group": "cert-manager.io"}


@dataclass(frozen=True)
class IngressArgs:
    """Inputs of :class:`Ingress`."""

    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, for cert-manager's Route 53 role. Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    gateway_namespace: pulumi.Input[str] = GATEWAY_NAMESPACE
    """The ingress gateway's namespace (``Mesh.gateway_namespace``, which orders the
    certificate, Gateway and Service after it). Default ``istio-ingress``."""
    mesh: pulumi.Resource | None = None
    """What the Gateway waits for (``Mesh.control_plane``). Default None."""
    load_balancer: pulumi.Resource | None = None
    """The load balancer controller's release: the Service is created after it and
    deleted before it. Default None."""
    public: bool = False
    """An internet-facing NLB; asked for by name. Default False: internal."""
    load_balancer_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """The NLB's subnets (the public ones when ``public``, else the private ones), named
    on the Service, which also orders its deletion before theirs. Default None: the
    controller picks subnets by their ``kubernetes.io/role/*elb`` tags."""
    domain: str = ""
    """The gateway's domain: it serves ``domain`` and ``*.domain``. Default empty:
    ``mlplatform.internal`` with an internal-CA certificate."""
    hosted_zone_id: str = ""
    """The Route 53 public hosted zone of ``domain``, for ACME DNS-01. Default empty:
    no public certificate."""
    acme_server: str = LETSENCRYPT
    """The ACME directory. Default Let's Encrypt production."""
    replicas: int = 2
    """cert-manager controller and webhook replicas (a PDB from 2). Default 2."""
    system_pool: str = "system"
    """Pool label of the nodes cert-manager runs on. Default ``system``."""
    cert_manager_chart: ChartPin = CERT_MANAGER_CHART


def validate_ingress_args(args: IngressArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if args.domain and not _DOMAIN.match(args.domain):
        problems.append(
            Problem("domain", "must be a lower-case DNS name like ml.example.com", args.domain)
        )
    if args.hosted_zone_id and not _ZONE_ID.match(args.hosted_zone_id):
        problems.append(
            Problem(
                "hosted_zone_id",
                "must be a Route 53 hosted zone id like Z0123456789ABC",
                args.hosted_zone_id,
            )
        )
    if args.hosted_zone_id and not args.domain:
        problems.append(
            Problem("hosted_zone_id", "needs a domain: DNS-01 proves a name in the zone")
        )
    if not args.acme_server.startswith("https://"):
        problems.append(
            Problem("acme_server", "must be an https:// ACME directory", args.acme_server)
        )
    if not 1 <= args.replicas <= 3:
        problems.append(Problem("replicas", "must be from 1 to 3", args.replicas))
    return problems


class Ingress(pulumi.ComponentResource):
    """cert-manager, the issuers, the gateway's certificate, Gateway and NLB Service.

    ``opts.providers`` must carry the cluster's AWS and Kubernetes providers; the release
    waits for what ``opts.depends_on`` names. ``internal_issuer`` names the ClusterIssuer
    for in-cluster TLS; ``hosts`` the names the gateway serves. Raises
    :class:`~components._validate.ValidationError` naming every bad field.
    """

    internal_issuer: str
    hosts: list[str]
    cert_manager: k8s.helm.v3.Release
    load_balancer_hostname: pulumi.Output[str]

    def __init__(
        self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("IngressArgs", validate_ingress_args(args))
        super().__init__(type_token("Ingress"), name, None, opts)
        context = account_context(self)
        ns = namespace(NAMESPACE, parent=self)
        acme = bool(args.domain and args.hosted_zone_id)
        account: dict[str, object] = {"create": True, "name": SERVICE_ACCOUNT}
        if acme:
            document = json.dumps(route53_policy(context.partition, args.hosted_zone_id))
            role = inline_policy_role(
                f"{name}-route53",
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                service_account=(NAMESPACE, SERVICE_ACCOUNT),
                policy=("route53-dns01", document),
                parent=self,
            )
            account["annotations"] = {ROLE_ARN_ANNOTATION: role.role_arn}
        placement = system_placement(args.system_pool)
        budget = (
            {"enabled": args.replicas > 1, "minAvailable": 1}
            if args.replicas > 1
            else {"enabled": False}
        )
        self.cert_manager = helm_release(
            f"{name}-cert-manager",
            pin=args.cert_manager_chart,
            namespace=ns.metadata.name,
            release_name="cert-manager",
            values={
                "crds": {"enabled": True, "keep": True},
                "replicaCount": args.replicas,
                "podDisruptionBudget": budget,
                "serviceAccount": account,
                # The IRSA token is group-readable; fsGroup lets the controller read it.
                "securityContext": {
                    "runAsNonRoot": True,
                    "fsGroup": 1001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "webhook": {
                    "replicaCount": args.replicas,
                    "podDisruptionBudget": budget,
                    **placement,
                },
                "cainjector": placement,
                "startupapicheck": placement,
                **placement,
            },
            parent=self,
            depends_on=depends_on_of(opts),
        )

        def issuer(
            key: str, issuer_name: str, spec: dict[str, object], after: list[pulumi.Resource]
        ):
            return k8s.apiextensions.CustomResource(
                f"{name}-{key}",
                api_version="cert-manager.io/v1",
                kind="ClusterIssuer",
                metadata={"name": issuer_name},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cert_manager, *after]),
            )

        def certificate(
            key: str,
            namespace_name: pulumi.Input[str],
            spec: dict[str, object],
            after: pulumi.Resource,
        ):
            return k8s.apiextensions.CustomResource(
                f"{name}-{key}",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={"name": spec["secretName"], "namespace": namespace_name},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cert_manager, after]),
            )

        ecdsa = {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
        selfsigned = issuer("selfsigned", "selfsigned", {"selfSigned": {}}, [])
        ca = certificate(
            "internal-ca",
            ns.metadata.name,
            {
                "isCA": True,
                "commonName": "mlplatform internal CA",
                "secretName": INTERNAL_ISSUER,
                "duration": "87600h",
                "privateKey": ecdsa,
                "issuerRef": {"name": "selfsigned", **_ISSUER},
            },
            selfsigned,
        )
        internal = issuer(
            INTERNAL_ISSUER, INTERNAL_ISSUER, {"ca": {"secretName": INTERNAL_ISSUER}}, [ca]
        )
        gateway_issuer, issuer_name = internal, INTERNAL_ISSUER
        self.hosts = gateway_hosts(args.domain)
        if acme:
            solver = {
                "selector": {"dnsZones": [args.domain]},
                "dns01": {
                    "route53": {"region": context.region, "hostedZoneID": args.hosted_zone_id}
                },
            }
            gateway_issuer, issuer_name = (
                issuer(
                    PUBLIC_ISSUER,
                    PUBLIC_ISSUER,
                    {
                        "acme": {
                            "server": args.acme_server,
                            "privateKeySecretRef": {"name": "letsencrypt-account-key"},
                            "solvers": [solver],
                        }
                    },
                    [],
                ),
                PUBLIC_ISSUER,
            )
        tls = certificate(
            "gateway-tls",
            args.gateway_namespace,
            {
                "secretName": GATEWAY_SECRET,
                "dnsNames": self.hosts,
                "privateKey": ecdsa,
                "issuerRef": {"name": issuer_name, **_ISSUER},
            },
            gateway_issuer,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="networking.istio.io/v1",
            kind="Gateway",
            metadata={"name": GATEWAY_NAME, "namespace": args.gateway_namespace},
            spec={"selector": dict(GATEWAY_LABELS), "servers": gateway_servers(self.hosts)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[tls, *filter(None, [args.mesh])]),
        )
        annotations: dict[str, pulumi.Input[str]] = {**nlb_annotations(public=args.public)}
        if args.load_balancer_subnet_ids is not None:
            annotations[f"{NLB_ANNOTATION}-subnets"] = pulumi.Output.from_input(
                args.load_balancer_subnet_ids
            ).apply(lambda ids: ",".join(str(i) for i in ids))
        service = k8s.core.v1.Service(
            f"{name}-gateway",
            metadata={
                "name": GATEWAY_SERVICE_ACCOUNT,
                "namespace": args.gateway_namespace,
                "labels": dict(GATEWAY_LABELS),
                "annotations": annotations,
            },
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                load_balancer_class=LOAD_BALANCER_CLASS,
                selector=dict(GATEWAY_LABELS),
                ports=[
                    k8s.core.v1.ServicePortArgs(name=n, port=p, target_port=p, protocol="TCP")
                    for n, p in (("http2", 80), ("https", 443))
                ],
            ),
            # Deleted before the controller's release: the controller removes the NLB.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(filter(None, [args.load_balancer]))
            ),
        )
        self.internal_issuer = INTERNAL_ISSUER
        self.load_balancer_hostname = service.status.apply(load_balancer_hostname)
        self.register_outputs({"load_balancer_hostname": self.load_balancer_hostname})
