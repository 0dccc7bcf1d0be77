"""The protocol's vocabulary: column and output specs, decoded requests, predictions, errors.

Also the column-type tables and the per-request caps the codecs enforce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
#: Names a request may give per field (tensors, outputs, columns, record keys), as a
#: multiple of what the model's signature has: room to name an extra or repeated one
#: in the error, while 40,000 names (24 s of checks once) are refused before any work.
NAMES_PER_FIELD = 2
#: Outputs a V2 request may select when the model lists none (it always lists one here).
MAX_UNLISTED_OUTPUTS = 8
#: Dimensions of a V2 input tensor at most: [N], [N, 1] or [N, C].
MAX_RANK = 2
NOT_SCALAR = "each row must hold one scalar value, not a list"


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
