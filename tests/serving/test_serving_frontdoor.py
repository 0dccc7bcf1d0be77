"""The infer front door: the hot routes skip Starlette yet answer exactly as Starlette would."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from serving.app import create_app
from serving.fastpath import InferFrontDoor
from serving.fastpath import RawRequest as _RawRequest
from serving.fastpath import infer_route as _infer_route
from serving.logs import MAX_EXCEPTION_CHARS, JsonFormatter, configure_logging
from serving.metrics import ServiceMetrics
from serving.model import PreparedItem
from serving.protocol import ColumnSpec, OutputSpec, Prediction
from serving.settings import ModelSpec, Settings

with warnings.catch_warnings():  # starlette nudges towards httpx2, which is not needed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class DoubleModel:
    """Predicts 2x per row."""

    platform = "test"
    inputs = (ColumnSpec("x", "double"),)
    outputs = (OutputSpec("y", "FP64"),)

    def __init__(self, name: str, version: str = "3") -> None:
        self.name = name
        self.version = version

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        return [Prediction({"y": it.columns["x"] * 2.0}) for it in items]


BODY = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.5, 4.0]}]}


@pytest.fixture
def client() -> Iterator[TestClient]:
    models = [DoubleModel("double"), DoubleModel("other", "7")]
    app = create_app(models, Settings(models=(ModelSpec("double", "unused"),)))
    assert isinstance(app, InferFrontDoor)
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/models/m/infer", ("m", None)),
        ("/v2/models/m/versions/2/infer", ("m", "2")),
        ("/v2/models//infer", None),
        ("/v2/models/m/versions//infer", None),
        ("/v2/models/m/infer/", None),
        ("/v2/models/m/ready", None),
        ("/v3/models/m/infer", None),
        ("v2/models/m/infer", None),
        ("/v2/models/m/other/2/infer", None),
    ],
)
def test_infer_route_matching(path: str, expected: tuple[str, str | None] | None) -> None:
    assert _infer_route(path) == expected


def test_infer_by_name_and_version(client: TestClient) -> None:
    r = client.post("/v2/models/other/versions/7/infer", json=BODY)
    assert r.status_code == 200
    out = r.json()
    assert (out["model_name"], out["model_version"]) == ("other", "7")
    assert out["outputs"][0]["data"] == [3.0, 8.0]
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)


def test_errors_keep_their_status_and_json(client: TestClient) -> None:
    r = client.post("/v2/models/other/versions/8/infer", json=BODY)
    assert r.status_code == 404 and "no version '8'" in r.json()["error"]
    r = client.post("/v2/models/nope/infer", json=BODY)
    assert r.status_code == 404 and r.json() == {"error": "model 'nope' is not served"}
    r = client.post(
        "/v2/models/double/infer", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = client.post(
        "/v2/models/double/infer", content=b"x=1", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415


def test_invocations_use_the_default_model(client: TestClient) -> None:
    r = client.post("/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[2.0]]}})
    assert r.status_code == 200 and r.json() == {"predictions": [4.0]}


def test_other_requests_still_reach_starlette(client: TestClient) -> None:
    assert client.get("/v2/models/double/infer").status_code == 405  # routing still says so
    assert client.get("/v2/health/ready").json() == {"ready": True}
    # A trailing slash is not the hot route, and not a redirect built from the Host header.
    r = client.post("/v2/models/double/infer/", json=BODY, follow_redirects=False)
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    assert client.get("/metrics").status_code == 200


def test_raw_request_reads_chunks_and_reports_disconnect() -> None:
    from starlette.requests import ClientDisconnect

    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {"headers": [(b"content-type", b"application/json"), (b"content-type", b"x/y")]}

    async def read(request: _RawRequest) -> bytes:
        return b"".join([chunk async for chunk in request.stream()])

    request = _RawRequest(scope, receive)
    assert request.headers["content-type"] == "application/json"  # the first one wins
    assert asyncio.run(read(request)) == b"abc"
    messages.append({"type": "http.disconnect"})
    with pytest.raises(ClientDisconnect):
        asyncio.run(read(_RawRequest(scope, receive)))


def test_json_log_lines_are_written_by_the_writer_thread(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import serving.logs as logs

    configure_logging("info")
    try:
        logging.getLogger("serving").info("request", extra={"status": 200, "rows": np.int64(3)})
    finally:
        logs._stop_logging()  # flushes the queue, as at interpreter exit
        logging.getLogger().handlers[:] = []
    err = capfd.readouterr().err
    assert '"message":"request"' in err and '"status":200' in err


class _GatedStream:
    """A stream whose writes block until released: a log writer that fell behind."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.gate.wait(10)
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_log_queue_is_bounded_and_counts_what_it_drops() -> None:
    import serving.logs as logs

    stream = _GatedStream()
    before = logs.dropped_log_records()
    configure_logging("info", stream=stream, queue_size=5)
    try:
        log = logging.getLogger("serving")
        for i in range(50):
            log.info("request", extra={"i": i})
        # The writer holds at most one record, the queue five: the rest were dropped.
        assert logs.dropped_log_records() - before >= 50 - 6
    finally:
        stream.gate.set()
        logs._stop_logging()
        logging.getLogger().handlers[:] = []
    assert 1 <= len([line for line in stream.lines if '"request"' in line]) <= 6
    metrics = ServiceMetrics().render().decode()
    assert f"serving_log_dropped_total {float(logs.dropped_log_records())}" in metrics


def test_a_huge_traceback_is_cut_to_its_tail() -> None:
    def deep(n: int) -> None:
        if n:
            deep(n - 1)
        raise ValueError("the failing frame")

    try:
        deep(500)
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("serving", logging.ERROR, __file__, 1, "boom", None, exc_info)
    entry = json.loads(JsonFormatter().format(record))
    assert len(entry["exception"]) <= MAX_EXCEPTION_CHARS + 20
    assert entry["exception"].endswith("ValueError: the failing frame")


def test_python_warnings_become_json_log_lines() -> None:
    import serving.logs as logs

    stream = _GatedStream()
    stream.gate.set()
    logging.captureWarnings(False)  # an earlier test's capture would hide pytest's swap
    configure_logging("info", stream=stream)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("overflow encountered in cast", RuntimeWarning, stacklevel=1)
    finally:
        logs._stop_logging()
        logging.getLogger().handlers[:] = []
        logging.captureWarnings(False)
    (line,) = [json.loads(t) for t in stream.lines if "overflow" in t]
    assert line["logger"] == "py.warnings" and line["level"] == "warning"
