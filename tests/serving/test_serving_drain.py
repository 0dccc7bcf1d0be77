"""Integration: what a drain does to clients in the middle of something (SIGTERM, real server).

A request still sending its body is answered at once, and keep-alive clients are told
to close, so that none sends a request on a connection the shutdown then closes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Server

pytestmark = pytest.mark.integration

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [41.0, 52.5, 1.0]}]}
).encode()
HEAD = (
    b"POST /v2/models/anomaly/infer HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n"
)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


def test_a_stalled_body_is_answered_503_at_once_and_does_not_hold_the_drain(
    limited_server: Server,
) -> None:
    assert limited_server.proc is not None

    async def main() -> tuple[int, dict[str, str], bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", limited_server.port)
        writer.write(HEAD % (len(BODY) + 100) + BODY[:10])  # and the rest never comes
        await writer.drain()
        await asyncio.sleep(0.3)  # let the server read the head and start on the body
        assert limited_server.proc is not None
        t0 = time.monotonic()
        limited_server.proc.send_signal(signal.SIGTERM)
        status, headers, body = await asyncio.wait_for(_read_answer(reader), 10)
        writer.close()
        return status, headers, body, time.monotonic() - t0

    status, headers, body, answered_after = asyncio.run(main())
    assert (status, json.loads(body)) == (503, {"error": "draining"})
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert answered_after < 2.0  # at once, not after the 15 s drain timeout
    t0 = time.monotonic()
    assert limited_server.proc.wait(timeout=30) == 0
    assert time.monotonic() - t0 < 5.0


@dataclass
class _Client:
    """One keep-alive client's record: answers, and requests that got none."""

    answers: list[tuple[int, bool]] = field(default_factory=list)  # (status, closing)
    lost_on_reused: int = 0
    lost_on_fresh: int = 0


async def _keep_alive_client(port: int, stop_at: float, record: _Client) -> None:
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return  # the listener is closed: the server is gone
        reused = False
        try:
            while time.monotonic() < stop_at:
                writer.write(HEAD % len(BODY) + BODY)
                try:
                    status, headers, _ = await asyncio.wait_for(_read_answer(reader), 10)
                except (asyncio.IncompleteReadError, ConnectionError):
                    if reused:
                        record.lost_on_reused += 1
                    else:
                        record.lost_on_fresh += 1
                    break
                closing = headers.get("connection") == "close"
                record.answers.append((status, closing))
                if closing:
                    break
                reused = True
        finally:
            writer.close()


def _sigterm_under_load(
    server: Server,
    clients: Sequence[Callable[..., Awaitable[None]]],
    answers: Callable[[], int],
) -> None:
    """Run ``clients`` (each called with ``stop_at``, 30 s from now), SIGTERM the server
    once ``answers()`` reaches 200, and wait for every client to finish."""

    async def main() -> None:
        stop_at = time.monotonic() + 30
        tasks = [asyncio.ensure_future(client(stop_at=stop_at)) for client in clients]
        for _ in range(1000):  # bounded wait for the load to be under way
            if answers() >= 200:
                break
            await asyncio.sleep(0.01)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*tasks)

    asyncio.run(main())


def test_keep_alive_clients_are_told_to_close_during_the_drain(limited_server: Server) -> None:
    assert limited_server.proc is not None
    records = [_Client() for _ in range(64)]
    clients = [
        functools.partial(_keep_alive_client, limited_server.port, record=r) for r in records
    ]
    _sigterm_under_load(limited_server, clients, lambda: sum(len(r.answers) for r in records))
    assert limited_server.proc.wait(timeout=30) == 0
    answers = [a for r in records for a in r.answers]
    drained = [closing for status, closing in answers if status == 503]
    assert drained, "no request met the drain"
    assert all(drained), "a 503 during the drain did not close its connection"
    # Before the fix each of the 64 clients sent one more request on its connection
    # after a 503 and got a reset when the listener closed.
    assert sum(r.lost_on_reused for r in records) == 0
    assert {status for status, _ in answers} <= {200, 429, 503}


@dataclass
class _Fresh:
    """Clients opening a new connection per request: what became of each request."""

    answered: list[int] = field(default_factory=list)
    refused: int = 0  # the connection was refused: no byte of the request was sent
    lost: int = 0  # the request was sent and got a reset or an end of stream, no answer


async def _fresh_connections_client(port: int, stop_at: float, record: _Fresh) -> None:
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except OSError:
            record.refused += 1
            return  # the listener is closed: the server is gone
        try:
            writer.write(HEAD % len(BODY) + BODY)
            status, _, _ = await asyncio.wait_for(_read_answer(reader), 10)
            record.answered.append(status)
        except (asyncio.IncompleteReadError, ConnectionError):
            record.lost += 1
        finally:
            writer.close()


def test_connections_opened_as_the_listener_closes_get_an_answer_or_a_refusal(
    limited_server: Server,
) -> None:
    assert limited_server.proc is not None
    records = [_Fresh() for _ in range(32)]
    clients = [
        functools.partial(_fresh_connections_client, limited_server.port, record=r) for r in records
    ]
    _sigterm_under_load(limited_server, clients, lambda: sum(len(r.answered) for r in records))
    assert limited_server.proc.wait(timeout=30) == 0
    answered = [status for r in records for status in r.answered]
    assert 503 in answered, "no request met the drain"
    assert set(answered) <= {200, 429, 503}
    assert sum(r.refused for r in records) == len(records)  # each ended at a closed listener
    # Before the fix, connections the kernel had queued, or the loop had just accepted,
    # when the listener closed were reset after their request was sent.
    assert sum(r.lost for r in records) == 0


def test_a_second_signal_exits_at_once_and_non_zero(limited_server: Server) -> None:
    assert limited_server.proc is not None
    offset = limited_server.log_path.stat().st_size
    # Four requests at the row cap, predicted in parts of 1,024 rows one after the
    # other: about forty batches, still running when the signals come.
    rows = [[41.0, 52.5, 120.0 + i % 7] for i in range(10_000)]
    big = json.dumps({"inputs": [{"name": "input", "shape": [len(rows), 3], "datatype": "FP64",
                                  "data": rows}]}).encode()  # fmt: skip

    def batches() -> float:
        text = httpx.get(f"{limited_server.url}/metrics", timeout=5).text
        line = next(x for x in text.splitlines() if x.startswith("serving_batch_requests_count"))
        return float(line.rsplit(" ", 1)[1])

    async def main() -> None:
        assert limited_server.proc is not None
        before = batches()
        writers = []
        for _ in range(4):
            _reader, writer = await asyncio.open_connection("127.0.0.1", limited_server.port)
            writer.write(HEAD % len(big) + big)
            writers.append(writer)
        for _ in range(500):  # bounded wait until their parts are being predicted
            if batches() >= before + 2:
                break
            await asyncio.sleep(0.01)
        limited_server.proc.send_signal(signal.SIGTERM)
        for _ in range(500):  # bounded wait: signals do not queue, so one at a time
            if "signal received" in limited_server.log_since(offset):
                break
            await asyncio.sleep(0.01)
        limited_server.proc.send_signal(signal.SIGTERM)
        for writer in writers:
            writer.close()

    asyncio.run(main())
    t0 = time.monotonic()
    assert limited_server.proc.wait(timeout=30) == 1  # work was abandoned
    assert time.monotonic() - t0 < 5.0  # not the 15 s drain timeout
    assert "second signal: exiting now" in limited_server.log_since(offset)
