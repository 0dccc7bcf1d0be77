"""Connection-level limits: uvicorn's httptools protocol with a bounded head and connection count.

uvicorn (0.54, pinned) bounds neither the size of a request head nor the time a
client may take to send it, and accepts connections until the process runs out of
file descriptors. Measured against the service before these limits: a 32 MiB header
value and 100,000 headers were served, ten unterminated 50 MiB headers held 529 MB,
and 20,000 connections that never sent a byte exhausted the descriptors, so that
every new client got a reset for 18 s. ``guarded_protocol`` returns the protocol
class given to uvicorn (``Config(http=...)``), which adds:

- a total head size limit (request line + headers): 431, counted while the head
  streams in, so an unterminated header never holds more than the limit plus one read;
- a head timeout, from the connection's start or from its previous answer until its
  request head is complete: 408 if part of a head came, a quiet close if nothing did;
- a cap on open connections: beyond it a new connection is answered 503 and closed;
- parser (framing) errors answered as JSON 400 with the parser's reason;
- at shutdown, a request whose head is arriving still gets its answer.

Refusals are answered in the service's JSON error shape with ``Connection: close``
and logged as rate-limited warnings. uvicorn's protocol internals are used here and
nowhere else; ``tests/serving/test_serving_connections.py`` checks each of them.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("serving")

#: How long a refused connection is still read (and discarded) so that the client
#: reads its answer instead of a reset for unread data; then it is closed.
LINGER_S = 1.0
#: At shutdown, how long a connection that has sent nothing yet may still begin a request.
SHUTDOWN_GRACE_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-process connection limits; defaults are those of the flags."""

    max_connections: int = 1024
    """Open connections at most; a new one beyond is answered 503 and closed."""
    max_header_bytes: int = 65536
    """Request line plus headers, in bytes, at most; 431 above it."""
    header_timeout_s: float = 10.0
    """Time to send a complete request head, from connect or the previous answer."""


class RateLimitedLog:
    """Logs each kind of event at most once per ``interval_s``, with the count it left out.

    ``clock`` is injectable (default ``time.monotonic``) so that tests need no sleep.
    """

    def __init__(
        self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, message: str, **extra: Any) -> bool:
        """Log ``message`` as a warning unless it was logged within the interval; True if logged."""
        return self.log(logging.WARNING, message, message, **extra)

    def log(self, level: int, key: str, message: str, **extra: Any) -> bool:
        """Log ``message`` at ``level`` unless ``key`` was logged within the interval."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        log.log(level, message, extra={**extra, "suppressed": suppressed})
        return True


def error_bytes(
    status: int,
    message: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    close: bool = True,
) -> bytes:
    """A complete HTTP/1.1 answer ``{"error": message}`` with ``status`` and ``headers``.

    With ``close`` (the default) it closes the connection.
    """
    body = orjson.dumps({"error": message})
    phrase = http.HTTPStatus(status).phrase.encode()
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
    lines.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
    if close:
        lines.append(b"connection: close\r\n")
    lines += [b"\r\n", body]
    return b"".join(lines)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``limits`` enforced (see the module doc)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    refusals: ClassVar[RateLimitedLog] = RateLimitedLog()
    lingering: ClassVar[int] = 0

    _refused = False
    _awaiting_head = True
    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None

    # --- connections ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection, or answer 503 and close it when the cap is reached."""
        limit = self.limits.max_connections
        if len(self.connections) >= limit:
            self.transport = transport
            self.refusals.warning("connection refused: too many open connections", limit=limit)
            self._refuse(503, f"too many open connections (limit {limit}); retry later")
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its timers."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a head over the limit and answer parser errors as JSON."""
        parser = self.parser
        if self._refused or parser is None:
            return  # lingering: read and discard until closed
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if not self._refused:  # a callback refused the request: already answered
                self.refusals.warning("invalid HTTP request", error=str(exc))
                self._refuse(400, f"invalid HTTP request: {exc}")
            return
        if self._awaiting_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse_large_head()

    def send_400_response(self, msg: str) -> None:
        """Answer a framing error as JSON (uvicorn's own answer is text/plain)."""
        self._refuse(400, f"invalid HTTP request: {msg}")

    def shutdown(self) -> None:
        """At server shutdown, let a request whose head is arriving get its answer first.

        The app answers it 503 ``draining`` with ``Connection: close``; the head timeout
        bounds the wait. A connection with no request yet (one accepted as the listener
        closed, whose request may be on its way) is closed only if none has begun after
        ``SHUTDOWN_GRACE_S``. Any other connection is handled as uvicorn does.
        """
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._awaiting_head and not self._refused and not self.pipeline:
            if not self._head_bytes:
                self._disarm_head_timer()
                self._head_timer = self.loop.call_later(SHUTDOWN_GRACE_S, self._shutdown_grace)
            return
        super().shutdown()

    def _shutdown_grace(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:  # a request began: the head timeout bounds it from now
            self._arm_head_timer()
        else:
            self.transport.close()

    # --- parser callbacks ---

    def on_headers_complete(self) -> None:
        """Check the head's exact size, then hand the request to the app."""
        self._awaiting_head = False
        self._disarm_head_timer()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse_large_head()
            raise _Refused()
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The body is complete: what follows is the next request's head."""
        self._awaiting_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """After an answer, the next head must come within the head timeout.

        So must the rest of a body answered before it was read (a 429 sheds a request
        before reading its body): a dribbled body cannot hold the connection.
        """
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_head_timer()

    # --- refusing ---

    def _refuse_large_head(self) -> None:
        limit = self.limits.max_header_bytes
        self.refusals.warning("request head too large", limit=limit)
        self._refuse(431, f"request line and headers exceed the limit of {limit} bytes")

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refused:
            return
        timeout = self.limits.header_timeout_s
        if self._awaiting_head and self._head_bytes:
            self.refusals.warning("request head not received in time", timeout_s=timeout)
            self._refuse(408, f"request head not received within {timeout:g}s")
        else:  # never sent anything (or nothing since its last answer): close quietly
            self.refusals.warning("idle connection closed", timeout_s=timeout)
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` as JSON, stop parsing, and close after a short linger."""
        self._refused = True
        self._disarm_head_timer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's own answer, if any, is not written
            cycle.message_event.set()
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(error_bytes(status, message))
        cls = type(self)
        if cls.lingering >= self.limits.max_connections or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # the client sees the answer, then end of stream
        cls.lingering += 1

        def close() -> None:
            cls.lingering -= 1
            transport.close()

        self.loop.call_later(LINGER_S, close)


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """Return the protocol class enforcing ``limits``, for ``uvicorn.Config(http=...)``."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"limits": limits, "refusals": RateLimitedLog(), "lingering": 0},
    )
