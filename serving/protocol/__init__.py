"""Open Inference Protocol (V2, REST/JSON) and MLflow scoring codecs: pure functions, no HTTP.

Requests are decoded against a model's column schema (``ColumnSpec``) into one 1-D
numpy array per column, so a bad request is refused here, before it is queued.
Every refusal is a ``ProtocolError`` whose message names the offending field and
what is allowed; the HTTP layer turns it into a 400. ``types`` holds the vocabulary,
``convert`` the safe conversions of JSON values to columns, ``v2`` and ``mlflow``
the two codecs.
"""

from __future__ import annotations

from serving.protocol.mlflow import decode_mlflow_request, encode_mlflow_response
from serving.protocol.types import (
    COLUMN_TYPES,
    MAX_RANK,
    NAMES_PER_FIELD,
    V2_DTYPES,
    ColumnSpec,
    Decoded,
    OutputSpec,
    Prediction,
    ProtocolError,
    TooManyRows,
)
from serving.protocol.v2 import (
    SERVER_NAME,
    SERVER_VERSION,
    decode_v2_request,
    encode_v2_response,
    model_metadata,
    server_metadata,
    v2_datatype,
)

__all__ = [
    "COLUMN_TYPES",
    "MAX_RANK",
    "NAMES_PER_FIELD",
    "SERVER_NAME",
    "SERVER_VERSION",
    "V2_DTYPES",
    "ColumnSpec",
    "Decoded",
    "OutputSpec",
    "Prediction",
    "ProtocolError",
    "TooManyRows",
    "decode_mlflow_request",
    "decode_v2_request",
    "encode_mlflow_response",
    "encode_v2_response",
    "model_metadata",
    "server_metadata",
    "v2_datatype",
]
