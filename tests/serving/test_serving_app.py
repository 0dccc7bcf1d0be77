"""The ASGI app in-process (Starlette TestClient runs its lifespan) with small in-memory models."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving.app import HttpError, create_app, read_body
from serving.batching import OutputMismatch
from serving.logs import JsonFormatter
from serving.model import PreparedItem
from serving.protocol import ColumnSpec, OutputSpec, Prediction
from serving.settings import ModelSpec, Settings
from serving.tracing import Tracing

with warnings.catch_warnings():  # starlette nudges towards httpx2, which is not needed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class SumModel:
    """Predicts x + y per row; rows with x < 0 make predict raise (bad data) or crash."""

    platform = "test"
    inputs = (ColumnSpec("x", "double"), ColumnSpec("y", "long"))
    outputs = (OutputSpec("sum", "FP64"),)

    def __init__(
        self, name: str = "sum", version: str = "4", failure: type[Exception] = ValueError
    ):
        self.name = name
        self.version = version
        self.failure = failure
        self.batches: list[int] = []

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        self.batches.append(len(items))
        x = np.concatenate([it.columns["x"] for it in items])
        if (x < 0).any():
            raise self.failure("x must not be negative; secret internals /srv/model.py line 3")
        total = x + np.concatenate([it.columns["y"] for it in items])
        out, start = [], 0
        for it in items:
            out.append(Prediction({"sum": total[start : start + it.rows]}))
            start += it.rows
        return out


class ShortModel(SumModel):
    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        raise OutputMismatch("model 'short' output 'sum' has 1 rows for 2 input rows")


def settings(**overrides: Any) -> Settings:
    return Settings(models=(ModelSpec("sum", "unused"),), **overrides)


def body(x: float, y: int = 1) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "shape": [1], "datatype": "FP64", "data": [x]},
            {"name": "y", "shape": [1], "datatype": "INT64", "data": [y]},
        ]
    }


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app([SumModel(), SumModel("other", "1")], settings())) as c:
        yield c


def test_infer_and_invocations_use_the_right_model(client: TestClient) -> None:
    r = client.post("/v2/models/other/infer", json=body(1.5, 2))
    assert r.status_code == 200
    assert r.json()["model_name"] == "other"
    assert r.json()["outputs"] == [{"name": "sum", "datatype": "FP64", "shape": [1], "data": [3.5]}]
    r = client.post("/invocations", json={"dataframe_records": [{"x": 1.0, "y": 2}]})
    assert r.json() == {"predictions": [3.0]}


def test_bad_data_found_by_the_model_is_a_400_for_that_request_only(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="serving"):
        r = client.post("/v2/models/sum/infer", json=body(-1.0))
    assert r.status_code == 400
    # The model's own text may carry internals: it goes to the log, not to the client.
    assert r.json() == {"error": "model 'sum' rejected the input"}
    assert "secret" not in r.text and "/srv" not in r.text and "negative" not in r.text
    assert any("secret internals" in str(getattr(rec, "error", "")) for rec in caplog.records)
    assert client.post("/v2/models/sum/infer", json=body(1.0)).status_code == 200


def test_mlflow_schema_errors_are_forwarded_to_the_client() -> None:
    from mlflow.exceptions import MlflowException

    app = create_app([SumModel(failure=MlflowException)], settings())
    with TestClient(app) as c:
        r = c.post("/v2/models/sum/infer", json=body(-1.0))
    assert r.status_code == 400
    assert r.json()["error"].startswith("model 'sum' rejected the input: x must not be negative")


def test_unexpected_model_failure_is_a_generic_500_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app([SumModel(failure=RuntimeError)], settings())
    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="serving"):
        r = c.post("/v2/models/sum/infer", json=body(-1.0))
    assert r.status_code == 500
    assert r.json() == {"error": "prediction failed"}
    assert "secret" not in r.text and "Traceback" not in r.text
    assert any(rec.exc_info for rec in caplog.records)  # the details go to the log


def test_output_mismatch_is_a_500_naming_the_model() -> None:
    with TestClient(create_app([ShortModel("short")], settings())) as c:
        r = c.post("/v2/models/short/infer", json=body(1.0))
    assert r.status_code == 500
    assert "model 'short' output 'sum' has 1 rows" in r.json()["error"]


def test_not_ready_before_start_and_draining_after() -> None:
    app = create_app([SumModel()], settings())
    state = app.state.service
    with TestClient(app) as c:
        assert c.get("/v2/health/ready").status_code == 200
        state.draining = True  # what ServiceState.drain sets first on SIGTERM
        r = c.get("/v2/health/ready")
        assert (r.status_code, r.json()) == (503, {"error": "draining"})
        r = c.post("/v2/models/sum/infer", json=body(1.0))
        assert (r.status_code, r.json()) == (503, {"error": "draining"})
        assert c.get("/v2/health/live").status_code == 200
        state.draining = False
    # After the lifespan ended the batchers were drained and stopped.
    assert state.draining and not state.ready


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and "error" in r.json()
    r = client.delete("/v2/models/sum")
    assert r.status_code == 405 and "error" in r.json()
    r = client.get("/v2/models/missing")
    assert r.json() == {"error": "model 'missing' is not served"}  # the served ones unnamed
    r = client.get("/v2/models/sum/", headers={"host": "evil.example"})
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    assert "location" not in r.headers


def test_body_limit_checked_while_streaming() -> None:
    with TestClient(create_app([SumModel()], settings(max_body_bytes=100))) as c:

        def chunks() -> Iterator[bytes]:
            yield b'{"inputs": ['
            yield b" " * 200
            yield b"]}"

        r = c.post(
            "/v2/models/sum/infer", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert "limit of 100 bytes" in r.json()["error"]


def test_batch_span_links_to_request_spans() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(environ={}, span_processor=SimpleSpanProcessor(exporter))
    app = create_app([SumModel()], settings(), tracing=tracing)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with TestClient(app) as c:
        r = c.post("/v2/models/sum/infer", json=body(1.0), headers={"traceparent": parent})
        assert r.status_code == 200
    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.name == "v2_infer")
    batch = next(s for s in spans if s.name == "batch predict")
    assert format(request.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert [link.context.span_id for link in batch.links] == [request.context.span_id]
    assert batch.attributes is not None and batch.attributes["batch.rows"] == 1


def test_tracing_is_off_without_an_endpoint_and_on_with_one() -> None:
    assert not Tracing(environ={}).enabled
    on = Tracing(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    try:
        assert on.enabled
        processors = on._provider._active_span_processor._span_processors
        assert type(processors[0]).__name__ == "BatchSpanProcessor"
    finally:
        on.shutdown()


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord("serving", logging.INFO, __file__, 1, "request", None, None)
    record.model = "sum"
    record.status = 200
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "serving"
    assert entry["message"] == "request" and entry["model"] == "sum" and entry["status"] == 200
    assert entry["ts"].endswith("+00:00") and "\n" not in line


# (TestClient re-encodes header values as UTF-8; raw latin-1 bytes are sent over a socket in
# test_serving_disconnect.)
@pytest.mark.parametrize("value", [b"\xd9\xa3", b"1" * 5000, b"-5", b"0"])
def test_bad_timeout_header_is_a_400_naming_it(client: TestClient, value: bytes) -> None:
    r = client.post("/v2/models/sum/infer", json=body(1.0), headers={"X-Request-Timeout-Ms": value})
    assert r.status_code == 400
    assert "X-Request-Timeout-Ms" in r.json()["error"]


@pytest.mark.parametrize(("value", "status"), [("\xb9", 400), ("12a", 400), ("9" * 5000, 413)])
def test_bad_content_length_is_refused_naming_it(value: str, status: int) -> None:
    class Incoming:
        def __init__(self) -> None:
            self.headers = {"content-length": value}

        async def stream(self) -> AsyncIterator[bytes]:
            yield b"{}"

    with pytest.raises(HttpError) as err:
        asyncio.run(read_body(Incoming(), 100))  # type: ignore[arg-type]
    assert err.value.status == status
    assert "Content-Length" in err.value.message or "exceeds the limit" in err.value.message


def test_binary_tensor_extension_is_refused(client: TestClient) -> None:
    r = client.post(
        "/v2/models/sum/infer",
        content=b"{}" + b"\x00" * 8,
        headers={"Inference-Header-Content-Length": "2", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": "binary tensor extension is not supported; send JSON tensors (binary_data=False)"
    }


class TwoOutputs(SumModel):
    outputs = (OutputSpec("sum", "FP64"), OutputSpec("twice", "FP64"))

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        return [
            Prediction({"sum": it.columns["x"] + it.columns["y"], "twice": it.columns["x"] * 2})
            for it in items
        ]


def test_invocations_with_several_named_outputs() -> None:
    with TestClient(create_app([TwoOutputs()], settings())) as c:
        split = {"columns": ["x", "y"], "data": [[1.5, 2], [3.0, 4]]}
        r = c.post("/invocations", json={"dataframe_split": split})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": {"sum": [3.5, 7.0], "twice": [3.0, 6.0]}}


class _Trickle:
    """A request body that sends ``parts`` then stalls (until the test ends)."""

    def __init__(self, parts: list[bytes]) -> None:
        self.headers: dict[str, str] = {}
        self.parts = parts
        self.stalled = asyncio.Event()

    async def stream(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part
        self.stalled.set()
        await asyncio.Event().wait()  # never set: the client stopped sending
        yield b""


def test_a_stalled_body_is_a_408_after_the_body_timeout() -> None:
    async def main() -> HttpError:
        with pytest.raises(HttpError) as err:
            await read_body(_Trickle([b'{"inputs"']), 100, stall_timeout_s=0.05)  # type: ignore[arg-type]
        return err.value

    error = asyncio.run(main())
    assert error.status == 408 and "no data for 0.05s" in error.message


def test_the_deadline_covers_reading_the_body() -> None:
    async def main() -> HttpError:
        deadline = time.monotonic() + 0.05
        with pytest.raises(HttpError) as err:
            await read_body(_Trickle([b"{"]), 100, stall_timeout_s=30, deadline=deadline)  # type: ignore[arg-type]
        return err.value

    error = asyncio.run(main())
    assert error.status == 504 and "deadline exceeded while the request body was read" in (
        error.message
    )


def test_a_drain_answers_requests_still_reading_their_body_at_once() -> None:
    app = create_app([SumModel()], settings(body_timeout_s=30.0, drain_timeout_s=30.0))
    state = app.state.service

    async def main() -> tuple[HttpError, float]:
        await state.start()
        trickle = _Trickle([b'{"inputs"'])
        reader = asyncio.ensure_future(state.read_body(trickle, time.monotonic() + 30))
        await asyncio.wait_for(trickle.stalled.wait(), 5)
        t0 = time.monotonic()
        await asyncio.wait_for(state.drain(), 5)
        with pytest.raises(HttpError) as err:
            await reader
        return err.value, time.monotonic() - t0

    error, took = asyncio.run(main())
    assert (error.status, error.message) == (503, "draining")
    assert took < 5.0  # not the 30 s body or drain timeout


def test_rows_per_request_are_capped_with_a_413_naming_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("serving.predict.MIN_PART_ROWS", 1)  # parts of max_batch_size rows
    model = SumModel()
    with TestClient(create_app([model], settings(max_rows_per_request=4, max_batch_size=2))) as c:
        split = {"columns": ["x", "y"], "data": [[float(i), i] for i in range(5)]}
        r = c.post("/invocations", json={"dataframe_split": split})
        assert r.status_code == 413
        assert r.json()["error"].startswith("request has 5 rows; at most 4 are accepted")
        split["data"] = split["data"][:4]
        r = c.post("/invocations", json={"dataframe_split": split})
        assert r.json() == {"predictions": [0.0, 2.0, 4.0, 6.0]}
    assert model.batches == [1, 1]  # two parts of two rows, each its own batch
