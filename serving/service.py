"""The service's state: its models, their batchers and its lifecycle.

``ServiceState`` starts the batchers, tracks the requests in flight (``admitted``),
answers readiness (``not_ready``) and liveness (``stuck``), and drains on shutdown:
admission stops, requests still reading their body are answered 503 at once, admitted
requests finish, then the batchers flush and stop.

Warm-up: once the batchers run, each model that offers a warm-up batch
(``warm_up_items``) gets it submitted through its batcher, the path a real batch
takes (its worker processes included). Readiness stays false (``warming up``) until
every one has been predicted; a failed warm-up keeps the service not ready, the
reason naming the model and its error's type (the log has the message), while
liveness holds (a restart would fail the same way). When ready, the startup report
(``serving.startup``) is logged as one ``ready`` line and set on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from serving.batching import Batcher, BatchPolicy
from serving.decoding import BodyDecoder
from serving.drift_service import DriftCollector, DriftService
from serving.ensemble import compose
from serving.errors import HttpError
from serving.explain import Explainer
from serving.incoming import Incoming, read_body
from serving.metrics import ServiceMetrics
from serving.model import Model, PreparedItem
from serving.protocol import Prediction
from serving.settings import Settings
from serving.startup import StartupClock
from serving.tracing import Tracing
from serving.workers import worker_pools

log = logging.getLogger("serving")
Predict = Callable[[Sequence[PreparedItem]], list[Prediction]]
#: Liveness fails once a batch has run this many times its requests' longest deadline.
LIVENESS_TIMEOUTS = 2
#: Liveness fails once a model's predict workers died this many times within
#: ``DEATH_WINDOW_S``: a model that kills its worker on every batch needs a restart.
MAX_DEATHS = 3
DEATH_WINDOW_S = 60.0
#: After a drain ran out of time, how long the abandoned requests' 503s may take to write.
ANSWER_GRACE_S = 1.0


class ServiceState:
    """Models, their batchers and the service's lifecycle (started, draining, in flight)."""

    def __init__(
        self,
        models: Sequence[Model],
        settings: Settings,
        tracing: Tracing,
        startup: StartupClock | None = None,
    ) -> None:
        if not models:
            raise ValueError("at least one model is required")
        models = [*models, *compose(settings.ensembles, models)]
        self.models = {m.name: m for m in models}
        self.output_names = {m.name: tuple(o.name for o in m.outputs) for m in models}
        self.decoder = BodyDecoder()
        self.default = models[0].name
        self.settings = settings
        self.tracing = tracing
        self.metrics = ServiceMetrics()
        self.pools = worker_pools(models, settings.predict_processes)
        self.metrics.watch_workers(self.pools)
        self.drift = DriftService(models, settings)
        self.metrics.registry.register(DriftCollector(self.drift.monitors))
        self.batchers: dict[str, Batcher[PreparedItem, Prediction]] = {}
        for m in models:
            pool = self.pools.get(m.name)
            # One batch in flight per process at least, or some would never get one.
            workers = settings.workers if pool is None else max(settings.workers, pool.processes)
            policy = BatchPolicy(
                max_batch_size=settings.max_batch_size,
                max_batch_delay_s=settings.max_batch_delay_ms / 1000.0,
                max_queue=settings.max_queue,
                workers=workers,
            )
            predict = m.predict_batch if pool is None else pool.predict_batch
            self.batchers[m.name] = Batcher(
                m.name,
                self._handler(m.name, predict),
                policy,
                size_of=_rows_of,
                observer=self.metrics.observer(m.name),
            )
        # Explanations queue apart from predictions, in batches of the explain row cap.
        self.explainers = {m.name: Explainer(m) for m in models}
        self.explain_batchers = {
            name: explainer.batcher(
                self._handler(name, explainer.explain_batch, sample=False), settings
            )
            for name, explainer in self.explainers.items()
        }
        #: Laps to ready; without one given, counted from now (an app built in a test).
        self.startup = startup or StartupClock(origin=time.monotonic())
        self.started = False
        self.warmed = False
        self.warm_up_failure: str | None = None
        self._warm_up_task: asyncio.Task[None] | None = None
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._drain_task: asyncio.Task[None] | None = None
        # Requests reading their body, and those of them the drain cut short.
        self._reading: set[asyncio.Task[Any]] = set()
        self._cut: set[asyncio.Task[Any]] = set()

    def _handler(self, name: str, predict: Predict, *, sample: bool = True) -> Predict:
        tracing, drift = self.tracing, self.drift

        def handle(items: Sequence[PreparedItem]) -> list[Prediction]:
            contexts = [it.trace_context for it in items]
            with tracing.batch_span(name, contexts, sum(it.rows for it in items)):
                predictions = predict(items)
            if sample:
                drift.observe(name, items)  # rows the model answered, for the drift window
            return predictions

        return handle

    def start_workers(self) -> None:
        """Start every model's predict processes and wait for their models (idempotent).

        Blocking: ``python -m serving`` calls it before serving, the lifespan off the
        loop. Raises ``ModelLoadError`` if a worker cannot load its model.
        """
        for pool in self.pools.values():
            pool.start()

    @property
    def ready(self) -> bool:
        """True once the batchers run and the models are warm, until draining starts."""
        return self.not_ready() is None

    def not_ready(self) -> str | None:
        """Why the service takes no requests; None if ready.

        ``draining``, ``not ready`` (not started), ``warming up``, or the failed
        warm-up (``model 'x' warm-up failed: ...``).
        """
        if self.draining:
            return "draining"
        if not self.started:
            return "not ready"
        if self.warm_up_failure is not None:
            return self.warm_up_failure
        return None if self.warmed else "warming up"

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Count one request in flight for its whole life: the drain waits for it."""
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    def stuck(self) -> str | None:
        """Name a model whose oldest running batch exceeds the liveness limit, else None.

        A batch's limit is ``LIVENESS_TIMEOUTS`` x the longest deadline among the
        requests it carries (the default request timeout for any without one): no
        request can still be waiting for such a batch, so its predict is hung and holds
        a worker. Liveness then fails so that the orchestrator restarts the process.
        Tied to the admitted work, not to the default: a valid request asking for 60 s
        once failed liveness on a server whose default was 500 ms. Also not live: a
        model whose predict workers died ``MAX_DEATHS`` times within ``DEATH_WINDOW_S``.
        """
        for name, pool in self.pools.items():
            deaths = pool.deaths(DEATH_WINDOW_S)
            if deaths >= MAX_DEATHS:
                return f"model {name!r}: {deaths} predict worker deaths in {DEATH_WINDOW_S:g}s"
        default = self.settings.request_timeout_ms / 1000.0
        now = time.monotonic()
        for name, batcher in self._every_batcher():
            for since, budget in batcher.running_batches:
                limit = LIVENESS_TIMEOUTS * (default if budget is None else budget)
                if now - since > limit:
                    return f"model {name!r} predict has run {now - since:.1f}s (limit {limit:g}s)"
        return None

    @contextlib.contextmanager
    def reading_body(self) -> Iterator[None]:
        """Mark the current task as reading its body: a drain answers it 503 at once.

        Inside, a drain's cancellation becomes ``HttpError(503, "draining")``: a body
        still streaming in never holds the drain.
        """
        task = asyncio.current_task()
        assert task is not None
        self._reading.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if task not in self._cut:
                raise
            self._cut.discard(task)
            task.uncancel()
            raise HttpError(503, "draining") from None
        finally:
            self._reading.discard(task)

    async def read_body(self, request: Incoming, deadline: float) -> bytes:
        """Read ``request``'s body within the settings' limits and ``deadline``.

        Raises ``read_body``'s ``HttpError`` (408, 413, 504), or 503 ``draining`` if a
        drain starts meanwhile.
        """
        settings = self.settings
        with self.reading_body():
            return await read_body(
                request,
                settings.max_body_bytes,
                stall_timeout_s=settings.body_timeout_s,
                deadline=deadline,
            )

    async def start(self) -> None:
        """Start the predict workers (if not yet) and every batcher, then warm up.

        From the running loop. The warm-up runs in the background (see the module doc):
        the listener answers readiness (``warming up``) meanwhile.
        """
        if self.pools:
            self.startup.lap("serve")
            await asyncio.to_thread(self.start_workers)
            self.startup.lap("workers")
        for _, batcher in self._every_batcher():
            await batcher.start()
        self.drift.checker.start()
        self.started = True
        warm = {}
        for name, model in self.models.items():
            items = getattr(model, "warm_up_items", None)
            if items is not None:
                warm[name] = items()
        if warm:
            self._warm_up_task = asyncio.ensure_future(self._warm_up(warm))
        else:
            self._ready()

    async def _warm_up(self, warm: dict[str, list[PreparedItem]]) -> None:
        self.startup.lap("serve")
        for name, items in warm.items():
            try:
                await asyncio.gather(*(self.batchers[name].submit(it) for it in items))
            except Exception as exc:
                # The type only: readiness needs no token, and a model's message may name
                # internal paths (the same rule as a request's error); the log has it all.
                kind = type(exc).__name__
                self.warm_up_failure = f"model {name!r} warm-up failed: {kind} (see the log)"
                log.error(
                    "warm-up failed: not ready",
                    extra={"model": name, "error": f"{kind}: {exc}"},
                )
                return
        self.startup.lap("warm_up")
        self.drift.clear()  # the warm-up's neutral rows are not traffic
        self._ready()

    def _ready(self) -> None:
        report = self.startup.ready()
        self.warmed = True
        self.metrics.record_startup(report["phases_s"], report["startup_s"])
        log.info("ready", extra=report)

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
        if self._warm_up_task is not None and not self._warm_up_task.done():
            self._warm_up_task.cancel()
        timeout = self.settings.drain_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        log.info("draining", extra={"timeout_s": timeout, "in_flight": self.in_flight})
        for task in self._reading:  # answered 503 at once (see reading_body)
            self._cut.add(task)
            task.cancel()
        # Admitted requests finish first, with the batchers still taking their work: a
        # request predicted in parts submits its later parts after the drain began.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        batchers = self._every_batcher()
        results = await asyncio.gather(
            *(b.drain(max(0.0, deadline - loop.time())) for _, b in batchers),
            return_exceptions=True,
        )
        for (name, _), result in zip(batchers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("drain failed", exc_info=result, extra={"model": name})
        # Work the batchers gave up on is answered 503 right after; let those answers out.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), ANSWER_GRACE_S)
        self.decoder.close()
        await asyncio.to_thread(self.drift.checker.stop)
        # The batchers have stopped: no batch is handed to a worker any more.
        await asyncio.gather(*(asyncio.to_thread(p.close) for p in self.pools.values()))
        log.info("drained", extra={"in_flight": self.in_flight})

    def _every_batcher(self) -> list[tuple[str, Batcher[PreparedItem, Prediction]]]:
        """Each model's predict batcher, then its explain batcher, with the model's name."""
        return [*self.batchers.items(), *self.explain_batchers.items()]

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
