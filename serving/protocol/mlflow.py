"""MLflow's scoring format (``/invocations``): ``dataframe_split``, ``dataframe_records``,
``inputs`` and ``instances`` in; ``{"predictions": ...}`` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.protocol.convert import assemble_columns, json_column, refuse_repeats
from serving.protocol.types import NAMES_PER_FIELD, ColumnSpec, Decoded, Prediction, ProtocolError
from serving.protocol.v2 import json_ready, v2_datatype

#: The scoring format's top-level keys; a request carries exactly one.
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


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
            f"request body must be a JSON object with one of {', '.join(MLFLOW_KEYS)}"
        )
    keys = [k for k in MLFLOW_KEYS if k in body]
    others = [k for k in body if k not in MLFLOW_KEYS and k != "params"]
    if len(keys) != 1 or others:
        bad = others[0] if others else ", ".join(keys) or "none"
        raise ProtocolError(
            f"request must have exactly one of {', '.join(MLFLOW_KEYS)} (got: {bad})"
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
        refuse_repeats(cols, "'dataframe_split.columns' names column {!r} more than once")
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
    given = {n: json_column(by_name[n], v) if n in by_name else np.empty(0) for n, v in raw.items()}
    return Decoded(assemble_columns(given, columns, rows, "column"), rows)


def encode_mlflow_response(prediction: Prediction) -> dict[str, Any]:
    """Build ``{"predictions": ...}`` as MLflow's scoring server does (records for frames)."""
    outs = prediction.outputs
    if prediction.tabular:
        cols = {n: json_ready(a)[1] for n, a in outs.items()}
        rows = len(next(iter(outs.values()))) if outs else 0
        return {"predictions": [{n: cols[n][i] for n in cols} for i in range(rows)]}
    if len(outs) == 1:
        (arr,) = outs.values()
        return {"predictions": _mlflow_values(arr)}
    # Several named outputs: MLflow answers {"predictions": {name: [...]}}.
    return {"predictions": {n: _mlflow_values(a) for n, a in outs.items()}}


def _mlflow_values(arr: np.ndarray) -> Any:
    return arr if v2_datatype(arr.dtype) not in ("BYTES", "FP16") else arr.tolist()
