"""A real uvicorn server in-process: clients that hang up, and a hung predict.

The model blocks on a ``threading.Event`` the test releases, so "a request is queued
behind a running batch" is a state the test waits for (bounded polls of the batcher),
not a timing guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
import uvicorn

from serving.app import ServiceState, create_app
from serving.model import PreparedItem
from serving.protocol import ColumnSpec, OutputSpec, Prediction
from serving.settings import ModelSpec, Settings
from tests.serving.probes import wait_until

POLL_S = 0.01
POLL_LIMIT = 500  # polls of POLL_S: a bounded wait of about 5 s


class GatedModel:
    """Echoes x; a batch holding x == 1.0 blocks until ``gate`` is set (at most 10 s)."""

    name, version, platform = "gated", "1", "test"
    inputs = (ColumnSpec("x", "double"),)
    outputs = (OutputSpec("y", "FP64"),)

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.running = threading.Event()
        self.seen: list[float] = []

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        xs = [float(it.columns["x"][0]) for it in items]
        self.seen.extend(xs)
        if 1.0 in xs:
            self.running.set()
            self.gate.wait(10)
        return [Prediction({"y": it.columns["x"]}) for it in items]


def _body(x: float) -> bytes:
    tensor = {"name": "x", "shape": [1], "datatype": "FP64", "data": [x]}
    return json.dumps({"inputs": [tensor]}).encode()


def _head(length: int) -> bytes:
    return (
        b"POST /v2/models/gated/infer HTTP/1.1\r\nhost: t\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % length
    )


async def _until(check: Callable[[], bool], what: str) -> None:
    await wait_until(check, what, POLL_S, POLL_LIMIT)


def _count(state: ServiceState, code: str) -> float:
    return state.metrics.requests.labels("gated", "v2_infer", code)._value.get()


@contextlib.asynccontextmanager
async def serve(model: GatedModel, **overrides: object) -> AsyncIterator[tuple[str, ServiceState]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(models=(ModelSpec("gated", "u"),), port=port, **overrides)  # type: ignore[arg-type]
    app = create_app([model], settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await _until(lambda: server.started, "the server started")
        yield f"http://127.0.0.1:{port}", app.state.service
    finally:
        model.gate.set()
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def test_client_hanging_up_withdraws_its_queued_request() -> None:
    model = GatedModel()

    async def main() -> None:
        async with serve(model, access_log=False) as (url, state):
            batcher = state.batchers["gated"]
            async with httpx.AsyncClient(base_url=url, timeout=20) as client:
                first = asyncio.create_task(
                    client.post("/v2/models/gated/infer", content=_body(1.0))
                )
                await _until(model.running.is_set, "the first batch runs")
                _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
                body = _body(2.0)
                writer.write(_head(len(body)) + body)
                await writer.drain()
                await _until(lambda: batcher.queue_depth == 1, "the second request is queued")
                writer.close()
                await _until(lambda: batcher.queue_depth == 0, "the closed request left")
                metrics = (await client.get("/metrics")).text
                model.gate.set()
                assert (await first).status_code == 200
        assert model.seen == [1.0], "the closed request's row reached predict"
        assert 'serving_cancelled_total{model="gated"} 1.0' in metrics
        assert 'serving_queue_depth{model="gated"} 0.0' in metrics
        assert _count(state, "499") == 1

    asyncio.run(main())


def test_client_hanging_up_mid_body_is_a_quiet_499(caplog: pytest.LogCaptureFixture) -> None:
    model = GatedModel()

    async def main() -> None:
        async with serve(model, access_log=False) as (url, state):
            _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            writer.write(_head(1000) + b'{"inputs":')
            await writer.drain()
            writer.close()
            await _until(lambda: _count(state, "499") == 1, "the request is recorded as 499")
            assert _count(state, "500") == 0

    with caplog.at_level(logging.INFO, logger="serving"):
        asyncio.run(main())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert model.seen == []


def test_liveness_fails_while_a_predict_hangs_past_twice_the_request_timeout() -> None:
    model = GatedModel()

    async def main() -> None:
        # Limit: 2 x 50 ms. The hung request itself is answered 504 at 50 ms.
        settings = {"access_log": False, "request_timeout_ms": 50, "workers": 1}
        async with (
            serve(model, **settings) as (url, _),
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            assert (await client.get("/v2/health/live")).status_code == 200
            r = await client.post("/v2/models/gated/infer", content=_body(1.0))
            assert r.status_code == 504
            for _ in range(POLL_LIMIT):
                live = await client.get("/v2/health/live")
                if live.status_code != 200:
                    break
                await asyncio.sleep(POLL_S)  # bounded poll until the limit passes
            assert live.status_code == 503
            assert "model 'gated' predict has run" in live.json()["error"]
            assert (await client.get("/v2/health/ready")).status_code == 200
            model.gate.set()
            for _ in range(POLL_LIMIT):
                live = await client.get("/v2/health/live")
                if live.status_code == 200:
                    break
                await asyncio.sleep(POLL_S)
            assert live.json() == {"live": True}

    asyncio.run(main())


@pytest.mark.parametrize("value", [b"\xb9", b"\xb2\xb3", b"1" * 5000])
def test_timeout_header_with_non_ascii_digits_is_a_400_naming_it(value: bytes) -> None:
    model = GatedModel()

    async def main() -> bytes:
        async with serve(model, access_log=False) as (url, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            body = _body(2.0)
            head = _head(len(body)).replace(b"\r\n\r\n", b"\r\nx-request-timeout-ms: ")
            writer.write(head + value + b"\r\nconnection: close\r\n\r\n" + body)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"X-Request-Timeout-Ms must be an integer" in answer
    assert model.seen == []


def test_liveness_holds_while_a_batch_runs_within_the_deadline_it_was_given() -> None:
    model = GatedModel()

    async def main() -> None:
        # Default 50 ms (liveness limit 100 ms), but this request asks for 5 s.
        settings = {"access_log": False, "request_timeout_ms": 50, "workers": 1}
        async with (
            serve(model, **settings) as (url, _),
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            post = asyncio.create_task(
                client.post("/v2/models/gated/infer", content=_body(1.0),
                            headers={"X-Request-Timeout-Ms": "5000"})
            )  # fmt: skip
            await _until(model.running.is_set, "the long request's batch runs")
            for _ in range(30):  # 0.3 s: three times the limit a 50 ms default would set
                live = await client.get("/v2/health/live")
                assert live.status_code == 200, live.text
                await asyncio.sleep(POLL_S)
            model.gate.set()
            assert (await post).status_code == 200

    asyncio.run(main())


def test_a_large_request_is_predicted_in_parts_that_let_small_requests_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("serving.predict.MIN_PART_ROWS", 1)  # parts of max_batch_size rows
    model = GatedModel()

    async def main() -> None:
        async with (
            serve(model, access_log=False, max_batch_size=2) as (url, state),
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            xs = [1.0, 10.0, 11.0, 12.0, 13.0, 14.0]  # three parts of two rows
            tensor = {"name": "x", "shape": [len(xs)], "datatype": "FP64", "data": xs}
            big = asyncio.create_task(
                client.post("/v2/models/gated/infer", json={"inputs": [tensor]})
            )
            await _until(model.running.is_set, "the large request's first part runs")
            small = asyncio.create_task(client.post("/v2/models/gated/infer", content=_body(2.0)))
            batcher = state.batchers["gated"]
            await _until(lambda: batcher.queue_depth == 1, "the small request is queued")
            model.gate.set()
            r = await big
            assert r.status_code == 200 and r.json()["outputs"][0]["data"] == xs
            assert (await small).status_code == 200
        # The model records each item's first row: the parts start at 1, 11 and 13, and
        # the small request went between two of them, not after all of them.
        assert model.seen == [1.0, 2.0, 11.0, 13.0]

    asyncio.run(main())


def test_a_request_predicted_in_parts_finishes_when_a_drain_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("serving.predict.MIN_PART_ROWS", 1)
    model = GatedModel()

    async def main() -> None:
        async with (
            serve(model, access_log=False, max_batch_size=2) as (url, state),
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            xs = [1.0, 10.0, 11.0, 12.0]  # two parts: the second is submitted mid-drain
            tensor = {"name": "x", "shape": [len(xs)], "datatype": "FP64", "data": xs}
            big = asyncio.create_task(
                client.post("/v2/models/gated/infer", json={"inputs": [tensor]})
            )
            await _until(model.running.is_set, "the first part runs")
            drain = asyncio.create_task(state.drain())
            await _until(lambda: state.draining, "the drain started")
            model.gate.set()
            r = await big
            await asyncio.wait_for(drain, 10)
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == xs
            assert r.headers["connection"] == "close"  # answered during the drain

    asyncio.run(main())


def test_client_hanging_up_while_its_answer_is_written_is_a_quiet_499(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = GatedModel()
    rows = 400_000  # an answer of about 8 MB, more than the sockets' buffers hold
    data = [0.5 + i * 1e-7 for i in range(rows)]
    body = json.dumps(
        {"inputs": [{"name": "x", "shape": [rows], "datatype": "FP64", "data": data}]}
    ).encode()

    async def main() -> None:
        settings = {"max_rows_per_request": rows, "max_body_bytes": 2 * len(body)}
        async with serve(model, **settings) as (url, state):
            loop = asyncio.get_running_loop()
            with socket.socket() as s:
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
                await loop.sock_connect(s, ("127.0.0.1", int(url.rsplit(":", 1)[1])))
                await loop.sock_sendall(s, _head(len(body)) + body)
                first = await asyncio.wait_for(loop.sock_recv(s, 16), 30)
                assert first.startswith(b"HTTP/1.1 200 "), first
                # Hang up with most of the answer unread: a reset, not a clean close.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await _until(lambda: _count(state, "499") == 1, "the request is recorded as 499")
            assert _count(state, "200") == 0

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    logged = [r for r in caplog.records if r.getMessage() == "request"]
    assert [(r.levelno, getattr(r, "status", None)) for r in logged] == [(logging.INFO, 499)]
