"""Shedding: refusing an infer request in the HTTP protocol, before the app sees it.

Under a flood of refused requests (closed-loop clients retrying a 429 at once, or a
client flooding an unknown model's route), each refusal went through the whole ASGI
path: a task, the scope, the body read and decoded, the answer in two writes, an
access log line. With ``--max-queue 8`` and 200 retrying clients that left predict
22 answers/s against 847 with the default queue (``python -m bench.overload``).

``SheddingProtocol`` asks ``shed(method, target)`` once a request head is complete;
``Shedder`` (built on the ``ServiceState``) answers for a POST to an infer route:

- 404 when the model (or version) is not served, the same answer as the app's;
- 429 with ``Retry-After`` when the model's queue is full (``Batcher.check_room``);
- None otherwise (the request goes to the app as usual), and always while the
  service is not ready or draining, for a target the app must decode
  (percent-encoding), or under a ``root_path``.

The protocol then discards the body (only a ``Content-Length`` body of at most
``SHED_BODY_BYTES``; a larger or chunked one goes to the app, which sheds it before
reading it) and writes the answer in one write, keeping the connection alive, after
holding it ``--refusal-delay-ms`` (reading the connection paused meanwhile): clients
that retry at once are paced, so that the refusals leave the CPU to the work. Shed
requests are counted in ``serving_requests_total``; their access log lines are
rate-limited (``serving.predict.log_refusal``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from serving.batching.errors import QueueFull
from serving.connections import (
    ConnectionLimits,
    GuardedHttpToolsProtocol,
    RateLimitedLog,
    error_bytes,
)
from serving.errors import HttpError, known_answer
from serving.fastpath import infer_route
from serving.metrics import UNKNOWN_MODEL
from serving.predict import log_refusal

if TYPE_CHECKING:
    from serving.service import ServiceState

#: Bodies of at most this many bytes (by ``Content-Length``) may be shed by the protocol.
SHED_BODY_BYTES = 65536
#: A shed request's answer: status, message and extra headers.
Refusal = tuple[int, str, dict[str, str]]
INVOCATIONS_PATH = b"/invocations"
V2_MODELS = b"/v2/models/"


class Shedder:
    """Decides, from a request head alone, whether to refuse it (see the module doc)."""

    def __init__(self, service: ServiceState) -> None:
        self._service = service
        self.delay_s = service.settings.refusal_delay_ms / 1000.0
        """How long the protocol holds a refusal before writing it (``--refusal-delay-ms``)."""

    @property
    def draining(self) -> bool:
        """True once the service's drain has begun."""
        return self._service.draining

    def __call__(self, method: bytes, target: bytes) -> Refusal | None:
        service = self._service
        if method != b"POST" or not service.ready:
            return None
        path = target.split(b"?", 1)[0]
        if b"%" in path:
            return None
        if path == INVOCATIONS_PATH:
            endpoint, name, version = "invocations", service.default, None
        elif path.startswith(V2_MODELS):
            route = _infer_route(path)
            if route is None:
                return None
            endpoint, (name, version) = "v2_infer", route
        else:
            return None
        label = UNKNOWN_MODEL
        try:
            served = service.model(name, version)
            label = served.name
            service.batchers[served.name].check_room()
            return None
        except HttpError as exc:
            refusal = (exc.status, exc.message, exc.headers)
        except QueueFull as exc:
            answer = known_answer(exc, label)
            assert answer is not None
            refusal = (answer.status, answer.message, answer.headers)
        service.metrics.observe_request(label, endpoint, refusal[0], 0.0)
        if service.settings.access_log:
            log_refusal(label, endpoint, refusal[0])
        return refusal


def _infer_route(path: bytes) -> tuple[str, str | None] | None:
    try:
        return infer_route(path.decode("ascii"))
    except UnicodeDecodeError:
        return None


class SheddingProtocol(GuardedHttpToolsProtocol):
    """The guarded protocol, refusing what ``shed`` refuses without the app (module doc)."""

    shed: ClassVar[Shedder | None] = None

    _shedding: bytes | None = None
    _close_after_shed = False
    _held: asyncio.TimerHandle | None = None
    _held_answer = b""
    _refusal: tuple[int, str, list[tuple[bytes, bytes]]] = (503, "", [])
    _answer_closes = False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._held is not None:
            self._held.cancel()
            self._held = None
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        if self._held is not None:  # a pipelined request: the held answer goes first
            self._held.cancel()
            self._write_shed()
        if self._shed_now():
            self._awaiting_head = False
            self._head_bytes = 0
            return  # the head timer stays armed: the small body must come with the head
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._shedding is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        answer = self._shedding
        if answer is None:
            super().on_message_complete()
            return
        self._shedding = None
        self._awaiting_head = True
        self._head_bytes = 0
        self._held_answer = answer
        shed = self.shed
        delay = 0.0 if shed is None or self._close_after_shed else shed.delay_s
        if delay <= 0:
            self._write_shed()
            return
        # Held: the client waits instead of retrying at once; holding costs a timer.
        self._disarm_head_timer()
        self.flow.pause_reading()
        self._held = self.loop.call_later(delay, self._write_shed)

    def _write_shed(self) -> None:
        self._held = None
        answer, self._held_answer = self._held_answer, b""
        if self.transport.is_closing():
            return
        shed = self.shed
        if shed is not None and shed.draining:
            self._close_after_shed = True
        if self._close_after_shed and not self._answer_closes:
            # A drain or the shutdown began while the refusal was held: the answer says
            # it closes its connection, or the client would send its next request into a
            # connection about to close and get a reset.
            answer = error_bytes(*self._refusal, close=True)
        self.transport.write(answer)
        self.flow.resume_reading()
        if self._close_after_shed:
            self.transport.close()
        else:
            self._arm_head_timer()

    def _head_timeout(self) -> None:
        if self._shedding is not None and not self.transport.is_closing():
            self._shedding = None
            timeout = self.limits.header_timeout_s
            self.refusals.warning("request body not received in time", timeout_s=timeout)
            self._refuse(408, f"request body not received within {timeout:g}s")
            return
        super()._head_timeout()

    def shutdown(self) -> None:
        """A request being shed still gets its answer, then the connection closes."""
        if self._shedding is not None:
            self._close_after_shed = True
            return
        if self._held is not None:
            self._held.cancel()
            self._close_after_shed = True
            self._write_shed()
            return
        super().shutdown()

    def _shed_now(self) -> bool:
        shed = self.shed
        cycle = self.cycle
        if shed is None or self._refused or self.root_path or self.pipeline:
            return False
        if cycle is not None and not cycle.response_complete:
            return False  # an answer is still due on this connection: this one waits its turn
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name in (b"transfer-encoding", b"expect", b"upgrade"):
                return False
        if length is None or not length.isdigit() or int(length) > SHED_BODY_BYTES:
            return False
        parser = self.parser
        assert parser is not None
        refusal = shed(parser.get_method(), self.url)
        if refusal is None:
            return False
        status, message, extra = refusal
        keep_alive = parser.should_keep_alive() and parser.get_http_version() == "1.1"
        self._close_after_shed = not keep_alive
        headers = [*self.server_state.default_headers]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        self._shedding = error_bytes(status, message, headers, close=not keep_alive)
        self._refusal = (status, message, headers)
        self._answer_closes = not keep_alive
        return True


def shedding_protocol(limits: ConnectionLimits, service: ServiceState) -> type[SheddingProtocol]:
    """The ``uvicorn.Config(http=...)`` class enforcing ``limits`` and shedding for ``service``."""
    return type(
        "SheddingProtocol",
        (SheddingProtocol,),
        {"limits": limits, "refusals": RateLimitedLog(), "lingering": 0, "shed": Shedder(service)},
    )
