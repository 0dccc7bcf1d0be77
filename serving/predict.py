"""The predict path of one request: read, decode, submit, encode.

An ``Endpoint`` names what differs between the infer routes (its metrics label, its
codec and its encoder); ``predict`` does the rest. The body is read through
``serving.incoming`` (bounded in size, stall time and the request's deadline), decoded
and validated before it is queued. While the request is queued or predicted, a watcher
waits for the client's disconnect and withdraws the request (recorded as 499).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from serving.batching import Batcher
from serving.connections import RateLimitedLog
from serving.decoding import BodyCodec, decode_mlflow, decode_v2
from serving.errors import HttpError, answer_for, error_response, json_response, known_answer
from serving.explain import check_rows
from serving.incoming import Incoming, check_content_type, timeout_s
from serving.metrics import UNKNOWN_MODEL
from serving.model import Model, PreparedItem, join_predictions, split_item
from serving.protocol import Decoded, Prediction, encode_mlflow_response, encode_v2_response
from serving.tracing import trace_id_of
from serving.written import CLIENT_CLOSED, Recorded, retire

if TYPE_CHECKING:
    from serving.service import ServiceState

log = logging.getLogger("serving")
#: Present on requests using the V2 binary tensor extension, which is not implemented.
BINARY_HEADER = "inference-header-content-length"
#: Rows of a part at least when a large request is predicted in parts: the demo model's
#: predict costs about the same for 64 and 1,024 rows (20 vs 24 ms), 35 ms at 4,096.
MIN_PART_ROWS = 1024


class _NoAnswer(Response):
    """The answer to a client that went away: nothing is sent (status 499 is only recorded)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return


#: Returned by ``predict`` when the client disconnected; the fast path sends nothing either.
NO_ANSWER = _NoAnswer(status_code=CLIENT_CLOSED)


class _ClientGone(Exception):
    """The client disconnected while its request was queued or predicted."""


#: Builds a request's answer body from its model, its decoded request and its prediction.
Encoder = Callable[[Model, Decoded, Prediction], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What differs between the infer routes: metrics label, body codec, answer encoder."""

    name: str
    decode: BodyCodec
    encode: Encoder
    explain: bool = False
    """Queue to the model's explain batcher (SHAP values) instead of its predict one."""


def _v2_encode(model: Model, decoded: Decoded, prediction: Prediction) -> Any:
    return encode_v2_response(
        model.name, model.version, decoded.request_id, prediction, decoded.outputs
    )


def _mlflow_encode(model: Model, decoded: Decoded, prediction: Prediction) -> Any:
    return encode_mlflow_response(prediction)


#: ``POST /v2/models/{name}[/versions/{version}]/infer``.
V2_INFER = Endpoint("v2_infer", decode_v2, _v2_encode)
#: ``POST /v2/models/{name}[/versions/{version}]/explain``.
V2_EXPLAIN = Endpoint("v2_explain", decode_v2, _v2_encode, explain=True)
#: ``POST /invocations`` (the default model).
INVOCATIONS = Endpoint("invocations", decode_mlflow, _mlflow_encode)


async def _watch_disconnect(receive: Receive, task: asyncio.Task[Any]) -> bool:
    """Wait for ``http.disconnect`` after the body was read, then cancel ``task``."""
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
    return True


async def submit(
    batcher: Batcher[PreparedItem, Prediction],
    item: PreparedItem,
    *,
    deadline: float,
    receive: Receive,
) -> Prediction:
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
        retire(watcher)


async def _decode(
    state: ServiceState, request: Incoming, model: Model, endpoint: Endpoint
) -> tuple[Decoded, float]:
    """Check the request's head, read and decode its body; return it and its deadline."""
    reason = state.not_ready()
    if reason is not None:
        raise HttpError(503, reason)
    if BINARY_HEADER in request.headers:
        raise HttpError(
            400,
            "binary tensor extension is not supported; send JSON tensors (binary_data=False)",
        )
    check_content_type(request)
    # A full queue refuses the request before its body is read and decoded: under a
    # flood of retried requests, decoding the refused ones took the CPU from predict.
    state.batchers[model.name].check_room()
    settings = state.settings
    # The deadline covers reading the body: it starts once the head is in.
    deadline = time.monotonic() + timeout_s(request, settings.request_timeout_ms)
    body = await state.read_body(request, deadline)
    names = state.output_names[model.name]
    decoded = await state.decoder.decode(
        endpoint.decode, body, model.inputs, names, settings.max_rows_per_request
    )
    return decoded, deadline


async def predict(
    state: ServiceState,
    request: Incoming,
    endpoint: Endpoint,
    *,
    model: str,
    version: str | None = None,
) -> Response:
    """Answer one infer request for ``model`` (at ``version``) through ``endpoint``.

    Never raises for a client's doing: every outcome is an answer (``NO_ANSWER`` when
    the client went away), counted in the metrics and, with ``--access-log``, logged.
    An answer is a ``Recorded``: the request is recorded once it is written, as 499 if
    the client hung up while it was being written.
    """
    started = time.perf_counter()
    record = _Record(endpoint.name)

    def finish(status: int) -> None:
        elapsed = time.perf_counter() - started
        state.metrics.observe_request(record.label, endpoint.name, status, elapsed)
        if state.settings.access_log:
            _access_log(record, status, elapsed)

    try:
        response = await _answer(state, request, endpoint, model, version, record)
    except BaseException:
        finish(record.status)
        raise
    if response is NO_ANSWER:
        finish(CLIENT_CLOSED)
        return response
    return Recorded(response, finish)


@dataclass(slots=True)
class _Record:
    """What the metrics and the access log say of one request, filled in as it goes."""

    endpoint: str
    label: str = UNKNOWN_MODEL
    status: int = 500
    rows: int = 0
    trace_id: str | None = None


async def _answer(
    state: ServiceState,
    request: Incoming,
    endpoint: Endpoint,
    model: str,
    version: str | None,
    record: _Record,
) -> Response:
    with state.admitted():
        try:
            served = state.model(model, version)
            record.label = served.name
            decoded, deadline = await _decode(state, request, served, endpoint)
            record.rows = decoded.rows
            attrs = {"model": served.name, "endpoint": endpoint.name}
            with state.tracing.request_span(endpoint.name, request.headers, attrs) as span:
                record.trace_id = trace_id_of(span)
                item = PreparedItem(decoded.columns, decoded.rows, span.get_span_context())
                batcher = state.batchers[served.name]
                if endpoint.explain:
                    check_rows(decoded.rows, state.settings.max_explain_rows)
                    await state.explainers[served.name].ready()
                    batcher = state.explain_batchers[served.name]
                try:
                    prediction = await submit(
                        batcher, item, deadline=deadline, receive=request.receive
                    )
                except _ClientGone:
                    raise
                except Exception as exc:
                    raise answer_for(exc, served.name) from None
            record.status = 200
            return json_response(endpoint.encode(served, decoded, prediction))
        except HttpError as exc:
            record.status = exc.status
            return error_response(exc.status, exc.message, exc.headers)
        except (_ClientGone, ClientDisconnect):
            record.status = CLIENT_CLOSED  # nobody is listening: record it, send nothing
            return NO_ANSWER
        except asyncio.CancelledError:
            record.status = CLIENT_CLOSED
            raise
        except Exception as exc:
            known = known_answer(exc, record.label)
            if known is None:
                log.exception(
                    "unhandled error", extra={"model": record.label, "endpoint": endpoint.name}
                )
                return error_response(500, "internal server error")
            record.status = known.status
            return error_response(known.status, known.message, known.headers)


#: Refusals access-logged at most once per second per model, endpoint and status, with
#: the count left out (``suppressed``): under a flood of them, writing one line each took
#: about a sixth of the service's CPU. ``serving_requests_total`` counts every one.
REFUSED = frozenset({404, 429})
_refusals = RateLimitedLog(interval_s=1.0)


def log_refusal(model: str, endpoint: str, status: int) -> None:
    """The access log line of a refused request (404, 429), rate-limited (see ``REFUSED``)."""
    fields = {"model": model, "endpoint": endpoint, "status": status, "rows": 0}
    _refusals.log(logging.INFO, f"{model} {endpoint} {status}", "request", **fields)


def _access_log(record: _Record, status: int, elapsed: float) -> None:
    if status in REFUSED and record.rows == 0:
        log_refusal(record.label, record.endpoint, status)
        return
    fields = {"model": record.label, "endpoint": record.endpoint, "status": status}
    fields["rows"] = record.rows
    fields["latency_ms"] = round(elapsed * 1000, 3)
    fields["trace_id"] = record.trace_id
    log.info("request", extra=fields)
