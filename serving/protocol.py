"""Open Inference Protocol (V2, REST/JSON) and MLflow scoring codecs: pure functions, no HTTP.

Requests are decoded against a model's column schema (``ColumnSpec``) into one 1-D
numpy array per column, so a bad request is refused here, before it is queued.
Every refusal is a ``ProtocolError`` whose message names the offending field and
what is allowed; the HTTP layer turns it into a 400.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SERVER_NAME = "mlplatform-serving"
SERVER_VERSION = "0.1.0"

#: MLflow column type -> (numpy dtype the model sees, V2 datatype reported in metadata).
COLUMN_TYPES: dict[str, tuple[np.dtype[Any], str]] = {
    "boolean": (np.dtype(np.bool_), "BOOL"),
    "integer": (np.dtype(np.int32), "INT32"),
    "long": (np.dtype(np.int64), "INT64"),
    "float": (np.dtype(np.float32), "FP32"),
    "double": (np.dtype(np.float64), "FP64"),
    "string": (np.dtype(object), "BYTES"),
    "binary": (np.dtype(object), "BYTES"),
    "datetime": (np.dtype("datetime64[ns]"), "BYTES"),
}
#: V2 datatype -> numpy dtype (BYTES travels as JSON strings).
V2_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(t)
    for name, t in {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
        "BYTES": object,
    }.items()
}
_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: Names a request may give per field (tensors, outputs, columns, record keys), as a
#: multiple of what the model's signature has: room to name an extra or repeated one
#: in the error, while 40,000 names (24 s of checks once) are refused before any work.
NAMES_PER_FIELD = 2
#: Outputs a V2 request may select when the model lists none (it always lists one here).
MAX_UNLISTED_OUTPUTS = 8
#: Dimensions of a V2 input tensor at most: [N], [N, 1] or [N, C].
MAX_RANK = 2
_NOT_SCALAR = "each row must hold one scalar value, not a list"


class ProtocolError(ValueError):
    """A request that does not fit the protocol or the model's schema (HTTP 400)."""


class TooManyRows(ProtocolError):
    """A valid request with more rows than one request may carry (HTTP 413)."""


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of a model signature: name, MLflow type and whether it is required."""

    name: str
    type: str
    required: bool = True

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype the column has in the frame handed to the model."""
        return COLUMN_TYPES[self.type][0]

    @property
    def datatype(self) -> str:
        """The V2 datatype reported for the column in model metadata."""
        return COLUMN_TYPES[self.type][1]


@dataclass(frozen=True)
class OutputSpec:
    """One model output as reported in metadata: name, V2 datatype and shape (-1 = any)."""

    name: str
    datatype: str
    shape: tuple[int, ...] = (-1,)


@dataclass(frozen=True)
class Decoded:
    """A decoded request: one 1-D array per signature column (signature order) and its rows."""

    columns: dict[str, np.ndarray]
    rows: int
    request_id: str | None = None
    outputs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Prediction:
    """One request's share of a batch's output: named arrays whose first axis is the rows.

    ``tabular`` is true when the model returned a DataFrame, so ``/invocations`` answers
    with records (as MLflow's scoring server does) rather than a plain list.
    """

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    tabular: bool = False


# ---------------------------------------------------------------- value conversion
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


def _as_dtype(
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


def _json_column(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    """Convert one column of JSON values (MLflow formats) to the column's dtype.

    Each row must hold one scalar: nested lists are refused with a ``ProtocolError``
    naming the column, so they never reach a batch.
    """
    what = f"column {spec.name!r}"
    dtype = spec.dtype if spec.dtype.kind in "bifu" else np.dtype(object)
    label = f"type {spec.type}" if spec.dtype.kind in "bifu" else spec.type
    arr = _as_dtype(what, values, dtype, label, max_depth=1, too_deep=_NOT_SCALAR)
    if arr.ndim != 1:
        raise ProtocolError(f"{what}: {_NOT_SCALAR}")
    return arr if spec.dtype.kind in "bifu" else _column_from_strings(what, arr, spec)


def _tensor_to_column(what: str, arr: np.ndarray, datatype: str, spec: ColumnSpec) -> np.ndarray:
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


def _assemble(
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


# ---------------------------------------------------------------- V2 requests
def _shape_of(what: str, shape: Any) -> list[int]:
    # Checked first: a long shape's product is a huge integer, costly to compute.
    if isinstance(shape, list) and len(shape) > MAX_RANK:
        raise ProtocolError(
            f"{what}: 'shape' has {len(shape)} dimensions; inputs are [N], [N, 1] or [N, C] tensors"
        )
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ProtocolError(f"{what}: 'shape' must be a non-empty list of non-negative integers")
    return shape


def _decode_tensor(index: int, tensor: Any) -> tuple[str, str, np.ndarray]:
    if not isinstance(tensor, dict):
        raise ProtocolError(f"inputs[{index}] must be an object with name, shape, datatype, data")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"inputs[{index}]: 'name' must be a non-empty string")
    what = f"input {name!r}"
    for key in ("shape", "datatype", "data"):
        if key not in tensor:
            raise ProtocolError(f"{what}: missing field {key!r}")
    datatype = tensor["datatype"]
    if not isinstance(datatype, str) or datatype not in V2_DTYPES:
        raise ProtocolError(f"{what}: datatype {datatype!r} is not one of {', '.join(V2_DTYPES)}")
    shape = _shape_of(what, tensor["shape"])
    if shape[0] == 0 or 0 in shape:
        raise ProtocolError(f"{what}: empty input (shape {shape}); send at least one row")
    data = tensor["data"]
    if not isinstance(data, list):
        raise ProtocolError(f"{what}: 'data' must be a list (flat or nested row-major)")
    arr = _as_dtype(
        what,
        data,
        V2_DTYPES[datatype],
        f"datatype {datatype}",
        max_depth=MAX_RANK,
        too_deep=f"'data' is nested more than {MAX_RANK} levels deep (row-major rows of values)",
    )
    needed = math.prod(shape)  # Python ints: a huge shape cannot wrap around
    if arr.size != needed:
        raise ProtocolError(f"{what}: shape {shape} needs {needed} values, data has {arr.size}")
    return name, datatype, arr.reshape(shape)


def decode_v2_request(
    body: Any, columns: Sequence[ColumnSpec], output_names: Sequence[str] = ()
) -> Decoded:
    """Decode a V2 inference request body against the model's ``columns``.

    Accepts one tensor per column (shape ``[N]`` or ``[N, 1]``) or a single 2-D tensor
    ``[N, C]`` whose columns follow the signature order. ``id`` is echoed, ``outputs``
    (if given) must name outputs in ``output_names`` (when that is non-empty) and
    ``parameters`` must be an object. Raises ``ProtocolError`` naming the bad field.
    """
    if not isinstance(body, dict):
        raise ProtocolError("request body must be a JSON object with an 'inputs' list")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("'inputs' must be a non-empty list of tensors")
    if len(inputs) > NAMES_PER_FIELD * len(columns):
        raise ProtocolError(
            f"'inputs' has {len(inputs)} tensors; at most {NAMES_PER_FIELD * len(columns)} "
            f"are accepted (the model takes {', '.join(c.name for c in columns)})"
        )
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string")
    if "parameters" in body and not isinstance(body["parameters"], dict | None):
        raise ProtocolError("'parameters' must be an object")
    wanted = _requested_outputs(body.get("outputs"), output_names)
    tensors = [_decode_tensor(i, t) for i, t in enumerate(inputs)]
    _refuse_repeats((t[0] for t in tensors), "input {!r} is given more than once")

    by_name = {c.name: c for c in columns}
    if (
        len(tensors) == 1
        and tensors[0][2].ndim == 2
        and (tensors[0][0] not in by_name or tensors[0][2].shape[1] == len(columns) > 1)
    ):
        name, datatype, arr = tensors[0]
        if arr.shape[1] != len(columns):
            raise ProtocolError(
                f"input {name!r}: shape {list(arr.shape)} has {arr.shape[1]} columns, the model "
                f"expects {len(columns)} ({', '.join(c.name for c in columns)})"
            )
        given = {
            c.name: _tensor_to_column(f"input {name!r} column {i}", arr[:, i], datatype, c)
            for i, c in enumerate(columns)
        }
        return Decoded(given, arr.shape[0], request_id, wanted)

    given: dict[str, np.ndarray] = {}
    rows: int | None = None
    for name, datatype, arr in tensors:
        what = f"input {name!r}"
        if name not in by_name:
            raise ProtocolError(
                f"unexpected input {name!r}; the model expects: "
                f"{', '.join(c.name for c in columns)} (or one [N, {len(columns)}] tensor)"
            )
        if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] != 1):
            raise ProtocolError(f"{what}: shape {list(arr.shape)} must be [N] or [N, 1]")
        if rows is not None and arr.shape[0] != rows:
            raise ProtocolError(f"{what}: has {arr.shape[0]} rows, other inputs have {rows}")
        rows = arr.shape[0]
        given[name] = _tensor_to_column(what, arr.reshape(-1), datatype, by_name[name])
    assert rows is not None
    return Decoded(_assemble(given, columns, rows, "input"), rows, request_id, wanted)


def _refuse_repeats(names: Iterable[str], message: str) -> None:
    """Raise ``ProtocolError(message.format(name))`` for the first name seen twice (linear)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ProtocolError(message.format(name))
        seen.add(name)


def _requested_outputs(raw: Any, output_names: Sequence[str]) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ProtocolError("'outputs' must be a list of objects with a 'name'")
    # Each output at most once: more entries than the model has outputs cannot be valid.
    limit = NAMES_PER_FIELD * (len(output_names) or MAX_UNLISTED_OUTPUTS)
    if len(raw) > limit:
        raise ProtocolError(f"'outputs' names {len(raw)} outputs; at most {limit} are accepted")
    if not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in raw):
        raise ProtocolError("'outputs' must be a list of objects with a 'name'")
    names = tuple(o["name"] for o in raw)
    _refuse_repeats(names, "output {!r} is requested more than once")
    known = set(output_names)
    unknown = [n for n in names if known and n not in known]
    if unknown:
        raise ProtocolError(
            f"unknown output {unknown[0]!r}; the model has: {', '.join(output_names)}"
        )
    return names


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """Return the V2 datatype for a numpy dtype (anything non-numeric travels as BYTES)."""
    for name, candidate in V2_DTYPES.items():
        if name != "BYTES" and candidate == dtype:
            return name
    return "BYTES"


def _json_ready(arr: np.ndarray) -> tuple[str, Any]:
    datatype = v2_datatype(arr.dtype)
    if datatype == "BYTES":
        return datatype, [v.decode() if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)]
    if datatype == "FP16":  # orjson cannot write float16
        return datatype, arr.astype(np.float32).reshape(-1)
    return datatype, np.ascontiguousarray(arr).reshape(-1)


def encode_v2_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    prediction: Prediction,
    wanted: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build the V2 response object; numpy data is left for ``orjson.OPT_SERIALIZE_NUMPY``."""
    outputs = []
    for name, arr in prediction.outputs.items():
        if wanted is not None and name not in wanted:
            continue
        datatype, data = _json_ready(arr)
        outputs.append({"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data})
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = outputs
    return response


# ---------------------------------------------------------------- MLflow scoring format
def _rows_to_columns(rows: Any, names: Sequence[str], where: str) -> dict[str, list[Any]]:
    if not isinstance(rows, list):
        raise ProtocolError(f"'{where}' must be a list of rows")
    out: dict[str, list[Any]] = {n: [] for n in names}
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            raise ProtocolError(
                f"'{where}' row {i} must be a list of {len(names)} values ({', '.join(names)})"
            )
        for n, v in zip(names, row, strict=True):
            out[n].append(v)
    return out


def _records_to_columns(records: list[Any], where: str) -> dict[str, list[Any]]:
    if not all(isinstance(r, dict) for r in records):
        raise ProtocolError(f"'{where}' must be a list of objects (column -> value)")
    keys = list(records[0])
    key_set = set(keys)
    out: dict[str, list[Any]] = {k: [] for k in keys}
    for i, record in enumerate(records):
        if len(record) != len(keys) or record.keys() != key_set:
            diff = sorted(key_set ^ set(record))
            raise ProtocolError(f"'{where}' record {i} differs from record 0 in field {diff[0]!r}")
        for k in keys:
            out[k].append(record[k])
    return out


def _check_column_count(where: str, count: int, columns: Sequence[ColumnSpec]) -> None:
    # A request naming more columns than the signature has cannot be valid: refuse it
    # before any per-name work (40,000 names once took 24 s of quadratic checks).
    if count > NAMES_PER_FIELD * len(columns):
        raise ProtocolError(
            f"'{where}' names {count} columns; at most {NAMES_PER_FIELD * len(columns)} are "
            f"accepted (the model has {', '.join(c.name for c in columns)})"
        )


def decode_mlflow_request(body: Any, columns: Sequence[ColumnSpec]) -> Decoded:
    """Decode an MLflow ``/invocations`` JSON body against the model's ``columns``.

    Exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
    ``inputs``; ``params`` is not supported (the served models take none). Raises
    ``ProtocolError`` naming the bad key, column or row.
    """
    if not isinstance(body, dict):
        raise ProtocolError(
            f"request body must be a JSON object with one of {', '.join(_MLFLOW_KEYS)}"
        )
    keys = [k for k in _MLFLOW_KEYS if k in body]
    others = [k for k in body if k not in _MLFLOW_KEYS and k != "params"]
    if len(keys) != 1 or others:
        bad = others[0] if others else ", ".join(keys) or "none"
        raise ProtocolError(
            f"request must have exactly one of {', '.join(_MLFLOW_KEYS)} (got: {bad})"
        )
    if body.get("params"):
        raise ProtocolError("'params' is not supported by this model")
    key = keys[0]
    payload = body[key]
    names = [c.name for c in columns]
    if key == "dataframe_split":
        if not isinstance(payload, dict) or "data" not in payload:
            raise ProtocolError("'dataframe_split' must be an object with 'columns' and 'data'")
        cols = payload.get("columns", names)
        if not isinstance(cols, list):
            raise ProtocolError("'dataframe_split.columns' must be a list of column names")
        _check_column_count("dataframe_split.columns", len(cols), columns)
        if not all(isinstance(c, str) for c in cols):
            raise ProtocolError("'dataframe_split.columns' must be a list of column names")
        _refuse_repeats(cols, "'dataframe_split.columns' names column {!r} more than once")
        raw = _rows_to_columns(payload["data"], cols, "dataframe_split.data")
    elif isinstance(payload, dict):  # instances / inputs as {column: [values]}
        _check_column_count(key, len(payload), columns)
        raw = {k: v if isinstance(v, list) else [v] for k, v in payload.items()}
    elif not isinstance(payload, list) or not payload:
        raise ProtocolError(f"'{key}' must be a non-empty list")
    elif isinstance(payload[0], dict):
        _check_column_count(f"{key}[0]", len(payload[0]), columns)
        raw = _records_to_columns(payload, key)
    else:
        raw = _rows_to_columns(payload, names, key)
    lengths = {len(v) for v in raw.values()}
    if not raw or lengths == {0}:
        raise ProtocolError(f"'{key}' is empty; send at least one row")
    if len(lengths) != 1:
        raise ProtocolError(f"'{key}': columns have different lengths")
    rows = lengths.pop()
    by_name = {c.name: c for c in columns}
    given = {
        n: _json_column(by_name[n], v) if n in by_name else np.empty(0) for n, v in raw.items()
    }
    return Decoded(_assemble(given, columns, rows, "column"), rows)


def encode_mlflow_response(prediction: Prediction) -> dict[str, Any]:
    """Build ``{"predictions": ...}`` as MLflow's scoring server does (records for frames)."""
    outs = prediction.outputs
    if prediction.tabular:
        cols = {n: _json_ready(a)[1] for n, a in outs.items()}
        rows = len(next(iter(outs.values()))) if outs else 0
        return {"predictions": [{n: cols[n][i] for n in cols} for i in range(rows)]}
    if len(outs) == 1:
        (arr,) = outs.values()
        return {"predictions": _mlflow_values(arr)}
    # Several named outputs: MLflow answers {"predictions": {name: [...]}}.
    return {"predictions": {n: _mlflow_values(a) for n, a in outs.items()}}


def _mlflow_values(arr: np.ndarray) -> Any:
    return arr if v2_datatype(arr.dtype) not in ("BYTES", "FP16") else arr.tolist()


# ---------------------------------------------------------------- metadata
def server_metadata() -> dict[str, Any]:
    """Return the V2 server metadata object (``GET /v2``)."""
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []}


def model_metadata(
    name: str,
    version: str,
    platform: str,
    inputs: Sequence[ColumnSpec],
    outputs: Sequence[OutputSpec],
) -> dict[str, Any]:
    """Return the V2 model metadata object (``GET /v2/models/{name}``)."""
    return {
        "name": name,
        "versions": [version],
        "platform": platform,
        "inputs": [{"name": c.name, "datatype": c.datatype, "shape": [-1]} for c in inputs],
        "outputs": [
            {"name": o.name, "datatype": o.datatype, "shape": list(o.shape)} for o in outputs
        ],
    }
