"""The notation the offline checks of custom resources and Helm values are written in.

There is no cluster or chart repository in the tests, so what the platform hands to the
Kubernetes API or to Helm is checked against layouts read by hand from the CRDs and the
charts' ``values.yaml`` at the pinned versions (each ``*_layout`` module names its sources):

* a CRD's structural schema is written as ``Obj``/``Arr``/``Map``/``Str``/... and
  ``problems(value, schema)`` reports every unknown or misspelt field, missing required
  field, wrong type, value outside an enum, pattern mismatch and integer out of bounds;
* a chart's documented values are written as a ``Layout`` and ``values_problems(values,
  layout)`` reports every key the chart does not document.

The CRDs' CEL rules (``x-kubernetes-validations``) and ``maxItems``/``maxProperties`` are
not evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True)
class Str:
    """A string; ``enum`` lists the allowed values, ``pattern`` is the CRD's regex.

    As in OpenAPI, the pattern is not implicitly anchored (``re.search``).
    """

    enum: tuple[str, ...] | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) with optional inclusive bounds."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Num:
    """A number (integer or float, not a bool)."""


@dataclass(frozen=True)
class Bool:
    """A boolean."""


@dataclass(frozen=True)
class IntOrStr:
    """``x-kubernetes-int-or-string``: an integer or a string (a resource quantity)."""


Quantity = IntOrStr
"""Resource quantities (``limits``) are int-or-string in the CRDs."""


@dataclass(frozen=True)
class AnyValue:
    """Anything (``x-kubernetes-preserve-unknown-fields``)."""


@dataclass(frozen=True)
class Arr:
    """A list whose items all follow ``item``."""

    item: Schema


@dataclass(frozen=True)
class Map:
    """An object with free keys (``additionalProperties``) whose values follow ``value``."""

    value: Schema


@dataclass(frozen=True)
class Obj:
    """An object with the listed ``fields`` only; ``required`` names the mandatory ones."""

    fields: Mapping[str, Schema]
    required: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = self.required - set(self.fields)
        assert not unknown, f"required fields not in fields: {sorted(unknown)}"


Schema = Str | Int | Num | Bool | IntOrStr | AnyValue | Arr | Map | Obj


def req(*names: str) -> frozenset[str]:
    return frozenset(names)


def type_name(value: object) -> str:
    return type(value).__name__


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(value: object, schema: Schema, path: str = "") -> list[str]:
    """Every way ``value`` departs from ``schema``, each message starting with its dotted path.

    Reports unknown fields, missing required fields, wrong types, values outside an enum,
    strings not matching the pattern and integers out of bounds. List items are named
    ``path[i]``. A ``None`` value is reported as a wrong type: no field of these CRDs is
    ``nullable``.
    """
    where = path or "<root>"
    if isinstance(schema, AnyValue):
        return []
    if isinstance(schema, Str):
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type_name(value)}"]
        if schema.enum is not None and value not in schema.enum:
            allowed = ", ".join(schema.enum)
            return [f"{where}: {value!r} is not one of [{allowed}]"]
        if schema.pattern is not None and not re.search(schema.pattern, value):
            return [f"{where}: {value!r} does not match {schema.pattern!r}"]
        return []
    if isinstance(schema, Int):
        if not is_int(value):
            return [f"{where}: expected an integer, got {type_name(value)}"]
        assert isinstance(value, int)
        if schema.minimum is not None and value < schema.minimum:
            return [f"{where}: {value} is below the minimum {schema.minimum}"]
        if schema.maximum is not None and value > schema.maximum:
            return [f"{where}: {value} is above the maximum {schema.maximum}"]
        return []
    if isinstance(schema, Num):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{where}: expected a number, got {type_name(value)}"]
        return []
    if isinstance(schema, Bool):
        if not isinstance(value, bool):
            return [f"{where}: expected a boolean, got {type_name(value)}"]
        return []
    if isinstance(schema, IntOrStr):
        if not (is_int(value) or isinstance(value, str)):
            return [f"{where}: expected an integer or a string, got {type_name(value)}"]
        return []
    if isinstance(schema, Arr):
        if not isinstance(value, list | tuple):
            return [f"{where}: expected a list, got {type_name(value)}"]
        found: list[str] = []
        for i, item in enumerate(value):
            found += problems(item, schema.item, f"{path}[{i}]")
        return found
    if not isinstance(value, Mapping):
        return [f"{where}: expected an object, got {type_name(value)}"]
    found = []
    if isinstance(schema, Map):
        for key, item in value.items():
            if not isinstance(key, str):
                found.append(f"{where}: key {key!r} is not a string")
                continue
            found += problems(item, schema.value, join(path, key))
        return found
    for key, item in value.items():
        if key not in schema.fields:
            found.append(f"{join(path, str(key))}: unknown field")
        else:
            found += problems(item, schema.fields[key], join(path, key))
    for key in sorted(schema.required):
        if key not in value:
            found.append(f"{join(path, key)}: required field is missing")
    return found


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


Layout: TypeAlias = Mapping[str, "Layout | Set[str] | None"]
"""A chart's documented values: each key maps to what lies under it.

* ``None``: a leaf, or a free-form object (Kubernetes placement, resources, annotations,
  labels, env lists...) whose contents the chart passes through and the check does not open;
* a set of names: an object whose own keys are exactly those, each treated as a leaf;
* a nested layout: an object checked key by key in turn.
"""


def values_problems(
    values: Mapping[str, object],
    documented: Layout,
    *,
    chart: str = "the chart",
    notes: Mapping[str, str] | None = None,
    _prefix: str = "",
) -> list[str]:
    """Every key in ``values`` that ``documented`` does not list, as ``"dotted.path: ..."``.

    ``chart`` names the chart and version in the messages; ``notes`` adds a reason to a
    known-wrong path (``{"webhook": "removed from the chart in 1.1.0"}``). Only objects the
    layout opens (a set or a nested layout) are looked into, and a value there that is not
    a mapping (or null) is reported.
    """
    found: list[str] = []
    for key, value in values.items():
        path = f"{_prefix}{key}"
        if key not in documented:
            note = (notes or {}).get(path)
            found.append(f"{path}: not a key {chart} documents" + (f" ({note})" if note else ""))
            continue
        below = documented[key]
        if below is None or value is None:
            continue
        if not isinstance(value, Mapping):
            found.append(f"{path}: expected an object, got {type_name(value)}")
            continue
        if isinstance(below, Set):
            found.extend(
                f"{path}.{sub}: not a key {chart} documents" for sub in value if sub not in below
            )
        else:
            found.extend(
                values_problems(value, below, chart=chart, notes=notes, _prefix=f"{path}.")
            )
    return found


# Charts that copy `securityContext` / `podSecurityContext` verbatim into the pod spec accept
# the keys of the Kubernetes core/v1 objects. Nested objects stay opaque.
CONTAINER_SECURITY_CONTEXT: frozenset[str] = frozenset(
    {
        "allowPrivilegeEscalation",
        "appArmorProfile",
        "capabilities",
        "privileged",
        "procMount",
        "readOnlyRootFilesystem",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxOptions",
        "seccompProfile",
        "windowsOptions",
    }
)
POD_SECURITY_CONTEXT: frozenset[str] = frozenset(
    {
        "appArmorProfile",
        "fsGroup",
        "fsGroupChangePolicy",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxChangePolicy",
        "seLinuxOptions",
        "seccompProfile",
        "supplementalGroups",
        "supplementalGroupsPolicy",
        "sysctls",
        "windowsOptions",
    }
)
