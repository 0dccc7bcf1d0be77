"""Shared vocabulary of the policy rules: findings, rule records and value readers.

Props arrive the way the Pulumi engine sends them: camelCase keys, numbers that may
be floats or strings, booleans that may be ``"true"``/``"false"`` strings, JSON
documents as strings or objects, and values not known yet during a preview. The
readers here turn all of that into three answers, so that every rule can say
"compliant", "violation" or "cannot judge" without caring how a value was encoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pulumi.output import Unknown

Level = Literal["mandatory", "advisory"]

# The sentinels a CrossGuard analyzer puts in place of values not known during a
# preview (pulumi_policy.proxy; the string one is pulumi.runtime.rpc.UNKNOWN). They
# are repeated here so that evaluating rules never imports the gRPC policy runtime.
UNKNOWN_SENTINELS: frozenset[str] = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)

Resources = Sequence[tuple[str, str, Mapping[str, Any]]]
"""(urn, resource type, camelCase props) triples, in registration order."""

Aliases = Mapping[str, Collection[str]]
"""Extra identifiers of a resource by urn (its id, ARN, physical name), used to tell
which resource another one refers to (e.g. the VPC a flow log names by its id)."""


@dataclass(frozen=True)
class Finding:
    """One policy finding.

    ``policy`` is the rule name (kebab-case, the same name the CrossGuard pack
    registers), ``level`` is ``"mandatory"`` (blocks a deployment) or ``"advisory"``,
    and ``message`` names the offending property and what is required.
    """

    policy: str
    level: Level
    message: str


@dataclass(frozen=True)
class ResourceRule:
    """A rule judged from one resource alone.

    ``check`` receives (resource type, props) for every resource whose type is in
    ``resource_types`` and returns one message per violation (empty: compliant or
    cannot judge). ``description``, ``why`` and ``source`` document the rule.
    """

    name: str
    level: Level
    resource_types: frozenset[str]
    description: str
    why: str
    source: str
    check: Callable[[str, Mapping[str, Any]], list[str]]


def mandatory_rule(
    name: str, types: set[str], description: str, why: str, source: str, check: Any
) -> ResourceRule:
    """Return a mandatory :class:`ResourceRule` over ``types`` (the common case)."""
    return ResourceRule(name, "mandatory", frozenset(types), description, why, source, check)


@dataclass(frozen=True)
class StackRule:
    """A rule that needs several resources (e.g. a VPC and its flow log).

    ``check`` receives every resource of the stack and returns (urn, message) pairs,
    the urn being the resource that is out of policy. ``aliases`` gives extra
    identifiers per urn for linking references (see ``link_targets``).
    """

    name: str
    level: Level
    resource_types: frozenset[str]
    description: str
    why: str
    source: str
    check: Callable[[Resources, Aliases], list[tuple[str, str]]]


class _Marker:
    """A named singleton, distinct from every value a prop can hold."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<{self._name}>"


MISSING: Any = _Marker("missing")
"""The property is not set: the provider's default applies."""
UNKNOWN: Any = _Marker("unknown")
"""The property's value is not known yet: the rule cannot judge it."""


def is_unknown(value: Any) -> bool:
    """True when ``value`` is not known yet (preview sentinel, mock ``Unknown`` or null).

    A null can only reach a rule from an unresolved value: the SDKs omit unset
    inputs rather than sending null.
    """
    if value is None or value is UNKNOWN or isinstance(value, Unknown):
        return True
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def contains_unknown(text: str) -> bool:
    """True when a string embeds an unknown sentinel (an interpolated unknown)."""
    return any(sentinel in text for sentinel in UNKNOWN_SENTINELS)


def chart_name(props: Mapping[str, Any]) -> str | None:
    """The chart a Helm release installs, without its repository (``oci://.../karpenter``
    -> ``karpenter``); None when unknown."""
    chart = props.get("chart")
    return chart.rsplit("/", 1)[-1] if isinstance(chart, str) else None


def dig(value: Any, *path: str | int) -> Any:
    """Follow ``path`` (mapping keys or sequence indexes) into ``value``.

    Returns the value found, ``MISSING`` when a step is absent (or of the wrong
    shape), or ``UNKNOWN`` when the value or any step on the way is unknown.
    """
    current = value
    for step in path:
        if is_unknown(current):
            return UNKNOWN
        if isinstance(step, str) and isinstance(current, Mapping):
            if step not in current:
                return MISSING
            current = current[step]
        elif isinstance(step, int) and is_sequence(current):
            if not -len(current) <= step < len(current):
                return MISSING
            current = current[step]
        else:
            return MISSING
    return UNKNOWN if is_unknown(current) else current


def is_sequence(value: Any) -> bool:
    """True for list-like values, excluding strings and bytes."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def as_bool(value: Any) -> bool | None:
    """Read a boolean sent as a bool or as a ``"true"``/``"false"`` string.

    Returns None when the value is unknown; anything that is not a recognisable
    true counts as False, so that garbage never passes for "enabled".
    """
    if is_unknown(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return False


def as_number(value: Any) -> float | None:
    """Read a number sent as an int, a float (``7.0``) or a numeric string.

    Returns None when the value is unknown or not a number; callers that must tell
    the two apart check ``is_unknown`` first.
    """
    if is_unknown(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_list(value: Any) -> list[Any]:
    """Items of a list-like value; a single scalar counts as a one-item list.

    IAM documents allow ``"Action": "s3:*"`` as well as ``["s3:*"]``. MISSING and
    unknown values give an empty list; callers check ``is_unknown`` when it matters.
    """
    if value is MISSING or is_unknown(value):
        return []
    if is_sequence(value):
        return list(value)
    return [value]


def iter_mappings(value: Any) -> Iterator[Mapping[str, Any]]:
    """The mapping items of a list-like value, skipping unknown or malformed items."""
    for item in as_list(value):
        if isinstance(item, Mapping):
            yield item


def parse_document(value: Any) -> Mapping[str, Any] | Literal[False] | None:
    """Parse an IAM/S3 policy document sent as a JSON string or an object.

    Returns the document, None when it is unknown (cannot judge), or False when it
    is not a JSON object (the caller reports it as malformed).
    """
    if is_unknown(value):
        return None
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        if contains_unknown(value):
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            return False
        return parsed if isinstance(parsed, Mapping) else False
    return False


def statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statements of a policy document (``Statement`` may be one object or a list)."""
    return list(iter_mappings(document.get("Statement", MISSING)))


def urn_name(urn: str) -> str:
    """The resource name at the end of a Pulumi URN (``...::name``)."""
    return urn.rsplit("::", 1)[-1]


def link_refs(
    targets: Sequence[tuple[str, Mapping[str, Any]]],
    refs: Sequence[Any],
    aliases: Aliases,
    keys: tuple[str, ...] = ("id", "arn"),
) -> dict[str, list[int]] | None:
    """For each target urn, the indexes of the references in ``refs`` that point at it.

    A target is known by its urn, the name at the end of its urn, the string props
    named in ``keys`` and its ``aliases``. Returns None when any reference is unknown:
    it might point at any target, so nothing can be said to be uncovered.
    """
    if any(is_unknown(ref) for ref in refs):
        return None
    linked: dict[str, list[int]] = {}
    for urn, props in targets:
        names = {urn, urn_name(urn), *aliases.get(urn, ())}
        names.update(v for k in keys if isinstance(v := props.get(k), str))
        linked[urn] = [i for i, ref in enumerate(refs) if isinstance(ref, str) and ref in names]
    return linked


def link_targets(
    targets: Sequence[tuple[str, Mapping[str, Any]]],
    refs: Sequence[Any],
    aliases: Aliases,
    keys: tuple[str, ...] = ("id", "arn"),
) -> set[str] | None:
    """The urns of ``targets`` that some reference in ``refs`` points at (see ``link_refs``)."""
    linked = link_refs(targets, refs, aliases, keys)
    return None if linked is None else {urn for urn, hits in linked.items() if hits}
