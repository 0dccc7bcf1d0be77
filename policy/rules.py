"""The mlplatform policy rules: pure functions over (resource type, camelCase props).

Each rule is written once and used three ways: by the CrossGuard pack
(``policy/__main__.py``, run by ``pulumi preview --policy-pack policy``), by the
offline plan (``python -m infra.plan``, evaluated in ``infra.offline.report``) and by
the tests. Props use the names the Pulumi
engine uses (the ``args.props`` a ``ResourceValidationPolicy`` sees). Values not
known during a preview are "cannot judge" and never produce a finding.

Entry points:

- ``check_resource(type, props)``: findings of the per-resource rules.
- ``check_stack(resources)``: findings of the rules that need several resources
  (a VPC and its flow log, a bucket and its encryption/versioning/... resources).
- ``evaluate(resources)``: both, over a whole stack; what the offline plan calls
  (``infra.offline.report.evaluate_policies``).

Importing this module never starts a policy server.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from policy import (
    rules_capacity,
    rules_data,
    rules_eks,
    rules_iam,
    rules_inference,
    rules_k8s,
    rules_mesh,
    rules_network,
    rules_nodes,
    rules_observability,
    rules_s3,
    rules_vault,
)
from policy.rules_base import (
    UNKNOWN_SENTINELS,
    Aliases,
    Finding,
    Level,
    ResourceRule,
    Resources,
    StackRule,
)

__all__ = [
    "RESOURCE_RULES",
    "STACK_RULES",
    "UNKNOWN_SENTINELS",
    "Finding",
    "Level",
    "ResourceRule",
    "StackRule",
    "all_rules",
    "check_resource",
    "check_stack",
    "evaluate",
]

RESOURCE_RULES: tuple[ResourceRule, ...] = (
    *rules_eks.RULES,
    *rules_nodes.RULES,
    *rules_network.RULES,
    *rules_iam.RULES,
    *rules_k8s.RULES,
    *rules_capacity.RULES,
    *rules_observability.RULES,
    *rules_mesh.RULES,
    *rules_inference.RULES,
    *rules_data.RULES,
    *rules_vault.RULES,
)
STACK_RULES: tuple[StackRule, ...] = (
    *rules_network.STACK_RULES,
    *rules_s3.STACK_RULES,
    *rules_capacity.STACK_RULES,
    *rules_mesh.STACK_RULES,
)

_BY_TYPE: dict[str, list[ResourceRule]] = {}
for _rule in RESOURCE_RULES:
    for _type in _rule.resource_types:
        _BY_TYPE.setdefault(_type, []).append(_rule)


def all_rules() -> list[ResourceRule | StackRule]:
    """Every rule, per-resource ones first, each listed once under its unique name."""
    return [*RESOURCE_RULES, *STACK_RULES]


def _require_props(props: Any, what: str) -> None:
    if not isinstance(props, Mapping):
        raise TypeError(f"{what} must be a mapping of camelCase property names to values")


def check_resource(resource_type: str, props: Mapping[str, Any]) -> list[Finding]:
    """Return the findings of every per-resource rule that applies to one resource.

    ``resource_type`` is the Pulumi type token (e.g. ``aws:eks/cluster:Cluster``) and
    ``props`` its inputs with the engine's camelCase names. Types no rule covers give
    an empty list. Unknown values are never findings.

    Raises TypeError when ``props`` is not a mapping.
    """
    _require_props(props, f"props of {resource_type!r}")
    findings: list[Finding] = []
    for rule in _BY_TYPE.get(resource_type, ()):
        findings.extend(Finding(rule.name, rule.level, m) for m in rule.check(resource_type, props))
    return findings


def check_stack(resources: Resources, aliases: Aliases | None = None) -> list[tuple[str, Finding]]:
    """Return (urn, finding) pairs of the stack-level rules over a whole stack.

    ``resources`` are (urn, type, camelCase props) triples. References between
    resources (a flow log's ``vpcId``, a bucket setting's ``bucket``) are matched
    against each target's urn, the name at the end of its urn, its ``id``/``arn``
    props (and a bucket's ``bucket`` name), plus ``aliases``: optional extra
    identifiers per urn, such as the physical id the engine assigned. An unknown
    reference makes the rule unable to judge, never a finding.

    Raises TypeError when a triple's props are not a mapping.
    """
    for urn, resource_type, props in resources:
        _require_props(props, f"props of {resource_type!r} ({urn})")
    extra: Mapping[str, Collection[str]] = aliases or {}
    findings: list[tuple[str, Finding]] = []
    for rule in STACK_RULES:
        findings.extend(
            (urn, Finding(rule.name, rule.level, message))
            for urn, message in rule.check(resources, extra)
        )
    return findings


def evaluate(
    resources: Sequence[tuple[str, str, Mapping[str, Any]]], aliases: Aliases | None = None
) -> list[tuple[str, Finding]]:
    """Run every rule over a stack's (urn, type, props) triples.

    Applies ``check_resource`` to each resource and ``check_stack`` once; returns
    (urn, finding) pairs, per-resource findings first in resource order. See
    ``check_stack`` for ``aliases``. Raises TypeError when props are not mappings.
    """
    findings: list[tuple[str, Finding]] = []
    for urn, resource_type, props in resources:
        findings.extend((urn, f) for f in check_resource(resource_type, props))
    findings.extend(check_stack(resources, aliases))
    return findings
