"""The ASGI app: Open Inference Protocol (V2) and MLflow routes in front of one batcher per model.

The HTTP layer only translates: it reads the body (bounded), decodes and validates
it against the model's signature (``serving.protocol``), submits one prepared item
to the model's ``Batcher`` and maps the outcome to a status code. The lifespan owns
the batchers: it starts them, and on shutdown (or ``ServiceState.drain`` on SIGTERM)
stops admission, flushes the queues and lets in-flight work finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.batching import (
    Batcher,
    BatchingError,
    BatchPolicy,
    DeadlineExceeded,
    Draining,
    DrainTimeout,
    OutputMismatch,
    QueueFull,
)
from serving.decoding import BodyCodec, BodyDecoder, decode_mlflow, decode_v2
from serving.errors import HttpError, error_response, json_response
from serving.incoming import Incoming, check_content_type, read_body, timeout_s
from serving.metrics import CONTENT_TYPE, UNKNOWN_MODEL, ServiceMetrics
from serving.model import Model, PreparedItem, join_predictions, split_item
from serving.protocol import (
    Decoded,
    Prediction,
    ProtocolError,
    TooManyRows,
    encode_mlflow_response,
    encode_v2_response,
    model_metadata,
    server_metadata,
)
from serving.settings import Settings
from serving.tracing import Tracing, trace_id_of

log = logging.getLogger("serving")
#: Present on requests using the V2 binary tensor extension, which is not implemented.
BINARY_HEADER = "inference-header-content-length"
#: Liveness fails once a batch has run this many times its requests' longest deadline.
LIVENESS_TIMEOUTS = 2
#: After a drain ran out of time, how long the abandoned requests' 503s may take to write.
ANSWER_GRACE_S = 1.0
#: Rows of a part at least when a large request is predicted in parts: the demo model's
#: predict costs about the same for 64 and 1,024 rows (20 vs 24 ms), 35 ms at 4,096.
MIN_PART_ROWS = 1024
#: Added to every answer during a drain, so that no client reuses the connection.
CLOSE = (b"connection", b"close")
#: Status recorded (log and metrics only, never sent) when the client went away: nginx's code.
CLIENT_CLOSED = 499


class _NoAnswer(Response):
    """The answer to a client that went away: nothing is sent (status 499 is only recorded)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return


#: Returned by ``_predict`` when the client disconnected; the front door sends nothing either.
NO_ANSWER = _NoAnswer(status_code=CLIENT_CLOSED)


class _ClientGone(Exception):
    """The client disconnected while its request was queued or predicted."""


class ServiceState:
    """Models, their batchers and the service's lifecycle (started, draining, in flight)."""

    def __init__(self, models: Sequence[Model], settings: Settings, tracing: Tracing) -> None:
        if not models:
            raise ValueError("at least one model is required")
        self.models = {m.name: m for m in models}
        self.output_names = {m.name: tuple(o.name for o in m.outputs) for m in models}
        self.decoder = BodyDecoder()
        self.default = models[0].name
        self.settings = settings
        self.tracing = tracing
        self.metrics = ServiceMetrics()
        policy = BatchPolicy(
            max_batch_size=settings.max_batch_size,
            max_batch_delay_s=settings.max_batch_delay_ms / 1000.0,
            max_queue=settings.max_queue,
            workers=settings.workers,
        )
        self.batchers: dict[str, Batcher[PreparedItem, Prediction]] = {
            m.name: Batcher(
                m.name,
                self._handler(m),
                policy,
                size_of=_rows_of,
                observer=self.metrics.observer(m.name),
            )
            for m in models
        }
        self.started = False
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._drain_task: asyncio.Task[None] | None = None
        # Requests reading their body, and those of them the drain cut short.
        self._reading: set[asyncio.Task[Any]] = set()
        self._cut: set[asyncio.Task[Any]] = set()

    def _handler(self, model: Model) -> Callable[[Sequence[PreparedItem]], list[Prediction]]:
        tracing = self.tracing

        def handle(items: Sequence[PreparedItem]) -> list[Prediction]:
            contexts = [it.trace_context for it in items]
            with tracing.batch_span(model.name, contexts, sum(it.rows for it in items)):
                return model.predict_batch(items)

        return handle

    @property
    def ready(self) -> bool:
        """True once the batchers run and until draining starts."""
        return self.started and not self.draining

    def stuck(self) -> str | None:
        """Name a model whose oldest running batch exceeds the liveness limit, else None.

        A batch's limit is ``LIVENESS_TIMEOUTS`` x the longest deadline among the
        requests it carries (the default request timeout for any without one): no
        request can still be waiting for such a batch, so its predict is hung and holds
        a worker. Liveness then fails so that the orchestrator restarts the process.
        Tied to the admitted work, not to the default: a valid request asking for 60 s
        once failed liveness on a server whose default was 500 ms.
        """
        default = self.settings.request_timeout_ms / 1000.0
        now = time.monotonic()
        for name, batcher in self.batchers.items():
            for since, budget in batcher.running_batches:
                limit = LIVENESS_TIMEOUTS * (default if budget is None else budget)
                if now - since > limit:
                    return f"model {name!r} predict has run {now - since:.1f}s (limit {limit:g}s)"
        return None

    async def read_body(self, request: Incoming, deadline: float) -> bytes:
        """Read ``request``'s body within the settings' limits and ``deadline``.

        Raises ``read_body``'s ``HttpError`` (408, 413, 504), or 503 ``draining`` if a
        drain starts meanwhile: a body still streaming in never holds the drain.
        """
        task = asyncio.current_task()
        assert task is not None
        self._reading.add(task)
        try:
            return await read_body(
                request,
                self.settings.max_body_bytes,
                stall_timeout_s=self.settings.body_timeout_s,
                deadline=deadline,
            )
        except asyncio.CancelledError:
            if task not in self._cut:
                raise
            self._cut.discard(task)
            task.uncancel()
            raise HttpError(503, "draining") from None
        finally:
            self._reading.discard(task)

    async def start(self) -> None:
        """Start every batcher (from the running loop)."""
        for batcher in self.batchers.values():
            await batcher.start()
        self.started = True

    async def drain(self) -> None:
        """Stop admission, flush the queues and wait for in-flight requests (idempotent).

        Bounded by ``settings.drain_timeout_s`` overall; work still running after that
        is abandoned by the caller's shutdown.
        """
        if self._drain_task is None:
            self._drain_task = asyncio.ensure_future(self._drain())
        await asyncio.shield(self._drain_task)

    async def _drain(self) -> None:
        self.draining = True
        timeout = self.settings.drain_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        log.info("draining", extra={"timeout_s": timeout, "in_flight": self.in_flight})
        for task in self._reading:  # answered 503 at once (see read_body)
            self._cut.add(task)
            task.cancel()
        # Admitted requests finish first, with the batchers still taking their work: a
        # request predicted in parts submits its later parts after the drain began.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        results = await asyncio.gather(
            *(b.drain(max(0.0, deadline - loop.time())) for b in self.batchers.values()),
            return_exceptions=True,
        )
        for name, result in zip(self.batchers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("drain failed", exc_info=result, extra={"model": name})
        # Work the batchers gave up on is answered 503 right after; let those answers out.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), ANSWER_GRACE_S)
        self.decoder.close()
        log.info("drained", extra={"in_flight": self.in_flight})

    def model(self, name: str, version: str | None = None) -> Model:
        """Return the served model ``name`` (at ``version`` if given) or raise a 404."""
        model = self.models.get(name)
        if model is None:
            # Not which models are: an unauthenticated caller learns nothing it did not send.
            raise HttpError(404, f"model {name!r} is not served")
        if version is not None and version != model.version:
            raise HttpError(
                404, f"model {name!r} has no version {version!r}; served version: {model.version}"
            )
        return model


def _rows_of(item: PreparedItem) -> int:
    return item.rows


def _prediction_error(model: Model, exc: Exception) -> HttpError:
    if isinstance(exc, QueueFull):
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return HttpError(
            429, f"model {model.name!r} queue is full; retry later", {"Retry-After": retry}
        )
    if isinstance(exc, DrainTimeout):
        return HttpError(503, "not finished within the drain grace period")
    if isinstance(exc, Draining):
        return HttpError(503, "draining")
    if isinstance(exc, DeadlineExceeded):
        return HttpError(504, f"deadline exceeded for model {model.name!r}")
    if isinstance(exc, OutputMismatch | BatchingError):
        log.error("batch failed", extra={"model": model.name, "error": str(exc)})
        return HttpError(500, str(exc))
    # Bisection has isolated this request, so a value/type error is about its data. Only
    # MLflow's schema enforcement speaks to clients; other text may carry internals.
    if _is_mlflow_error(exc):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return HttpError(400, f"model {model.name!r} rejected the input: {first}")
    if isinstance(exc, ValueError | TypeError):
        log.warning(
            "model rejected the input",
            extra={"model": model.name, "error": f"{type(exc).__name__}: {exc}"[:1000]},
        )
        return HttpError(400, f"model {model.name!r} rejected the input")
    log.error("predict failed", exc_info=exc, extra={"model": model.name})
    return HttpError(500, "prediction failed")


def _is_mlflow_error(exc: Exception) -> bool:
    # By name: the app does not import mlflow (tests serve in-memory models without it).
    return any(cls.__name__ == "MlflowException" for cls in type(exc).__mro__)


async def _watch_disconnect(receive: Receive, task: asyncio.Task[Any]) -> bool:
    """Wait for ``http.disconnect`` after the body was read, then cancel ``task``."""
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
    return True


async def _submit(
    batcher: Batcher[PreparedItem, Prediction], item: PreparedItem, deadline: float,
    receive: Receive,
) -> Prediction:  # fmt: skip
    """Submit ``item``; if the client disconnects meanwhile, withdraw it (``_ClientGone``).

    One watcher task per request, created once the body is complete: on disconnect it
    cancels this task, which takes the item out of the queue (or drops its result).
    An item of more than ``max(max_batch_size, MIN_PART_ROWS)`` rows is submitted in
    parts of that size, one after the other, each queued behind the requests that came
    meanwhile: three clients sending 1.39 M-row requests once delayed small requests by
    5-6 s.
    """
    task = asyncio.current_task()
    assert task is not None
    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, task))
    try:
        parts = []
        for part in split_item(item, max(batcher.policy.max_batch_size, MIN_PART_ROWS)):
            parts.append(await batcher.submit(part, deadline=deadline))
        return join_predictions(parts)
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled() and watcher.exception() is None:
            task.uncancel()
            raise _ClientGone() from None
        raise
    finally:
        if watcher.done():
            if not watcher.cancelled():
                watcher.exception()  # retrieved: a failing receive is not worth a log line
        else:
            watcher.cancel()


Encoder = Callable[[Model, Decoded, Prediction], Any]


async def _predict(
    state: ServiceState, request: Incoming, model_name: str, version: str | None,
    endpoint: str, decode: BodyCodec, encode: Encoder,
) -> Response:  # fmt: skip
    started = time.perf_counter()
    label, status, rows, trace_id = UNKNOWN_MODEL, 500, 0, None
    headers: dict[str, str] | None = None
    state.in_flight += 1
    state._idle.clear()
    try:
        model = state.model(model_name, version)
        label = model.name
        if not state.ready:
            raise HttpError(503, "draining" if state.draining else "not ready")
        if BINARY_HEADER in request.headers:
            raise HttpError(
                400,
                "binary tensor extension is not supported; send JSON tensors (binary_data=False)",
            )
        check_content_type(request)
        # The deadline covers reading the body: it starts once the head is in.
        deadline = time.monotonic() + timeout_s(request, state.settings.request_timeout_ms)
        body = await state.read_body(request, deadline)
        limit = state.settings.max_rows_per_request
        names = state.output_names[model.name]
        decoded = await state.decoder.decode(decode, body, model.inputs, names, limit)
        rows = decoded.rows
        attrs = {"model": model.name, "endpoint": endpoint}
        with state.tracing.request_span(endpoint, request.headers, attrs) as span:
            trace_id = trace_id_of(span)
            item = PreparedItem(decoded.columns, decoded.rows, span.get_span_context())
            try:
                prediction = await _submit(
                    state.batchers[model.name], item, deadline, request.receive
                )
            except _ClientGone:
                raise
            except Exception as exc:
                raise _prediction_error(model, exc) from None
        status = 200
        return json_response(encode(model, decoded, prediction))
    except TooManyRows as exc:
        status = 413
        return error_response(413, str(exc))
    except ProtocolError as exc:
        status = 400
        return error_response(400, str(exc))
    except HttpError as exc:
        status, headers = exc.status, exc.headers
        return error_response(exc.status, exc.message, exc.headers)
    except (_ClientGone, ClientDisconnect):
        status = CLIENT_CLOSED  # nobody is listening: record it, send nothing
        return NO_ANSWER
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    except Exception:
        log.exception("unhandled error", extra={"model": label, "endpoint": endpoint})
        return error_response(500, "internal server error", headers)
    finally:
        state.in_flight -= 1
        if state.in_flight == 0:
            state._idle.set()
        elapsed = time.perf_counter() - started
        state.metrics.observe_request(label, endpoint, status, elapsed)
        if state.settings.access_log:
            log.info(
                "request",
                extra={"model": label, "endpoint": endpoint, "status": status, "rows": rows,
                       "latency_ms": round(elapsed * 1000, 3), "trace_id": trace_id},
            )  # fmt: skip


def _v2_encode(model: Model, decoded: Decoded, prediction: Prediction) -> Any:
    return encode_v2_response(
        model.name, model.version, decoded.request_id, prediction, decoded.outputs
    )


def _mlflow_encode(model: Model, decoded: Decoded, prediction: Prediction) -> Any:
    return encode_mlflow_response(prediction)


class _RawRequest:
    """A request of the infer routes read straight from the ASGI scope (see ``InferFrontDoor``)."""

    __slots__ = ("_receive", "headers")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            # The first of repeated headers wins, as with Starlette's Headers.get.
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self.headers: Mapping[str, str] = headers
        self._receive = receive

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` callable (watched for a disconnect once the body is read)."""
        return self._receive

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body chunks; raise ``ClientDisconnect`` if the client goes away."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


def _infer_route(path: str) -> tuple[str, str | None] | None:
    """Return (model, version) if ``path`` is a V2 infer route, else None."""
    parts = path.split("/")
    # /v2/models/{name}/infer or /v2/models/{name}/versions/{version}/infer
    if len(parts) == 5 and parts[4] == "infer":
        version = None
    elif len(parts) == 7 and parts[6] == "infer" and parts[4] == "versions" and parts[5]:
        version = parts[5]
    else:
        return None
    if parts[0] or parts[1] != "v2" or parts[2] != "models" or not parts[3]:
        return None
    return parts[3], version


class InferFrontDoor:
    """The service's ASGI app: infer POSTs go straight to the predict path, the rest to Starlette.

    Profiling under load showed Starlette's middleware, routing and request objects
    costing about a third of the event loop's time per request, and the loop shares
    the GIL with predict. The infer routes (the hot path) therefore skip them; their
    answers are the same ``Response`` objects, written as two ASGI messages. Every
    other request, a mounted ``root_path`` and the lifespan go to Starlette unchanged,
    so ``state`` is Starlette's.
    """

    def __init__(self, app: Starlette, service: ServiceState) -> None:
        self.app: ASGIApp = app
        self.state = app.state
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            service = self._service
            if path == "/invocations":
                response = await _predict(
                    service, _RawRequest(scope, receive), service.default, None, "invocations",
                    decode_mlflow, _mlflow_encode,
                )  # fmt: skip
            elif (route := _infer_route(path)) is not None:
                response = await _predict(
                    service, _RawRequest(scope, receive), route[0], route[1], "v2_infer",
                    decode_v2, _v2_encode,
                )  # fmt: skip
            else:
                response = None
            if response is NO_ANSWER:
                return
            if response is not None:
                headers = response.raw_headers
                if service.draining:
                    headers = [*headers, CLOSE]
                start = {"type": "http.response.start", "status": response.status_code,
                         "headers": headers}  # fmt: skip
                await send(start)
                await send({"type": "http.response.body", "body": response.body})
                return
        await self.app(scope, receive, self._closing_when_draining(send))

    def _closing_when_draining(self, send: Send) -> Send:
        """Wrap ``send`` so that an answer started during a drain closes its connection.

        Without it, keep-alive clients sent one more request on a connection that the
        shutdown then closed, and got a reset instead of an answer.
        """
        service = self._service

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and service.draining:
                message = {**message, "headers": [*message.get("headers", ()), CLOSE]}
            await send(message)

        return closing


def create_app(
    models: Sequence[Model], settings: Settings, tracing: Tracing | None = None
) -> InferFrontDoor:
    """Build the ASGI app serving ``models`` (the first is the default for ``/invocations``).

    Returns the ``InferFrontDoor`` in front of the Starlette app. The lifespan starts
    the batchers and drains them on shutdown; ``app.state.service`` is the
    ``ServiceState`` (``python -m serving`` calls its ``drain`` on SIGTERM first).
    Raises ``ValueError`` if ``models`` is empty or the batch settings are invalid.
    """
    state = ServiceState(models, settings, tracing or Tracing())

    def route(
        fn: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except HttpError as exc:
                return error_response(exc.status, exc.message, exc.headers)

        return endpoint

    async def server(_: Request) -> Response:
        return json_response(server_metadata())

    async def live(_: Request) -> Response:
        stuck = state.stuck()
        if stuck is not None:
            return error_response(503, f"not live: {stuck}")
        return json_response({"live": True})

    async def ready(_: Request) -> Response:
        if state.ready:
            return json_response({"ready": True})
        return error_response(503, "draining" if state.draining else "not ready")

    async def metadata(request: Request) -> Response:
        p = request.path_params
        m = state.model(p["name"], p.get("version"))
        return json_response(model_metadata(m.name, m.version, m.platform, m.inputs, m.outputs))

    async def model_ready(request: Request) -> Response:
        p = request.path_params
        m = state.model(p["name"], p.get("version"))
        if not state.ready:
            return error_response(503, "draining" if state.draining else "not ready")
        return json_response({"name": m.name, "ready": True})

    async def infer(request: Request) -> Response:
        p = request.path_params
        return await _predict(state, request, p["name"], p.get("version"), "v2_infer",
                              decode_v2, _v2_encode)  # fmt: skip

    async def invocations(request: Request) -> Response:
        return await _predict(state, request, state.default, None, "invocations",
                              decode_mlflow, _mlflow_encode)  # fmt: skip

    async def metrics(_: Request) -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def server_error(_: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal server error")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.drain()
            state.tracing.shutdown()

    v2 = "/v2/models/{name}"
    routes = [
        Route("/v2", server, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(v2, route(metadata), methods=["GET"]),
        Route(v2 + "/versions/{version}", route(metadata), methods=["GET"]),
        Route(v2 + "/ready", route(model_ready), methods=["GET"]),
        Route(v2 + "/versions/{version}/ready", route(model_ready), methods=["GET"]),
        Route(v2 + "/infer", infer, methods=["POST"]),
        Route(v2 + "/versions/{version}/infer", infer, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", live, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    # A trailing slash is an unknown route (404), not a 307 whose Location is built
    # from the client's own Host header.
    app.router.redirect_slashes = False
    app.state.service = state
    return InferFrontDoor(app, state)
