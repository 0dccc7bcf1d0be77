"""Writing an infer answer, and recording its request only once it is written.

A request used to be recorded (metrics and access log) when its answer was built,
before it was sent: a client that hung up while a large answer (a 500,000-row
prediction, about 1 MB) was still being written was logged as 200. ``Recorded``
wraps the answer; writing it calls ``record`` with the status the client got, or
with 499 (``CLIENT_CLOSED``) if the connection was lost before the whole answer
was handed to it. An answer of at most ``CHUNK_BYTES`` is written in one message
(it fits in the socket's buffers); a larger one in chunks of that size, each
written once the connection has taken the previous ones (uvicorn's flow control),
while a watcher waits for the client's disconnect. The last chunk's bytes, and
what the kernel already buffers, cannot be told apart from a delivered answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: Status recorded (log and metrics only, never sent) when the client went away: nginx's code.
CLIENT_CLOSED = 499
#: Answers larger than this are written in chunks of it, watching for a hang-up.
CHUNK_BYTES = 65536


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def write_answer(
    send: Send,
    receive: Receive,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes | memoryview,
) -> bool:
    """Send ``status``, ``headers`` and ``body``; False if the client hung up before the end."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if len(body) <= CHUNK_BYTES:
        await send({"type": "http.response.body", "body": body})
        return True
    watcher = asyncio.get_running_loop().create_task(_disconnected(receive))
    try:
        for start in range(0, len(body), CHUNK_BYTES):
            if watcher.done():
                return False
            chunk = body[start : start + CHUNK_BYTES]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(0)  # a disconnect met during the last chunk's wait is seen now
        if watcher.done():
            return False
        await send({"type": "http.response.body", "body": b""})
        return True
    finally:
        retire(watcher)


def retire(watcher: asyncio.Task[Any]) -> None:
    """Stop a disconnect watcher: cancel it if it still waits, else retrieve its outcome
    (a failing receive is not worth a log line)."""
    if watcher.done():
        if not watcher.cancelled():
            watcher.exception()
    else:
        watcher.cancel()


class Recorded(Response):
    """An answer that calls ``record(status)`` once written: 499 if the client hung up first.

    ``closing`` adds ``Connection: close`` (the front door sets it during a drain).
    """

    def __init__(self, response: Response, record: Callable[[int], None]) -> None:
        self.status_code = response.status_code
        self.body = response.body
        self.raw_headers = response.raw_headers
        self.background = None
        self._record = record
        self.closing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self.raw_headers
        if self.closing:
            headers = [*headers, (b"connection", b"close")]
        status = CLIENT_CLOSED
        try:
            if await write_answer(send, receive, self.status_code, headers, self.body):
                status = self.status_code
        finally:
            self._record(status)
