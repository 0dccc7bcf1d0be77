"""What the data sources the program calls would return (``{token: function}``).

An unknown token is an error naming it and this module, never an empty answer: a data
source answered with nothing would let derived inputs vanish from the plan silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from infra.offline.fakes.registry import CallFake, FakeCall, Registry, hex_digest

CALLS: Registry[CallFake] = Registry("infra/offline/fakes/calls.py")

ZONE_COUNTS = {"us-east-1": 6, "us-west-2": 4}
"""Zones per region where it matters (us-west-2 really has four); others get three."""


@CALLS.register("aws:index/getAvailabilityZones:getAvailabilityZones")
def availability_zones(c: FakeCall) -> dict[str, Any]:
    """The region's zones by name and zone id (``usw2-az1``), in order."""
    count = ZONE_COUNTS.get(c.region, 3)
    letters = "abcdefgh"[:count]
    parts = c.region.split("-")
    prefix = parts[0] + "".join(part[0] for part in parts[1:-1])
    number = parts[-1]
    return {
        "id": c.region,
        "names": [f"{c.region}{letter}" for letter in letters],
        "zoneIds": [f"{prefix}{number}-az{i + 1}" for i in range(count)],
        "groupNames": [c.region] * count,
        "state": c.args.get("state", "available"),
    }


@CALLS.register("aws:index/getCallerIdentity:getCallerIdentity")
def caller_identity(c: FakeCall) -> dict[str, Any]:
    """The deploying user in the mocked account."""
    return {
        "id": c.account,
        "accountId": c.account,
        "arn": f"arn:aws:iam::{c.account}:user/platform-deployer",
        "userId": "AIDA" + hex_digest("caller", 16).upper(),
    }


@CALLS.register("aws:index/getPartition:getPartition")
def partition(c: FakeCall) -> dict[str, Any]:
    """The commercial partition, ``aws``."""
    return {
        "id": "aws",
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


@CALLS.register("aws:index/getRegion:getRegion")
def region(c: FakeCall) -> dict[str, Any]:
    """The configured region."""
    return {
        "id": c.region,
        "name": c.region,
        "region": c.region,
        "endpoint": f"ec2.{c.region}.amazonaws.com",
        "description": c.region,
    }


@CALLS.register("aws:iam/getPolicyDocument:getPolicyDocument")
def policy_document(c: FakeCall) -> dict[str, Any]:
    """The IAM JSON the arguments describe (see ``render_policy_document``)."""
    rendered = render_policy_document(c.args)
    return {
        "id": hex_digest(json.dumps(rendered, sort_keys=True), 10),
        "json": json.dumps(rendered, indent=2),
        "minifiedJson": json.dumps(rendered, separators=(",", ":")),
    }


def _statement(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Render one ``getPolicyDocument`` statement as IAM JSON."""
    out: dict[str, Any] = {}
    if raw.get("sid"):
        out["Sid"] = raw["sid"]
    out["Effect"] = raw.get("effect") or "Allow"
    for src, dst in (
        ("actions", "Action"),
        ("notActions", "NotAction"),
        ("resources", "Resource"),
        ("notResources", "NotResource"),
    ):
        values = raw.get(src)
        if values:
            out[dst] = values[0] if len(values) == 1 else sorted(values)
    for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
        principals = raw.get(src)
        if principals:
            block: dict[str, Any] = {}
            for p in principals:
                ids = p.get("identifiers") or []
                block[p["type"]] = ids[0] if len(ids) == 1 else sorted(ids)
            out[dst] = "*" if block == {"*": "*"} else block
    conditions = raw.get("conditions")
    if conditions:
        cond: dict[str, dict[str, Any]] = {}
        for item in conditions:
            values = item.get("values") or []
            cond.setdefault(item["test"], {})[item["variable"]] = (
                values[0] if len(values) == 1 else values
            )
        out["Condition"] = cond
    return out


def render_policy_document(args: Mapping[str, Any]) -> dict[str, Any]:
    """Render ``aws.iam.get_policy_document`` arguments (plain data, camelCase) as the
    IAM JSON document."""
    document: dict[str, Any] = {"Version": args.get("version") or "2012-10-17"}
    if args.get("policyId"):
        document["Id"] = args["policyId"]
    document["Statement"] = [_statement(s) for s in args.get("statements") or []]
    return document


@CALLS.register("aws:ecr/getAuthorizationToken:getAuthorizationToken")
def ecr_authorization_token(c: FakeCall) -> dict[str, Any]:
    """A registry login (user ``AWS`` and a token that looks like one, never a real one)."""
    registry = c.args.get("registryId") or c.account
    token = hex_digest(f"ecr-token::{registry}", 64)
    return {
        "id": c.region,
        "registryId": registry,
        "userName": "AWS",
        "password": token,
        "authorizationToken": token,
        "proxyEndpoint": f"https://{registry}.dkr.ecr.{c.region}.amazonaws.com",
        "expiresAt": "2026-01-01T12:00:00Z",
    }
