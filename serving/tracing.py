"""Traces (OpenTelemetry): OTLP export when configured, else a no-op.

Spans are exported over OTLP/HTTP only when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; otherwise tracing is a no-op that
creates nothing and costs a function call. Each request gets a server span (parented
on an incoming W3C ``traceparent``); each batch gets a span linked to the spans of
the requests it carries, so a trace shows which batch served a request.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

SERVICE_NAME = "mlplatform-serving"
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_SPAN: contextlib.nullcontext[Span] = contextlib.nullcontext(INVALID_SPAN)


class Tracing:
    """The service's tracer: OTLP/HTTP export when configured by environment, else no-op."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, span_processor: SpanProcessor | None = None
    ) -> None:
        """Configure tracing from ``environ`` (default ``os.environ``).

        Enabled when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
        is set (spans go to a ``BatchSpanProcessor`` over OTLP/HTTP, configured by the
        standard ``OTEL_*`` variables), or when ``span_processor`` is given (it is used
        instead, e.g. an in-memory exporter). Otherwise a no-op tracer.
        """
        env = os.environ if environ is None else environ
        self._provider: Any = None
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        self.enabled = bool(endpoint) or span_processor is not None
        if not self.enabled:
            self.tracer: trace.Tracer = trace.NoOpTracer()
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        if span_processor is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            # The exporter reads the endpoint, headers and timeout from the standard variables.
            span_processor = BatchSpanProcessor(OTLPSpanExporter())
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", SERVICE_NAME)})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(span_processor)
        self._provider = provider
        self.tracer = provider.get_tracer("serving")

    def request_span(
        self, name: str, headers: Mapping[str, str], attributes: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[Span]:
        """Return a context manager for a request's server span (``INVALID_SPAN`` if off).

        The parent comes from the request's ``traceparent``/``tracestate`` headers.
        """
        if not self.enabled:
            return _NO_SPAN
        parent = _PROPAGATOR.extract(carrier=dict(headers))
        return self.tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes)
        )

    @contextlib.contextmanager
    def batch_span(
        self, model: str, contexts: Sequence[SpanContext | None], rows: int
    ) -> Iterator[Span]:
        """Span one batch, linked to the (valid) span contexts of its requests."""
        if not self.enabled:
            yield INVALID_SPAN
            return
        links = [Link(c) for c in contexts if c is not None and c.is_valid]
        with self.tracer.start_as_current_span(
            "batch predict",
            kind=SpanKind.INTERNAL,
            links=links,
            attributes={"model": model, "batch.requests": len(contexts), "batch.rows": rows},
        ) as span:
            yield span

    def shutdown(self) -> None:
        """Flush and stop the exporter (no-op when tracing is off)."""
        if self._provider is not None:
            self._provider.shutdown()


def trace_id_of(span: Span) -> str | None:
    """Return the span's trace id as 32 hex digits, or None for a non-recording span."""
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
