"""Reading a request: its body (bounded in size and time) and its headers.

The body read is bounded three ways: ``--max-body-bytes`` (413, from Content-Length
or while the body streams), ``--body-timeout-s`` between two parts of the body (408:
a body shorter than its Content-Length was once never answered), and the request's
own deadline, which starts when the request head is complete (504: a body dribbled
over 26 s was once served although it asked for 1 s).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from starlette.types import Receive

from serving.errors import HttpError

TIMEOUT_HEADER = "x-request-timeout-ms"
MAX_TIMEOUT_MS = 600_000


class Incoming(Protocol):
    """What the predict path needs of a request: its headers and its body stream.

    Starlette's ``Request`` has both; so does ``fastpath.RawRequest``, the front door's
    lighter stand-in for the infer routes.
    """

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def receive(self) -> Receive: ...

    def stream(self) -> AsyncIterator[bytes]: ...


def _is_digits(raw: str) -> bool:
    # str.isdigit alone accepts "¹" or "٣", which int() then refuses or reads differently.
    return raw.isascii() and raw.isdigit()


async def read_body(
    request: Incoming,
    limit: int,
    *,
    stall_timeout_s: float | None = None,
    deadline: float | None = None,
) -> bytes:
    """Read the request body, refusing with 413 as soon as it exceeds ``limit`` bytes.

    ``stall_timeout_s`` bounds the wait for each part of the body (None: no bound);
    ``deadline`` is the request's ``time.monotonic()`` deadline (None: none). Raises
    ``HttpError`` 400 if Content-Length is not a decimal integer, 413 if it or the
    streamed body exceeds ``limit``, 408 when the body stalls, 504 when the deadline
    passes; ``ClientDisconnect`` if the client goes away.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not _is_digits(declared):
            raise HttpError(400, "header Content-Length must be a non-negative decimal integer")
        # More digits than any limit has: too large, without converting a huge string.
        if len(declared) > 18 or int(declared) > limit:
            raise HttpError(413, f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    # The loop's clock may differ from time.monotonic(): convert the deadline once.
    end = math.inf if deadline is None else loop.time() + (deadline - time.monotonic())
    stall = math.inf if stall_timeout_s is None else stall_timeout_s

    def due() -> float | None:
        when = min(end, loop.time() + stall)
        return None if when == math.inf else when

    try:
        async with asyncio.timeout_at(due()) as timer:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
                timer.reschedule(due())
    except TimeoutError:
        if loop.time() >= end:
            raise HttpError(504, "deadline exceeded while the request body was read") from None
        raise HttpError(
            408, f"request body stalled: no data for {stall:g}s (--body-timeout-s)"
        ) from None
    return b"".join(chunks)


def check_content_type(request: Incoming) -> None:
    """Refuse (415) a declared Content-Type that is not JSON; none at all is tried as JSON."""
    raw = request.headers.get("content-type")
    if raw is None:
        return  # lenient: a body without a declared type is tried as JSON
    media = raw.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HttpError(415, f"Content-Type {media!r} is not supported; use application/json")


def timeout_s(request: Incoming, default_ms: int) -> float:
    """The request's time budget in seconds: ``X-Request-Timeout-Ms`` or ``default_ms``.

    Raises ``HttpError`` 400 naming the header unless it is an integer in 1..600,000.
    """
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_ms / 1000.0
    raw = raw.strip()
    if not _is_digits(raw) or len(raw) > 7 or not 1 <= int(raw) <= MAX_TIMEOUT_MS:
        raise HttpError(
            400, f"header X-Request-Timeout-Ms must be an integer in 1..{MAX_TIMEOUT_MS}"
        )
    return int(raw) / 1000.0
