"""Unit tests for the V2 and MLflow codecs: every datatype, shape and error path."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.decoding import BodyDecoder, decode_mlflow, decode_v2
from serving.protocol import (
    ColumnSpec,
    Decoded,
    OutputSpec,
    Prediction,
    ProtocolError,
    TooManyRows,
    decode_mlflow_request,
    decode_v2_request,
    encode_mlflow_response,
    encode_v2_response,
    model_metadata,
    v2_datatype,
)

COLS = (
    ColumnSpec("cpu_util", "double"),
    ColumnSpec("memory_util", "double"),
    ColumnSpec("network_mbps", "double"),
)


def tensor(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def per_column(rows: list[list[float]], datatype: str = "FP64") -> dict[str, Any]:
    return {
        "inputs": [
            tensor(c.name, datatype, [len(rows)], [r[i] for r in rows]) for i, c in enumerate(COLS)
        ]
    }


def test_v2_per_column_tensors_decode_in_signature_order() -> None:
    body = per_column([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    body["inputs"].reverse()  # order of tensors in the request does not matter
    body["id"] = "req-1"
    decoded = decode_v2_request(body, COLS)
    assert list(decoded.columns) == [c.name for c in COLS]
    assert decoded.rows == 2
    assert decoded.request_id == "req-1"
    np.testing.assert_array_equal(decoded.columns["memory_util"], [2.0, 5.0])
    assert decoded.columns["cpu_util"].dtype == np.float64


@pytest.mark.parametrize("nested", [True, False])
def test_v2_single_2d_tensor_splits_columns(nested: bool) -> None:
    rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    data = rows if nested else [v for r in rows for v in r]
    decoded = decode_v2_request({"inputs": [tensor("input", "FP32", [2, 3], data)]}, COLS)
    np.testing.assert_array_equal(decoded.columns["network_mbps"], [3.0, 6.0])
    assert decoded.columns["network_mbps"].dtype == np.float64


def test_v2_column_shape_n_by_1_is_accepted() -> None:
    body = {"inputs": [tensor(c.name, "INT32", [2, 1], [[1], [2]]) for c in COLS]}
    decoded = decode_v2_request(body, COLS)
    np.testing.assert_array_equal(decoded.columns["cpu_util"], [1.0, 2.0])


@pytest.mark.parametrize(
    ("column_type", "datatype", "data", "expected_dtype"),
    [
        ("double", "FP64", [1.5], np.float64),
        ("double", "FP16", [1.5], np.float64),
        ("double", "INT64", [3], np.float64),
        ("double", "UINT32", [3], np.float64),
        ("float", "FP32", [1.5], np.float32),
        ("float", "INT16", [7], np.float32),
        ("long", "INT64", [2**40], np.int64),
        ("long", "UINT8", [255], np.int64),
        ("integer", "INT32", [-5], np.int32),
        ("integer", "INT8", [-5], np.int32),
        ("boolean", "BOOL", [True], np.bool_),
        ("string", "BYTES", ["abc"], object),
        ("binary", "BYTES", ["aGk="], object),
        ("datetime", "BYTES", ["2024-01-02T03:04:05"], "datetime64[ns]"),
    ],
)
def test_v2_datatypes_convert_safely(
    column_type: str, datatype: str, data: list[Any], expected_dtype: Any
) -> None:
    cols = (ColumnSpec("x", column_type),)
    decoded = decode_v2_request({"inputs": [tensor("x", datatype, [1], data)]}, cols)
    assert decoded.columns["x"].dtype == np.dtype(expected_dtype)
    if column_type == "binary":
        assert decoded.columns["x"][0] == b"hi"


@pytest.mark.parametrize(
    ("column_type", "datatype"),
    [
        ("float", "FP64"),
        ("integer", "INT64"),
        ("long", "UINT64"),
        ("long", "FP32"),
        ("double", "BOOL"),
        ("double", "BYTES"),
        ("boolean", "INT8"),
        ("string", "FP64"),
    ],
)
def test_v2_unsafe_datatype_is_refused_naming_the_input(column_type: str, datatype: str) -> None:
    cols = (ColumnSpec("x", column_type),)
    value: Any = {"BOOL": True, "BYTES": "a"}.get(datatype, 1)
    with pytest.raises(ProtocolError, match=rf"input 'x'.*{datatype}.*{column_type}"):
        decode_v2_request({"inputs": [tensor("x", datatype, [1], [value])]}, cols)


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("INT8", [300], "out of range"),
        ("UINT8", [-1], "out of range"),
        ("INT32", [1.5], "expects integers, got numbers"),
        ("FP32", ["a"], "expects numbers, got strings"),
        ("FP64", [1.0, None], "nulls or mixed"),
        ("BOOL", [1], "expects booleans"),
        ("BYTES", [1], "expects strings"),
        ("FP16", [1e6], "out of range"),
    ],
)
def test_v2_bad_values_name_the_input(datatype: str, data: list[Any], message: str) -> None:
    with pytest.raises(ProtocolError, match=rf"input 'v'.*{message}"):
        decode_v2_request({"inputs": [tensor("v", datatype, [len(data)], data)]}, COLS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({}, "'inputs' must be a non-empty list"),
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({"inputs": [5]}, r"inputs\[0\] must be an object"),
        ({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}, "'name'"),
        (
            {"inputs": [{"name": "cpu_util", "datatype": "FP64", "data": [1]}]},
            "missing field 'shape'",
        ),
        ({"inputs": [tensor("cpu_util", "FLOAT", [1], [1])]}, "datatype 'FLOAT' is not one of"),
        ({"inputs": [tensor("cpu_util", "FP64", [-1], [1])]}, "non-negative integers"),
        ({"inputs": [tensor("cpu_util", "FP64", [0], [])]}, "empty input"),
        ({"inputs": [tensor("cpu_util", "FP64", [3], [1.0, 2.0])]}, r"needs 3 values, data has 2"),
        ({"inputs": [tensor("cpu_util", "FP64", [2], [[1.0], [2.0, 3.0]])]}, "ragged"),
        ({"inputs": [tensor("input", "FP64", [1, 2], [1.0, 2.0])]}, "has 2 columns.*expects 3"),
        (
            {"inputs": [tensor("cpu_util", "FP64", [1, 2], [1.0, 2.0])]},
            r"must be \[N\] or \[N, 1\]",
        ),
        ({"inputs": [tensor("cpu_util", "FP64", [1], 1.0)]}, "'data' must be a list"),
        ({"inputs": [tensor("cpu_util", "FP64", [1], [1.0])], "id": 5}, "'id' must be a string"),
        ({"inputs": [tensor("cpu_util", "FP64", [1], [1.0])], "parameters": 1}, "'parameters'"),
    ],
)
def test_v2_malformed_requests_name_the_field(body: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_v2_request(body, COLS)


def test_v2_missing_extra_and_duplicate_inputs_are_named() -> None:
    body = per_column([[1.0, 2.0, 3.0]])
    missing = {"inputs": body["inputs"][:2]}
    with pytest.raises(ProtocolError, match="missing input 'network_mbps'"):
        decode_v2_request(missing, COLS)
    extra = {"inputs": [*body["inputs"], tensor("disk", "FP64", [1], [1.0])]}
    with pytest.raises(ProtocolError, match=r"unexpected input 'disk'.*cpu_util"):
        decode_v2_request(extra, COLS)
    dupe = {"inputs": [*body["inputs"], body["inputs"][0]]}
    with pytest.raises(ProtocolError, match="'cpu_util' is given more than once"):
        decode_v2_request(dupe, COLS)
    uneven = per_column([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    uneven["inputs"][1] = tensor("memory_util", "FP64", [1], [1.0])
    with pytest.raises(ProtocolError, match="'memory_util': has 1 rows, other inputs have 2"):
        decode_v2_request(uneven, COLS)


def test_v2_optional_column_may_be_omitted() -> None:
    cols = (ColumnSpec("a", "double"), ColumnSpec("b", "double", required=False))
    decoded = decode_v2_request({"inputs": [tensor("a", "FP64", [2], [1.0, 2.0])]}, cols)
    assert np.isnan(decoded.columns["b"]).all()


def test_v2_requested_outputs_are_checked_and_filtered() -> None:
    body = per_column([[1.0, 2.0, 3.0]])
    body["outputs"] = [{"name": "nope"}]
    with pytest.raises(ProtocolError, match=r"unknown output 'nope'.*predictions"):
        decode_v2_request(body, COLS, ["predictions"])
    body["outputs"] = [{"name": "predictions"}]
    decoded = decode_v2_request(body, COLS, ["predictions", "scores"])
    prediction = Prediction({"predictions": np.array([1]), "scores": np.array([0.5])})
    response = encode_v2_response("m", "3", decoded.request_id, prediction, decoded.outputs)
    assert [o["name"] for o in response["outputs"]] == ["predictions"]


def test_v2_response_echoes_id_and_describes_tensors() -> None:
    prediction = Prediction(
        {
            "labels": np.array([1, -1], dtype=np.int64),
            "scores": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float16),
            "names": np.array(["a", "b"], dtype=object),
        }
    )
    response = encode_v2_response("anomaly", "7", "abc", prediction)
    assert response["model_name"] == "anomaly"
    assert response["model_version"] == "7"
    assert response["id"] == "abc"
    labels, scores, names = response["outputs"]
    assert labels["datatype"] == "INT64" and labels["shape"] == [2]
    assert list(labels["data"]) == [1, -1]
    assert scores["datatype"] == "FP16" and scores["shape"] == [2, 2]
    assert len(scores["data"]) == 4  # flat, row-major
    assert names == {"name": "names", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
    assert "id" not in encode_v2_response("anomaly", "7", None, prediction)


@pytest.mark.parametrize(
    ("dtype", "datatype"),
    [(np.bool_, "BOOL"), (np.uint16, "UINT16"), (np.int8, "INT8"), (np.float32, "FP32"),
     (np.float64, "FP64"), (object, "BYTES"), ("<U3", "BYTES")],
)  # fmt: skip
def test_v2_datatype_of_numpy_dtypes(dtype: Any, datatype: str) -> None:
    assert v2_datatype(np.dtype(dtype)) == datatype


# ---------------------------------------------------------------- MLflow formats
ROWS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
NAMES = [c.name for c in COLS]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": NAMES, "data": ROWS}},
        {"dataframe_split": {"columns": NAMES, "data": ROWS, "index": [0, 1]}},
        {"dataframe_records": [dict(zip(NAMES, r, strict=True)) for r in ROWS]},
        {"instances": [dict(zip(NAMES, r, strict=True)) for r in ROWS]},
        {"instances": ROWS},
        {"inputs": {n: [r[i] for r in ROWS] for i, n in enumerate(NAMES)}},
        {"inputs": [[1, 2, 3], [4, 5, 6]]},  # integers are fine for double columns
    ],
)
def test_mlflow_formats_decode_to_the_same_columns(body: dict[str, Any]) -> None:
    decoded = decode_mlflow_request(body, COLS)
    assert decoded.rows == 2
    np.testing.assert_array_equal(decoded.columns["network_mbps"], [3.0, 6.0])
    assert decoded.columns["network_mbps"].dtype == np.float64


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_split": {"columns": NAMES, "data": ROWS}, "inputs": ROWS}, "exactly one"),
        ({"data": ROWS}, "exactly one of dataframe_split"),
        ({"dataframe_split": {"columns": NAMES}}, "'columns' and 'data'"),
        ({"dataframe_split": {"columns": NAMES, "data": [[1.0, 2.0]]}},
         "row 0 must be a list of 3"),
        ({"dataframe_records": []}, "non-empty list"),
        ({"dataframe_records": [{"cpu_util": 1.0, "memory_util": 1.0}]}, "missing column 'network"),
        (
            {"dataframe_records": [{**dict(zip(NAMES, ROWS[0], strict=True)), "disk": 1.0}]},
            "unexpected column 'disk'",
        ),
        (
            {"dataframe_records": [dict(zip(NAMES, ROWS[0], strict=True)), {"cpu_util": 1.0}]},
            "record 1 differs from record 0 in field 'memory_util'",
        ),
        ({"instances": [["a", 2.0, 3.0]]}, "column 'cpu_util'.*expects numbers, got strings"),
        ({"instances": [[True, 2.0, 3.0]]}, "column 'cpu_util'.*got booleans"),
        ({"inputs": {"cpu_util": [1.0], "memory_util": [1.0, 2.0], "network_mbps": [1.0]}},
         "different lengths"),
        ({"instances": ROWS, "params": {"k": 1}}, "'params' is not supported"),
    ],
)  # fmt: skip
def test_mlflow_bad_requests_name_the_problem(body: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_mlflow_request(body, COLS)


def test_mlflow_integer_columns_refuse_fractions_and_overflow() -> None:
    cols = (ColumnSpec("n", "integer"),)
    with pytest.raises(ProtocolError, match=r"column 'n'.*expects integers"):
        decode_mlflow_request({"instances": [{"n": 1.5}]}, cols)
    with pytest.raises(ProtocolError, match=r"column 'n'.*out of range"):
        decode_mlflow_request({"instances": [{"n": 2**40}]}, cols)


def test_mlflow_response_shapes() -> None:
    plain = encode_mlflow_response(Prediction({"predictions": np.array([1, -1])}))
    assert list(plain["predictions"]) == [1, -1]
    frame = Prediction({"a": np.array([1, 2]), "b": np.array(["x", "y"], dtype=object)}, True)
    assert encode_mlflow_response(frame) == {
        "predictions": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    }


def test_model_metadata_lists_inputs_and_outputs() -> None:
    meta = model_metadata("m", "2", "mlflow", COLS, (OutputSpec("predictions", "INT64"),))
    assert meta["versions"] == ["2"]
    assert meta["inputs"][0] == {"name": "cpu_util", "datatype": "FP64", "shape": [-1]}
    assert meta["outputs"] == [{"name": "predictions", "datatype": "INT64", "shape": [-1]}]


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=20), st.booleans())
def test_v2_and_mlflow_round_trip_any_rows(
    rows: list[tuple[float, float, float]], flat: bool
) -> None:
    matrix = [list(r) for r in rows]
    data: Any = [v for r in matrix for v in r] if flat else matrix
    v2 = decode_v2_request({"inputs": [tensor("in", "FP64", [len(rows), 3], data)]}, COLS)
    split = decode_mlflow_request({"dataframe_split": {"columns": NAMES, "data": matrix}}, COLS)
    for i, name in enumerate(NAMES):
        want = np.array([r[i] for r in rows])
        np.testing.assert_array_equal(v2.columns[name], want)
        np.testing.assert_array_equal(split.columns[name], want)


NESTED = [
    {"inputs": {"cpu_util": [[1.0, 2.0]], "memory_util": [1.0], "network_mbps": [1.0]}},
    {"dataframe_records": [{"cpu_util": [1.0], "memory_util": 1.0, "network_mbps": 1.0}]},
    {"dataframe_split": {"columns": [c.name for c in COLS], "data": [[[1.0, 2.0], 1.0, 1.0]]}},
]


@pytest.mark.parametrize("body", NESTED, ids=["inputs", "records", "split"])
def test_mlflow_cells_must_be_scalars(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError, match="column 'cpu_util': each row must hold one scalar"):
        decode_mlflow_request(body, COLS)


def test_mlflow_nested_cells_in_string_columns_are_refused_too() -> None:
    for kind in ("string", "binary"):
        cols = (ColumnSpec("s", kind),)
        with pytest.raises(ProtocolError, match="column 's': each row must hold one scalar"):
            decode_mlflow_request({"dataframe_records": [{"s": ["YQ=="]}]}, cols)


def test_duplicate_column_or_output_names_are_refused_naming_them() -> None:
    body = {"dataframe_split": {"columns": ["cpu_util", "cpu_util"], "data": [[1.0, 2.0]]}}
    with pytest.raises(ProtocolError, match="names column 'cpu_util' more than once"):
        decode_mlflow_request(body, COLS)
    v2 = {**per_column([[1.0, 2.0, 3.0]]), "outputs": [{"name": "y"}, {"name": "y"}]}
    with pytest.raises(ProtocolError, match="output 'y' is requested more than once"):
        decode_v2_request(v2, COLS, ["y"])


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "INT64", "UINT8"])
def test_booleans_among_numbers_are_refused_naming_the_input(datatype: str) -> None:
    body = per_column([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    body["inputs"][1] = tensor("memory_util", datatype, [2], [1, True])
    with pytest.raises(ProtocolError, match=r"input 'memory_util'.*got booleans"):
        decode_v2_request(body, COLS)
    nested = {"inputs": [tensor("input", datatype, [1, 3], [[1, 2, False]])]}
    with pytest.raises(ProtocolError, match=r"input 'input'.*got booleans"):
        decode_v2_request(nested, COLS)
    records = {"dataframe_records": [{"cpu_util": 1, "memory_util": True, "network_mbps": 2}]}
    with pytest.raises(ProtocolError, match=r"column 'memory_util'.*got booleans"):
        decode_mlflow_request(records, COLS)


def test_mlflow_response_with_several_named_outputs() -> None:
    pred = Prediction({"label": np.array([1, -1]), "score": np.array([0.5, 0.25])})
    out = encode_mlflow_response(pred)["predictions"]
    assert set(out) == {"label", "score"}
    assert out["label"].tolist() == [1, -1] and out["score"].tolist() == [0.5, 0.25]


def _nest(depth: int, leaf: Any = 1.0) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [3, 329, 1023])
def test_deep_nesting_is_a_protocol_error_not_a_recursion_error(depth: int) -> None:
    # Under orjson's own 1024 limit: such bodies parse, so the codecs must refuse them.
    v2 = {"inputs": [tensor("input", "FP64", [1, 3], _nest(depth))]}
    with pytest.raises(ProtocolError, match="input 'input': 'data' is nested more than 2 levels"):
        decode_v2_request(v2, COLS)
    for body in (
        {"inputs": {"cpu_util": [_nest(depth)], "memory_util": [1.0], "network_mbps": [1.0]}},
        {"dataframe_records": [{"cpu_util": _nest(depth), "memory_util": 1, "network_mbps": 1}]},
    ):
        with pytest.raises(ProtocolError, match="column 'cpu_util': each row must hold one scalar"):
            decode_mlflow_request(body, COLS)
    strings = {"dataframe_records": [{"s": _nest(depth, "x")}]}
    with pytest.raises(ProtocolError, match="column 's': each row must hold one scalar"):
        decode_mlflow_request(strings, (ColumnSpec("s", "string"),))


def test_a_long_shape_is_refused_before_its_product_is_computed() -> None:
    body = {"inputs": [tensor("input", "FP64", [10**18] * 100_000, [1.0])]}
    with pytest.raises(ProtocolError, match="'shape' has 100000 dimensions"):
        decode_v2_request(body, COLS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)
names = st.sampled_from(["input", "cpu_util", "memory_util", "network_mbps", "x"])
v2_tensors = st.fixed_dictionaries(
    {"name": names | json_values, "shape": json_values | st.lists(st.integers(0, 4), max_size=3),
     "datatype": st.sampled_from(["FP64", "FP32", "INT8", "BOOL", "BYTES", "X"]) | json_values,
     "data": json_values},
)  # fmt: skip
mlflow_keys = st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"])


@settings(max_examples=100, deadline=None)
@given(
    json_values,
    st.dictionaries(st.just("inputs"), st.lists(v2_tensors, max_size=3)),
    st.dictionaries(mlflow_keys | st.text(max_size=3), json_values, max_size=2),
)
def test_any_json_value_decodes_or_is_a_protocol_error(
    anything: Any, v2_body: dict[str, Any], mlflow_body: dict[str, Any]
) -> None:
    # The HTTP layer turns ProtocolError into a 400; any other exception would be a 500.
    for decode in (decode_v2_request, decode_mlflow_request):
        for body in (anything, v2_body, mlflow_body):
            with contextlib.suppress(ProtocolError):
                decode(body, COLS)


def test_name_checks_are_linear_and_capped_at_twice_the_signature() -> None:
    # 40,000 names took 24-36 s of quadratic checks; the cap refuses them before any work.
    many = [f"c{i}" for i in range(40_000)]
    split = {"dataframe_split": {"columns": many, "data": [[1.0] * len(many)]}}
    with pytest.raises(ProtocolError, match="names 40000 columns; at most 6 are accepted"):
        decode_mlflow_request(split, COLS)
    outputs = {**per_column([[1.0, 2.0, 3.0]]), "outputs": [{"name": n} for n in many]}
    with pytest.raises(ProtocolError, match="'outputs' names 40000 outputs; at most 2 are"):
        decode_v2_request(outputs, COLS, ["y"])
    wide = [ColumnSpec(f"c{i}", "double") for i in range(20_000)]
    repeated = {"dataframe_split": {"columns": [*many[:20_000], "c0"], "data": [[1.0] * 20_001]}}
    with pytest.raises(ProtocolError, match="names column 'c0' more than once"):
        decode_mlflow_request(repeated, wide)  # within the cap: found in one pass


def test_large_bodies_decode_in_a_worker_process_with_the_same_result() -> None:
    body = json.dumps(per_column([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).encode()
    decoder = BodyDecoder(inline_bytes=0)  # every body goes to the process

    async def main() -> tuple[Decoded, str]:
        decoded = await decoder.decode(decode_v2, body, COLS, (), 2)
        with pytest.raises(TooManyRows, match="request has 2 rows; at most 1 are accepted"):
            await decoder.decode(decode_v2, body, COLS, (), 1)
        with pytest.raises(ProtocolError) as err:
            await decoder.decode(decode_mlflow, b'{"instances": [', COLS, (), 2)
        return decoded, str(err.value)

    try:
        decoded, error = asyncio.run(main())
        assert decoder._pool is not None  # it did not run inline
    finally:
        decoder.close()
    inline = decode_v2(body, COLS, ())
    assert decoded.rows == inline.rows == 2
    for name in inline.columns:
        np.testing.assert_array_equal(decoded.columns[name], inline.columns[name])
    assert error.startswith("malformed JSON body")


def test_a_finite_value_that_overflows_a_float_column_is_refused_as_out_of_range() -> None:
    cols = (ColumnSpec("x", "float"),)
    with pytest.raises(ProtocolError, match="column 'x': values out of range for float32"):
        decode_mlflow_request({"inputs": {"x": [1.7e308]}}, cols)
    with pytest.raises(ProtocolError, match="datatype FP64 cannot be converted safely"):
        decode_v2_request({"inputs": [tensor("x", "FP64", [1], [1.7e308])]}, cols)
    with pytest.raises(ProtocolError, match="input 'x': values out of range for float32"):
        decode_v2_request({"inputs": [tensor("x", "FP32", [1], [1.7e308])]}, cols)


def test_server_version_is_the_distributions_own() -> None:
    import importlib.metadata

    from serving.protocol import server_metadata

    meta = server_metadata()
    assert meta["version"] == importlib.metadata.version("mlplatform")
    assert meta["name"] == "mlplatform-serving"
