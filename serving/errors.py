"""Error answers of the HTTP layer: ``HttpError``, the JSON helpers and one status table.

``STATUS`` maps each batcher and protocol error to its answer; ``answer_for`` looks an
exception up by its class (most derived first) and falls back to the model's own
errors: MLflow's schema enforcement speaks to the client (400, its first line), any
other ``ValueError``/``TypeError`` of an isolated request is a 400 without its text
(it may carry internals), the rest a 500 ``prediction failed``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from serving.batching import (
    BatchingError,
    DeadlineExceeded,
    Draining,
    DrainTimeout,
    QueueFull,
    WorkerDied,
)
from serving.protocol import ProtocolError, TooManyRows

log = logging.getLogger("serving")


class HttpError(Exception):
    """An error answer: status, client-safe message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Answer:
    """How one error class is answered.

    ``message`` is formatted with ``model`` (the model's name); None sends the
    exception's own text, which every batcher and protocol error keeps client-safe.
    ``logged`` errors are a server fault and are logged at error level.
    """

    status: int
    message: str | None = None
    logged: bool = False


#: Every batcher and protocol error's answer, by class.
STATUS: dict[type[Exception], Answer] = {
    TooManyRows: Answer(413),
    ProtocolError: Answer(400),
    QueueFull: Answer(429, "model {model!r} queue is full; retry later"),
    DrainTimeout: Answer(503, "not finished within the drain grace period"),
    Draining: Answer(503, "draining"),
    DeadlineExceeded: Answer(504, "deadline exceeded for model {model!r}"),
    WorkerDied: Answer(503, "model {model!r} predict worker died; retry", logged=True),
    BatchingError: Answer(500, logged=True),
}


def known_answer(exc: Exception, model: str) -> HttpError | None:
    """The ``STATUS`` answer to ``exc`` (most derived class first), or None if it has none."""
    for cls in type(exc).__mro__:
        answer = STATUS.get(cls)
        if answer is None:
            continue
        text = str(exc) if answer.message is None else answer.message.format(model=model)
        if answer.logged:
            log.error("batch failed", extra={"model": model, "error": str(exc)})
        headers = None
        if isinstance(exc, QueueFull):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        return HttpError(answer.status, text, headers)
    return None


def answer_for(exc: Exception, model: str) -> HttpError:
    """The answer to ``exc``, raised by decoding or predicting a request for ``model``.

    Bisection has isolated the request by the time its own predict error arrives, so
    a value or type error is about its data.
    """
    known = known_answer(exc, model)
    if known is not None:
        return known
    if _is_mlflow_error(exc):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return HttpError(400, f"model {model!r} rejected the input: {first}")
    if isinstance(exc, ValueError | TypeError):
        log.warning(
            "model rejected the input",
            extra={"model": model, "error": f"{type(exc).__name__}: {exc}"[:1000]},
        )
        return HttpError(400, f"model {model!r} rejected the input")
    log.error("predict failed", exc_info=exc, extra={"model": model})
    return HttpError(500, "prediction failed")


def _is_mlflow_error(exc: Exception) -> bool:
    # By name: the app does not import mlflow (tests serve in-memory models without it).
    return any(cls.__name__ == "MlflowException" for cls in type(exc).__mro__)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise ``body`` with orjson (numpy arrays included) into a JSON response."""
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Return ``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status, headers)
