"""What the ingress is made of, as plain values: the gateway's names and servers, the NLB
annotations, cert-manager's Route 53 permissions."""

from __future__ import annotations

import pulumi_kubernetes as k8s

DEV_DOMAIN = "mlplatform.internal"
GATEWAY_SECRET = "gateway-tls"
STATUS_PORT = 15021
PUBLIC_ANNOTATION = "mlplatform.io/public-ingress"
NLB_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer"


def gateway_hosts(domain: str) -> list[str]:
    """The names the gateway serves: the domain (default ``mlplatform.internal``) and its
    subdomains."""
    domain = domain or DEV_DOMAIN
    return [domain, f"*.{domain}"]


def route53_policy(partition: str, zone_id: str) -> dict[str, object]:
    """cert-manager's Route 53 access: ``_acme-challenge`` TXT records in one zone."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": f"arn:{partition}:route53:::change/*",
            },
            {
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                "Resource": f"arn:{partition}:route53:::hostedzone/{zone_id}",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    },
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                            "_acme-challenge.*"
                        ]
                    },
                },
            },
            {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
        ],
    }


def nlb_annotations(*, public: bool) -> dict[str, str]:
    """The gateway Service's NLB: IP targets, cross-zone, internal unless ``public`` (then
    marked with ``mlplatform.io/public-ingress``, which the policy pack requires for an
    internet-facing gateway), health-checked on the gateway's readiness endpoint."""
    marked = {PUBLIC_ANNOTATION: "true"} if public else {}
    return {
        **marked,
        f"{NLB_ANNOTATION}-type": "external",
        f"{NLB_ANNOTATION}-nlb-target-type": "ip",
        f"{NLB_ANNOTATION}-scheme": "internet-facing" if public else "internal",
        f"{NLB_ANNOTATION}-attributes": "load_balancing.cross_zone.enabled=true",
        f"{NLB_ANNOTATION}-healthcheck-protocol": "http",
        f"{NLB_ANNOTATION}-healthcheck-port": str(STATUS_PORT),
        f"{NLB_ANNOTATION}-healthcheck-path": "/healthz/ready",
    }


def gateway_servers(hosts: list[str]) -> list[dict[str, object]]:
    """The Gateway's servers: HTTP answering with a redirect, HTTPS on the certificate."""
    return [
        {
            "port": {"number": 80, "name": "http", "protocol": "HTTP"},
            "hosts": hosts,
            "tls": {"httpsRedirect": True},
        },
        {
            "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
            "hosts": hosts,
            "tls": {
                "mode": "SIMPLE",
                "credentialName": GATEWAY_SECRET,
                "minProtocolVersion": "TLSV1_2",
            },
        },
    ]


def load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    """The NLB's DNS name from a Service's status (empty until it is provisioned)."""
    balancer = status.load_balancer if status else None
    found = balancer.ingress if balancer else None
    return (found[0].hostname or "") if found else ""
