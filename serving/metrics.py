"""Prometheus metrics for the service, in a registry of its own per app.

``ServiceMetrics`` owns the collectors; ``ServiceMetrics.observer(model)`` returns the
batcher's ``BatchObserver`` for one model with its labels bound once, so the hot path
does not look labels up per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from serving.batching import DISPATCH_REASONS, BatchObserver, DispatchReason
from serving.logs import dropped_log_records

if TYPE_CHECKING:
    from serving.workers import WorkerPool

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Label used for requests that name no served model (keeps label cardinality bounded).
UNKNOWN_MODEL = "_unknown"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
_LATENCY_BUCKETS += (2.5, 5.0, 10.0)
_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ModelObserver(BatchObserver):
    """The ``BatchObserver`` of one model: records queue and batch events as metrics."""

    def __init__(self, metrics: ServiceMetrics, model: str) -> None:
        self._admitted_depth = metrics.queue_depth.labels(model)
        self._rejected = metrics.rejected.labels(model)
        self._expired = metrics.expired.labels(model)
        self._cancelled = metrics.cancelled.labels(model)
        self._queue_wait = metrics.queue_wait.labels(model)
        self._batch_size = metrics.batch_size.labels(model)
        self._batch_items = metrics.batch_items.labels(model)
        self._reasons = {r: metrics.dispatches.labels(model, r) for r in metrics.REASONS}
        self._batch_ok = metrics.batch_duration.labels(model, "ok")
        self._batch_error = metrics.batch_duration.labels(model, "error")
        self._in_flight = metrics.batches_in_flight.labels(model)

    def on_admitted(self, queue_depth: int) -> None:
        """A request entered the queue; ``queue_depth`` counts it."""
        self._admitted_depth.set(queue_depth)

    def on_rejected(self) -> None:
        """Admission refused because the queue was full (429)."""
        self._rejected.inc()

    def on_expired(self) -> None:
        """A request's deadline passed before or while its batch ran (504)."""
        self._expired.inc()

    def on_cancelled(self) -> None:
        """The client went away; the request left the queue or its result was dropped."""
        self._cancelled.inc()

    def on_dispatch(
        self,
        size: int,
        items: int,
        reason: DispatchReason,
        queue_waits_s: Sequence[float],
        queue_depth: int,
    ) -> None:
        """A batch of ``items`` requests (``size`` rows) left the queue for ``reason``."""
        self._batch_size.observe(size)
        self._batch_items.observe(items)
        self._reasons[reason].inc()
        for wait in queue_waits_s:
            self._queue_wait.observe(wait)
        self._admitted_depth.set(queue_depth)
        self._in_flight.inc()

    def on_batch_done(self, duration_s: float, ok: bool) -> None:
        """A batch finished after ``duration_s`` of predict time; ``ok`` if it raised nothing."""
        (self._batch_ok if ok else self._batch_error).observe(duration_s)
        self._in_flight.dec()

    def on_queue_depth(self, queue_depth: int) -> None:
        """The queue shrank without a dispatch (expiry, cancellation, stop)."""
        self._admitted_depth.set(queue_depth)


class _CountOf(Collector):
    """A counter whose value is read from elsewhere at scrape time (e.g. the log writer)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._doc, self._read = name, documentation, read

    def collect(self) -> Iterator[CounterMetricFamily]:
        """Yield the one sample."""
        yield CounterMetricFamily(self._name, self._doc, value=self._read())


class _WorkerCollector(Collector):
    """Per predict worker resident memory, and deaths per model, read from the pools."""

    def __init__(self, pools: Mapping[str, WorkerPool]) -> None:
        self._pools = pools

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield the memory gauge and the deaths counter."""
        rss = GaugeMetricFamily(
            "serving_predict_worker_rss_bytes",
            "Resident memory of each predict worker process.",
            labels=["model", "worker"],
        )
        deaths = CounterMetricFamily(
            "serving_predict_worker_deaths",
            "Predict worker processes that died (each is restarted).",
            labels=["model"],
        )
        for name, pool in self._pools.items():
            for index, value in sorted(pool.memory().items()):
                rss.add_metric([name, str(index)], value)
            deaths.add_metric([name], pool.deaths(float("inf")))
        yield rss
        yield deaths


class ServiceMetrics:
    """All of the service's collectors, registered in their own ``CollectorRegistry``."""

    REASONS = DISPATCH_REASONS

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        reg = self.registry
        self.requests = Counter(
            "serving_requests",
            "HTTP requests by model, endpoint and status code.",
            ["model", "endpoint", "code"],
            registry=reg,
        )
        self.request_latency = Histogram(
            "serving_request_duration_seconds",
            "Time from request received to response ready.",
            ["model", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.queue_wait = Histogram(
            "serving_queue_wait_seconds",
            "Time a request waited in the batch queue before dispatch.",
            ["model"],
            buckets=_WAIT_BUCKETS,
            registry=reg,
        )
        self.batch_size = Histogram(
            "serving_batch_size_rows",
            "Rows per dispatched batch.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=reg,
        )
        self.batch_items = Histogram(
            "serving_batch_requests",
            "Requests per dispatched batch.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=reg,
        )
        self.batch_duration = Histogram(
            "serving_batch_duration_seconds",
            "Predict time per batch, by outcome (ok or error).",
            ["model", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.queue_depth = Gauge(
            "serving_queue_depth", "Requests waiting in the batch queue.", ["model"], registry=reg
        )
        self.batches_in_flight = Gauge(
            "serving_batches_in_flight", "Batches being predicted.", ["model"], registry=reg
        )
        self.dispatches = Counter(
            "serving_batch_dispatch",
            "Batches dispatched, by reason (full, delay, idle, drain).",
            ["model", "reason"],
            registry=reg,
        )
        full = "Requests refused because the queue was full."
        self.rejected = Counter("serving_rejected", full, ["model"], registry=reg)
        self.expired = Counter(
            "serving_expired", "Requests whose deadline passed.", ["model"], registry=reg
        )
        self.cancelled = Counter(
            "serving_cancelled", "Requests abandoned by their client.", ["model"], registry=reg
        )
        self.startup_phase = Gauge(
            "serving_startup_phase_seconds",
            "Time from process start to ready, by phase (imports, resolve, download, load, "
            "workers, warm_up, serve); the phases sum to serving_startup_seconds.",
            ["phase"],
            registry=reg,
        )
        self.startup = Gauge(
            "serving_startup_seconds", "Time from process start to ready.", registry=reg
        )
        reg.register(
            _CountOf(
                "serving_log_dropped",
                "Log records dropped because the log writer fell behind.",
                dropped_log_records,
            )
        )

    def watch_workers(self, pools: Mapping[str, WorkerPool]) -> None:
        """Report each model's predict workers: resident memory and deaths, read at scrape."""
        self.registry.register(_WorkerCollector(pools))

    def record_startup(self, phases_s: Mapping[str, float], total_s: float | None) -> None:
        """Set the startup gauges once the service is ready (``serving.startup``'s report)."""
        for phase, seconds in phases_s.items():
            self.startup_phase.labels(phase).set(seconds)
        if total_s is not None:
            self.startup.set(total_s)

    def observer(self, model: str) -> ModelObserver:
        """Return the ``BatchObserver`` for ``model`` (labels bound once; series created at 0)."""
        return ModelObserver(self, model)

    def observe_request(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and record its latency.

        The labelled series are looked up once per (model, endpoint, code) and kept: the
        two ``labels`` calls were 1 % of the service's GIL time at 64 clients (py-spy).
        The keys are bounded (served models or ``UNKNOWN_MODEL``, two endpoints, codes).
        """
        key = (model, endpoint, code)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(model, endpoint, str(code)),
                self.request_latency.labels(model, endpoint),
            )
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        """Return the Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
