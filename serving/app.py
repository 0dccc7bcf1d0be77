"""The ASGI app: Open Inference Protocol (V2) and MLflow routes in front of one batcher per model.

Routes, their handlers and the lifespan only. The infer routes' work is
``serving.predict``; the fast path in front of Starlette is ``serving.fastpath``; the
models, batchers and lifecycle are ``serving.service``. The lifespan starts the
batchers and drains them on shutdown (``ServiceState.drain``, also called on SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.errors import HttpError, error_response, json_response
from serving.fastpath import InferFrontDoor
from serving.incoming import read_body
from serving.metrics import CONTENT_TYPE
from serving.model import Model
from serving.predict import INVOCATIONS, V2_EXPLAIN, V2_INFER, predict
from serving.protocol import model_metadata, server_metadata
from serving.service import ServiceState
from serving.settings import Settings
from serving.startup import StartupClock
from serving.tracing import Tracing

__all__ = ["HttpError", "InferFrontDoor", "ServiceState", "create_app", "read_body"]

log = logging.getLogger("serving")

Handler = Callable[[Request], Awaitable[Response]]


def _answering_http_errors(fn: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except HttpError as exc:
            return error_response(exc.status, exc.message, exc.headers)

    return endpoint


def create_app(
    models: Sequence[Model],
    settings: Settings,
    tracing: Tracing | None = None,
    startup: StartupClock | None = None,
) -> InferFrontDoor:
    """Build the ASGI app serving ``models`` (the first is the default for ``/invocations``).

    ``startup``: the laps so far (``python -m serving`` passes its own, counted from
    the process's start); the service laps the rest up to ready.

    Returns the ``InferFrontDoor`` in front of the Starlette app. The lifespan starts
    the batchers and drains them on shutdown; ``app.state.service`` is the
    ``ServiceState`` (``python -m serving`` calls its ``drain`` on SIGTERM first).
    Raises ``ValueError`` if ``models`` is empty or the batch settings are invalid.
    """
    state = ServiceState(models, settings, tracing or Tracing(), startup)

    async def server(_: Request) -> Response:
        return json_response(server_metadata())

    async def live(_: Request) -> Response:
        stuck = state.stuck()
        if stuck is not None:
            return error_response(503, f"not live: {stuck}")
        return json_response({"live": True})

    async def ready(_: Request) -> Response:
        reason = state.not_ready()
        return json_response({"ready": True}) if reason is None else error_response(503, reason)

    async def metadata(request: Request) -> Response:
        p = request.path_params
        m = state.model(p["name"], p.get("version"))
        return json_response(model_metadata(m.name, m.version, m.platform, m.inputs, m.outputs))

    async def model_ready(request: Request) -> Response:
        p = request.path_params
        m = state.model(p["name"], p.get("version"))
        reason = state.not_ready()
        if reason is not None:
            return error_response(503, reason)
        return json_response({"name": m.name, "ready": True})

    async def infer(request: Request) -> Response:
        p = request.path_params
        return await predict(state, request, V2_INFER, model=p["name"], version=p.get("version"))

    async def explain(request: Request) -> Response:
        p = request.path_params
        return await predict(state, request, V2_EXPLAIN, model=p["name"], version=p.get("version"))

    async def invocations(request: Request) -> Response:
        return await predict(state, request, INVOCATIONS, model=state.default)

    async def drift(request: Request) -> Response:
        name = state.model(request.path_params["name"]).name
        report = state.drift.report(name)
        if report is None:
            raise HttpError(404, f"model {name!r} has no drift reference: drift is not checked")
        return json_response(report)

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
        Route(v2, _answering_http_errors(metadata), methods=["GET"]),
        Route(v2 + "/versions/{version}", _answering_http_errors(metadata), methods=["GET"]),
        Route(v2 + "/ready", _answering_http_errors(model_ready), methods=["GET"]),
        Route(v2 + "/drift", _answering_http_errors(drift), methods=["GET"]),
        Route(
            v2 + "/versions/{version}/ready", _answering_http_errors(model_ready), methods=["GET"]
        ),
        Route(v2 + "/infer", infer, methods=["POST"]),
        Route(v2 + "/explain", explain, methods=["POST"]),
        Route(v2 + "/versions/{version}/explain", explain, methods=["POST"]),
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
