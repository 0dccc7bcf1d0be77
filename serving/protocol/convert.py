"""Safe conversions of JSON values to typed numpy columns: linear, bounded, never recursive.

Every refusal is a ``ProtocolError`` naming the field and what is allowed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from serving.protocol.types import NOT_SCALAR, V2_DTYPES, ColumnSpec, ProtocolError


def _check_int_range(what: str, arr: np.ndarray, dtype: np.dtype[Any]) -> None:
    info = np.iinfo(dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ProtocolError(
            f"{what}: values out of range for {dtype.name} ({info.min}..{info.max})"
        )


def _scan(what: str, values: list[Any], max_depth: int, too_deep: str) -> bool:
    """True if a (nested) JSON list holds a boolean; refuse nesting deeper than ``max_depth``.

    Iterative, so data nested up to orjson's own 1024 levels cannot exhaust the
    recursion limit (a ``RecursionError`` there was a 500 with a 142 KB traceback per
    request); each list is visited once and the check per list runs at C speed.
    """
    has_bool = False
    stack = [(values, 1)]
    while stack:
        current, depth = stack.pop()
        kinds = set(map(type, current))
        has_bool = has_bool or bool in kinds
        if list in kinds:
            if depth >= max_depth:
                raise ProtocolError(f"{what}: {too_deep}")
            stack.extend((v, depth + 1) for v in current if type(v) is list)
    return has_bool


def as_dtype(
    what: str, values: Any, dtype: np.dtype[Any], label: str, *, max_depth: int, too_deep: str
) -> np.ndarray:
    """Convert JSON ``values`` to ``dtype``, refusing anything lossy or of the wrong kind.

    ``values`` may nest lists ``max_depth`` levels deep at most (``too_deep`` says why not).
    """
    # numpy reads [1, true] as [1, 1]: a boolean among numbers must be refused first.
    has_bool = isinstance(values, list) and _scan(what, values, max_depth, too_deep)
    if dtype.kind in "iuf" and has_bool:
        raise ProtocolError(f"{what}: {label} expects {_expected(dtype)}, got booleans")
    try:
        raw = np.asarray(values)
    except (ValueError, TypeError):
        raise ProtocolError(f"{what}: data is ragged or not a list of values") from None
    if raw.dtype == dtype and dtype.kind in "biuf":
        return raw  # already exact (the common FP64/INT64 request): nothing to check or cast
    kind = raw.dtype.kind
    if dtype.kind == "b":
        ok = kind == "b"
    elif dtype.kind in "iu":
        ok = kind in "iu"
    elif dtype.kind == "f":
        ok = kind in "iuf"
    else:  # BYTES / string-like
        ok = kind == "U"
    if not ok:
        found = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers", "U": "strings"}
        raise ProtocolError(
            f"{what}: {label} expects {_expected(dtype)}, "
            f"got {found.get(kind, 'nulls or mixed values')}"
        )
    if dtype.kind in "iu":
        _check_int_range(what, raw, dtype)
    if dtype.kind == "f" and raw.size:
        finite = np.isfinite(raw).all()
        with np.errstate(over="ignore"):
            out = raw.astype(dtype)
        if finite and not np.isfinite(out).all():
            raise ProtocolError(f"{what}: values out of range for {dtype.name}")
        return out
    return raw.astype(dtype)


def _expected(dtype: np.dtype[Any]) -> str:
    return {"b": "booleans", "i": "integers", "u": "non-negative integers", "f": "numbers"}.get(
        dtype.kind, "strings"
    )


def _column_from_strings(what: str, arr: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    if spec.type == "binary":
        try:
            return np.array([base64.b64decode(s, validate=True) for s in arr], dtype=object)
        except (binascii.Error, ValueError):
            raise ProtocolError(f"{what}: binary column expects base64-encoded strings") from None
    if spec.type == "datetime":
        try:
            return arr.astype("datetime64[ns]")
        except ValueError:
            raise ProtocolError(f"{what}: datetime column expects ISO 8601 strings") from None
    return arr.astype(object)


def json_column(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    """Convert one column of JSON values (MLflow formats) to the column's dtype.

    Each row must hold one scalar: nested lists are refused with a ``ProtocolError``
    naming the column, so they never reach a batch.
    """
    what = f"column {spec.name!r}"
    dtype = spec.dtype if spec.dtype.kind in "bifu" else np.dtype(object)
    label = f"type {spec.type}" if spec.dtype.kind in "bifu" else spec.type
    arr = as_dtype(what, values, dtype, label, max_depth=1, too_deep=NOT_SCALAR)
    if arr.ndim != 1:
        raise ProtocolError(f"{what}: {NOT_SCALAR}")
    return arr if spec.dtype.kind in "bifu" else _column_from_strings(what, arr, spec)


def tensor_to_column(what: str, arr: np.ndarray, datatype: str, spec: ColumnSpec) -> np.ndarray:
    """Cast a decoded V2 tensor column to the signature column type, only if that is safe."""
    src = V2_DTYPES[datatype]
    if src == spec.dtype and src.kind in "biuf":
        return arr  # the hot path: the client sent the column's own numeric type
    if spec.type in ("string", "binary", "datetime"):
        ok = datatype == "BYTES"
    elif spec.type == "boolean":
        ok = datatype == "BOOL"
    else:
        ok = datatype not in ("BOOL", "BYTES") and np.can_cast(src, spec.dtype, "safe")
    if not ok:
        raise ProtocolError(
            f"{what}: datatype {datatype} cannot be converted safely to column "
            f"{spec.name!r} of type {spec.type} (send {spec.datatype})"
        )
    if datatype == "BYTES":
        return _column_from_strings(what, arr, spec)
    return arr.astype(spec.dtype, copy=False)


def _missing_fill(spec: ColumnSpec, rows: int) -> np.ndarray:
    # Optional columns may be omitted; the model sees missing values for them.
    if spec.dtype.kind == "f":
        return np.full(rows, np.nan, dtype=spec.dtype)
    return np.full(rows, None, dtype=object)


def assemble_columns(
    given: Mapping[str, np.ndarray], columns: Sequence[ColumnSpec], rows: int, noun: str
) -> dict[str, np.ndarray]:
    known = {c.name for c in columns}
    extra = [n for n in given if n not in known]
    if extra:
        raise ProtocolError(
            f"unexpected {noun} {extra[0]!r}; "
            f"the model expects: {', '.join(c.name for c in columns)}"
        )
    missing = [c.name for c in columns if c.required and c.name not in given]
    if missing:
        raise ProtocolError(
            f"missing {noun} {missing[0]!r}; the model expects: "
            f"{', '.join(c.name for c in columns)}"
        )
    return {c.name: given[c.name] if c.name in given else _missing_fill(c, rows) for c in columns}


def refuse_repeats(names: Iterable[str], message: str) -> None:
    """Raise ``ProtocolError(message.format(name))`` for the first name seen twice (linear)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ProtocolError(message.format(name))
        seen.add(name)
