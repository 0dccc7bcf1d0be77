"""Open Inference Protocol (V2, REST/JSON): request decoding, response encoding, metadata."""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.protocol.convert import as_dtype, assemble_columns, refuse_repeats, tensor_to_column
from serving.protocol.types import (
    MAX_RANK,
    MAX_UNLISTED_OUTPUTS,
    NAMES_PER_FIELD,
    V2_DTYPES,
    ColumnSpec,
    Decoded,
    OutputSpec,
    Prediction,
    ProtocolError,
)


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
    arr = as_dtype(
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
    refuse_repeats((t[0] for t in tensors), "input {!r} is given more than once")

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
            c.name: tensor_to_column(f"input {name!r} column {i}", arr[:, i], datatype, c)
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
        given[name] = tensor_to_column(what, arr.reshape(-1), datatype, by_name[name])
    assert rows is not None
    return Decoded(assemble_columns(given, columns, rows, "input"), rows, request_id, wanted)


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
    refuse_repeats(names, "output {!r} is requested more than once")
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


def json_ready(arr: np.ndarray) -> tuple[str, Any]:
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
        datatype, data = json_ready(arr)
        outputs.append({"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data})
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = outputs
    return response


SERVER_NAME = "mlplatform-serving"


def _package_version() -> str:
    # The distribution's own version (pyproject.toml), the one place it is written; the
    # image installs its metadata (serving/image_metadata.py). "unknown" only for a bare
    # copy of the source without it.
    try:
        return importlib.metadata.version("mlplatform")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


#: What ``GET /v2`` reports as the server's version.
SERVER_VERSION = _package_version()


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
