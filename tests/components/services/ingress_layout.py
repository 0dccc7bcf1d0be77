"""The field layout of cert-manager's ``Certificate`` (``cert-manager.io/v1``) spec.

Read by hand from ``deploy/crds/cert-manager.io_certificates.yaml`` in
cert-manager/cert-manager (the CRD the ``cert-manager`` chart v1.21.1 installs with
``crds.enabled``). Only the spec is written out: its every top-level field, with the ones
the platform sets (``dnsNames``, ``ipAddresses``, ``issuerRef``, ``privateKey``, ``usages``,
durations, ``secretName``) opened and typed, the others left as ``AnyValue``.

Minimal: the ingress's own layout module of this name, which spells out cert-manager's
chart values and CRDs (``CERTIFICATE_SPEC`` among them), supersedes this one.
"""

from __future__ import annotations

from tests.components.layout import AnyValue, Arr, Bool, Int, Map, Obj, Str, req

USAGES = (
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
)

CERTIFICATE_SPEC = Obj(
    {
        "additionalOutputFormats": AnyValue(),
        "commonName": Str(),
        "dnsNames": Arr(Str()),
        "duration": Str(),
        "emailAddresses": Arr(Str()),
        "encodeUsagesInRequest": Bool(),
        "ipAddresses": Arr(Str()),
        "isCA": Bool(),
        "issuerRef": Obj({"group": Str(), "kind": Str(), "name": Str()}, req("name")),
        "keystores": AnyValue(),
        "literalSubject": Str(),
        "nameConstraints": AnyValue(),
        "otherNames": AnyValue(),
        "privateKey": Obj(
            {
                "algorithm": Str(enum=("RSA", "ECDSA", "Ed25519")),
                "encoding": Str(enum=("PKCS1", "PKCS8")),
                "rotationPolicy": Str(enum=("Never", "Always")),
                "size": Int(),
            }
        ),
        "renewBefore": Str(),
        "renewBeforePercentage": Int(),
        "revisionHistoryLimit": Int(minimum=1),
        "secretName": Str(),
        "secretTemplate": Obj({"annotations": Map(Str()), "labels": Map(Str())}),
        "signatureAlgorithm": AnyValue(),
        "subject": AnyValue(),
        "uris": Arr(Str()),
        "usages": Arr(Str(enum=USAGES)),
    },
    req("issuerRef", "secretName"),
)
