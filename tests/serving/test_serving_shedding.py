"""Shedding under overload: a real uvicorn server in-process with the service's protocol.

The model blocks on a gate the test releases (``GatedModel``), so "the queue is full"
is a state the test makes and waits for, not a timing guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn

from serving.app import ServiceState, create_app
from serving.connections import ConnectionLimits
from serving.settings import ModelSpec, Settings
from serving.shedding import SHED_BODY_BYTES, shedding_protocol
from tests.serving.test_serving_disconnect import GatedModel, _body, _count, _head, _until


@contextlib.asynccontextmanager
async def serve(
    model: GatedModel, refusal_delay_ms: int = 0
) -> AsyncIterator[tuple[int, ServiceState]]:
    """A server whose queue holds one request, with one batch of one row at a time."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(
        models=(ModelSpec("gated", "u"),),
        port=port,
        max_queue=1,
        max_batch_size=1,
        workers=1,
        body_timeout_s=60.0,  # a body the service waited for would not be answered in the test
        refusal_delay_ms=refusal_delay_ms,
    )
    app = create_app([model], settings)
    state: ServiceState = app.state.service
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        http=shedding_protocol(ConnectionLimits(), state),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await _until(lambda: server.started, "the server started")
        yield port, state
    finally:
        model.gate.set()
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _fill_queue(port: int, state: ServiceState, model: GatedModel) -> list[object]:
    """One request predicting (held by the gate), one queued: the queue is full."""
    held = []
    for x in (1.0, 2.0):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_head(len(_body(x))) + _body(x))
        held.append((reader, writer))
        if x == 1.0:
            await _until(model.running.is_set, "the first batch runs")
    batcher = state.batchers["gated"]
    await _until(lambda: batcher.queue_depth == 1, "the second request is queued")
    return held


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


def test_a_full_queue_refuses_before_the_body_is_read() -> None:
    model = GatedModel()

    async def main() -> tuple[int, dict[str, str], bytes]:
        async with serve(model) as (port, state):
            held = await _fill_queue(port, state, model)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # A head announcing a large body, and none of it: refused at once, not waited for.
            writer.write(_head(SHED_BODY_BYTES + 1000))
            answer = await _read_answer(reader)
            for _, w in [*held, (reader, writer)]:
                w.close()  # type: ignore[attr-defined]
            return answer

    status, headers, body = asyncio.run(main())
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert json.loads(body) == {"error": "model 'gated' queue is full; retry later"}
    assert model.seen == [1.0, 2.0]


def test_refusals_under_a_full_queue_keep_the_connection_and_log_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = GatedModel()
    n = 200

    async def main() -> tuple[list[tuple[int, dict[str, str], bytes]], float, float]:
        async with serve(model) as (port, state):
            held = await _fill_queue(port, state, model)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.monotonic()
            answers = []
            for i in range(n):  # keep-alive: each on the connection the previous one used
                path = b"/v2/models/gated/infer" if i % 2 else b"/v2/models/ghost/infer"
                body = _body(3.0)
                writer.write(_head(len(body)).replace(b"/v2/models/gated/infer", path) + body)
                answers.append(await _read_answer(reader))
            elapsed = time.monotonic() - t0
            model.gate.set()  # the queue empties: the same connection is served again
            batcher = state.batchers["gated"]
            await _until(lambda: batcher.queue_depth == 0 and batcher.in_flight == 0, "idle")
            body = _body(4.0)
            writer.write(_head(len(body)) + body)
            answers.append(await _read_answer(reader))
            counted = _count(state, "429")
            for _, w in [*held, (reader, writer)]:
                w.close()  # type: ignore[attr-defined]
            return answers, elapsed, counted

    with caplog.at_level(logging.INFO, logger="serving"):
        answers, elapsed, counted = asyncio.run(main())
    refused = answers[:n]
    assert {status for status, _, _ in refused[1::2]} == {429}
    assert all(int(h["retry-after"]) >= 1 for _, h, _ in refused[1::2])
    assert {json.loads(b)["error"] for s, _, b in refused[::2]} == {"model 'ghost' is not served"}
    assert all(h["content-type"] == "application/json" for _, h, _ in refused)
    assert answers[-1][0] == 200 and json.loads(answers[-1][2])["outputs"][0]["data"] == [4.0]
    assert counted == n // 2  # every refusal is counted in the metrics
    assert model.seen == [1.0, 2.0, 4.0]
    # The access log: at most one line per second for each kind of refusal (one per
    # refusal before: 200 lines), each with the count of those it left out.
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    refusal_lines = [r for r in lines if getattr(r, "status", None) in (404, 429)]
    assert 1 <= len(refusal_lines) <= 2 * (1 + int(elapsed))
    assert all(getattr(r, "suppressed", None) is not None for r in refusal_lines)


def test_a_shed_refusal_is_held_before_it_is_written_and_keeps_the_connection() -> None:
    model = GatedModel()

    async def main() -> list[tuple[int, float]]:
        async with serve(model, refusal_delay_ms=300) as (port, _state):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answers = []
            for _ in range(3):  # one connection: each refusal is held, then it is reused
                body = _body(3.0)
                t0 = time.monotonic()
                writer.write(_head(len(body)).replace(b"/gated/", b"/ghost/") + body)
                status, _, _ = await _read_answer(reader)
                answers.append((status, time.monotonic() - t0))
            writer.close()
            return answers

    answers = asyncio.run(main())
    assert [status for status, _ in answers] == [404, 404, 404]
    assert all(after >= 0.3 for _, after in answers)  # held --refusal-delay-ms at least
