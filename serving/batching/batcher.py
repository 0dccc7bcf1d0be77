"""The dynamic batcher: one per model, framework-free ``asyncio``.

Requests are queued as items; batches of items are handed to a handler that runs in a
worker thread (an executor), never on the event loop.

Dispatch rule, evaluated whenever something changes (an arrival, a batch finishing,
a cancellation, a timer), while items are queued and fewer than ``workers`` batches
are in flight. The first that applies names the reason:

1. ``drain``: the batcher is draining; the delay is ignored.
2. ``full``: at least ``max_batch_size`` rows are queued.
3. ``idle``: no batch is in flight; whatever is queued goes at once (no wait tax).
4. ``delay``: the oldest queued request has waited ``max_batch_delay_s``.

Otherwise the queue keeps accumulating. With ``workers=1`` this means: idle model,
dispatch at once; busy model, the next batch leaves when the running one finishes
(``idle``). With ``workers>1`` an extra batch joins the running ones only when it is
full or its oldest request has waited the delay. A batch takes queued items in
arrival order while their rows fit ``max_batch_size``; a single item larger than
that is dispatched alone.

If the handler raises (anything but ``OutputMismatch`` or ``WorkerDied``) the batch is
bisected, halves re-run in the same worker slot, until the failing items are alone:
only they get their exception. A wrong number of outputs fails the whole batch with
``OutputMismatch``, a predict process that died fails it with ``WorkerDied``.
Deadlines are enforced by a timer, both in the queue and while a batch runs; a late
result is discarded. Every admitted request resolves exactly once.

Time: ``clock`` gives the time and ``sleep`` waits on that clock (defaults
``time.monotonic`` and ``asyncio.sleep``, which agree). Tests inject a fake clock
whose ``sleep`` returns when the test advances it, plus a fake executor.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from serving.batching.errors import (
    BatchingError,
    DeadlineExceeded,
    Draining,
    DrainTimeout,
    OutputMismatch,
    QueueFull,
    WorkerDied,
)
from serving.batching.observer import BatchObserver, SafeObserver
from serving.batching.policy import BatchPolicy, DispatchReason

log = logging.getLogger("serving.batching")

T = TypeVar("T")
R = TypeVar("R")

MIN_RETRY_AFTER_S = 0.05
MAX_RETRY_AFTER_S = 60.0


@dataclass(eq=False)
class _Entry(Generic[T, R]):
    item: T
    rows: int
    future: asyncio.Future[R]
    enqueued_at: float
    deadline: float | None
    queued: bool = True


@dataclass
class _Failed:
    """A handler call that raised; carried back from the worker thread as a value."""

    error: BaseException


_seq = itertools.count()


@dataclass
class _State(Generic[T, R]):
    queue: collections.deque[_Entry[T, R]] = field(default_factory=collections.deque)
    queued_items: int = 0
    queued_rows: int = 0
    deadlines: list[tuple[float, int, _Entry[T, R]]] = field(default_factory=list)
    pending: set[_Entry[T, R]] = field(default_factory=set)
    in_flight: int = 0
    batch_s: float | None = None
    running_since: dict[int, float] = field(default_factory=dict)
    running_budget: dict[int, float | None] = field(default_factory=dict)


class Batcher(Generic[T, R]):
    """Groups submitted items into batches for ``handler``; see the module docstring.

    ``handler(items)`` runs in ``executor`` (default: a ``ThreadPoolExecutor`` of
    ``policy.workers`` threads owned and shut down by the batcher) and must return one
    result per item, in order. ``size_of(item)`` counts an item's rows (default 1; a
    value below 1 counts as 1). ``clock``/``sleep`` are the time source and a way to
    wait on it. ``observer`` receives metrics events (default: none).
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[Sequence[T]], Sequence[R]],
        policy: BatchPolicy = BatchPolicy(),
        *,
        size_of: Callable[[T], int] = lambda _item: 1,
        clock: Callable[[], float] = time.monotonic,
        executor: concurrent.futures.Executor | None = None,
        observer: BatchObserver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"batcher name must be a non-empty string, got {name!r}")
        if not isinstance(policy, BatchPolicy):
            raise ValueError(f"policy must be a BatchPolicy, got {type(policy).__name__}")
        self.name = name
        self.policy = policy
        self._handler = handler
        self._size_of = size_of
        self._clock = clock
        self._sleep = sleep
        self._executor = executor
        self._owns_executor = executor is None
        self._notify = SafeObserver(observer if observer is not None else BatchObserver())
        self._s: _State[T, R] = _State()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._batches: set[asyncio.Task[None]] = set()
        self._alarm: asyncio.Task[None] | None = None
        self._alarm_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._stopped = False
        self._settled = asyncio.Event()
        self._drain_task: asyncio.Task[None] | None = None

    @property
    def accepting(self) -> bool:
        """True between ``start`` and ``drain``."""
        return self._loop is not None and not self._draining

    @property
    def queue_depth(self) -> int:
        """Items waiting in the queue (not yet dispatched)."""
        return self._s.queued_items

    @property
    def in_flight(self) -> int:
        """Batches currently running (at most ``policy.workers``)."""
        return self._s.in_flight

    @property
    def oldest_batch_started_at(self) -> float | None:
        """``clock()`` time at which the longest-running batch started; None if none runs."""
        running = self._s.running_since
        return min(running.values()) if running else None

    @property
    def running_batches(self) -> list[tuple[float, float | None]]:
        """Each running batch as (``clock()`` time it started, its longest time budget).

        The budget is the largest ``deadline - enqueued_at`` among the batch's requests,
        in seconds: what the clients admitted with it agreed to wait. None if one of
        them has no deadline.
        """
        s = self._s
        return [(since, s.running_budget.get(key)) for key, since in s.running_since.items()]

    def check_room(self) -> None:
        """Raise ``QueueFull`` (counted as rejected) if ``max_queue`` items wait.

        ``submit`` checks it too; callers shed a request with it before doing any work
        for it (reading and decoding its body).
        """
        if self._s.queued_items >= self.policy.max_queue:
            self._notify.on_rejected()
            raise QueueFull(
                f"model {self.name!r} queue is full ({self.policy.max_queue} requests)",
                self._retry_after(),
            )

    async def start(self) -> None:
        """Bind to the running loop and start accepting (idempotent; call from the loop)."""
        if self._loop is not None:
            return
        if self._stopped:
            raise Draining(f"model {self.name!r} batcher was stopped and cannot restart")
        self._loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.policy.workers, thread_name_prefix=f"predict-{self.name}"
            )

    async def submit(self, item: T, *, deadline: float | None = None) -> R:
        """Queue ``item`` and return its result once its batch ran.

        ``deadline`` is an absolute ``clock()`` time (None: no deadline). Raises at once
        ``Draining`` when not accepting, ``QueueFull`` when ``max_queue`` items wait,
        ``DeadlineExceeded`` for a deadline already past, ``ValueError`` for a non-finite
        deadline; later ``DeadlineExceeded``, ``OutputMismatch``, ``Draining`` (unfinished
        at the end of a drain) or the item's own exception from the handler. If the
        awaiting task is cancelled the item leaves the queue or its result is discarded.
        """
        loop = self._loop
        if loop is None or self._draining:
            state = "not started" if loop is None and not self._stopped else "draining"
            raise Draining(f"model {self.name!r} is not accepting requests ({state})")
        if deadline is not None and not math.isfinite(deadline):
            raise ValueError(f"deadline must be a finite clock time or None, got {deadline!r}")
        s = self._s
        now = self._clock()
        if deadline is not None and deadline <= now:
            self._notify.on_expired()
            raise DeadlineExceeded(f"deadline exceeded for model {self.name!r} before queueing")
        self.check_room()
        rows = self._size_of(item)
        entry: _Entry[T, R] = _Entry(item, max(1, rows), loop.create_future(), now, deadline)
        s.queue.append(entry)
        s.queued_items += 1
        s.queued_rows += entry.rows
        s.pending.add(entry)
        if deadline is not None:
            heapq.heappush(s.deadlines, (deadline, next(_seq), entry))
        self._notify.on_admitted(s.queued_items)
        self._pump()
        try:
            return await entry.future
        except asyncio.CancelledError:
            if entry in s.pending:
                self._cancel(entry)
            raise

    async def drain(self, timeout_s: float) -> None:
        """Stop admission, flush the queue, wait up to ``timeout_s`` for it all; then stop.

        New submits get ``Draining`` at once. Queued items are dispatched (reason
        ``drain``, still at most ``workers`` batches at a time). Whatever is unresolved
        when the time is up gets ``Draining``. Idempotent; ``ValueError`` for a negative
        or non-finite timeout.
        """
        if isinstance(timeout_s, bool) or not (
            isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s >= 0
        ):
            raise ValueError(f"drain timeout_s must be a finite number >= 0, got {timeout_s!r}")
        if self._drain_task is None:
            self._drain_task = asyncio.ensure_future(self._drain(float(timeout_s)))
        await asyncio.shield(self._drain_task)

    async def _drain(self, timeout_s: float) -> None:
        self._draining = True
        self._pump()
        if not self._is_settled():
            waiter = asyncio.ensure_future(self._settled.wait())
            timer = asyncio.ensure_future(self._sleep(timeout_s))
            try:
                await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                timer.cancel()
        self._stop()

    def _stop(self) -> None:
        self._stopped = True
        for entry in list(self._s.pending):
            where = "queued" if entry.queued else "running"
            self._fail(
                entry,
                DrainTimeout(
                    f"model {self.name!r} stopped ({where}): "
                    "not finished within the drain grace period"
                ),
            )
        self._s.queue.clear()
        self._s.queued_items = self._s.queued_rows = 0
        self._notify.on_queue_depth(0)
        self._disarm()
        for task in list(self._batches):
            task.cancel()  # a hung handler keeps its thread; the awaiting task must not
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- the scheduler: synchronous, runs on the loop after every state change ---

    def _pump(self) -> None:
        if self._stopped:
            return
        now = self._clock()
        self._expire(now)
        while self._s.queued_items and self._s.in_flight < self.policy.workers:
            reason = self._reason(now)
            if reason is None:
                break
            self._dispatch(reason, now)
        self._arm(now)
        if self._draining and self._is_settled():
            self._settled.set()

    def _reason(self, now: float) -> DispatchReason | None:
        if self._draining:
            return "drain"
        if self._s.queued_rows >= self.policy.max_batch_size:
            return "full"
        if self._s.in_flight == 0:
            return "idle"
        # the same sum as the alarm's time, so a timer that rings also dispatches
        if now >= self._oldest().enqueued_at + self.policy.max_batch_delay_s:
            return "delay"
        return None

    def _oldest(self) -> _Entry[T, R]:
        queue = self._s.queue
        while not queue[0].queued:  # cancelled or expired entries leave lazily
            queue.popleft()
        return queue[0]

    def _dispatch(self, reason: DispatchReason, now: float) -> None:
        s, limit = self._s, self.policy.max_batch_size
        batch: list[_Entry[T, R]] = []
        rows = 0
        while s.queued_items:
            head = self._oldest()
            if batch and rows + head.rows > limit:
                break
            s.queue.popleft()
            head.queued = False
            s.queued_items -= 1
            s.queued_rows -= head.rows
            rows += head.rows
            batch.append(head)
        s.in_flight += 1
        task = asyncio.ensure_future(self._run_batch(batch))
        self._keep(task)
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        waits = [now - e.enqueued_at for e in batch]
        self._notify.on_dispatch(rows, len(batch), reason, waits, s.queued_items)

    def _expire(self, now: float) -> None:
        heap = self._s.deadlines
        while heap and (heap[0][0] <= now or heap[0][2].future.done()):
            _, _, entry = heapq.heappop(heap)
            if entry.future.done():
                continue
            where = "in the queue" if entry.queued else "while its batch ran"
            if entry.queued:
                self._unqueue(entry)
                self._notify.on_queue_depth(self._s.queued_items)
            if self._fail(entry, DeadlineExceeded(f"deadline exceeded {where}")):
                self._notify.on_expired()

    def _arm(self, now: float) -> None:
        s = self._s
        at = s.deadlines[0][0] if s.deadlines else None
        busy = 0 < s.in_flight < self.policy.workers
        if s.queued_items and busy and not self._draining:
            due = self._oldest().enqueued_at + self.policy.max_batch_delay_s
            at = due if at is None else min(at, due)
        if at is None:
            self._disarm()
        elif at != self._alarm_at or self._alarm is None:
            self._disarm()
            self._alarm_at = at
            self._alarm = asyncio.ensure_future(self._ring(at))
            self._keep(self._alarm)

    def _disarm(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm = self._alarm_at = None

    async def _ring(self, at: float) -> None:
        # measured when the task starts, not when it was created: no drift
        await self._sleep(max(0.0, at - self._clock()))
        self._alarm = self._alarm_at = None
        self._pump()

    # --- running a batch ---

    async def _run_batch(self, batch: list[_Entry[T, R]]) -> None:
        started = self._clock()
        key = id(batch)
        self._s.running_since[key] = started
        budgets = [e.deadline - e.enqueued_at for e in batch if e.deadline is not None]
        self._s.running_budget[key] = max(budgets) if len(budgets) == len(batch) else None
        ok = False
        try:
            ok = await self._execute(batch)
        finally:
            duration = self._clock() - started
            s = self._s
            s.running_since.pop(key, None)
            s.running_budget.pop(key, None)
            s.batch_s = duration if s.batch_s is None else 0.8 * s.batch_s + 0.2 * duration
            s.in_flight -= 1
            for entry in batch:  # a guard: nothing leaves a batch unresolved
                self._fail(entry, BatchingError("batch ended without a result"))
            self._notify.on_batch_done(duration, ok)
            self._pump()

    async def _execute(self, batch: list[_Entry[T, R]]) -> bool:
        """Run ``batch``; on failure bisect. True if no item failed."""
        live = [e for e in batch if not e.future.done()]
        if not live:
            return True
        assert self._loop is not None and self._executor is not None
        outcome = await self._loop.run_in_executor(
            self._executor, self._invoke, [e.item for e in live]
        )
        if isinstance(outcome, _Failed):
            error = outcome.error
            # A dead worker says nothing about the items: re-running halves would only
            # hand them to the next worker, so the batch fails as a whole.
            if isinstance(error, OutputMismatch | WorkerDied) or len(live) == 1:
                for entry in live:
                    self._fail(entry, self._own_error(error, len(live)))
                return False
            mid = len(live) // 2
            left = await self._execute(live[:mid])
            right = await self._execute(live[mid:])
            return left and right
        results: Sequence[R] = outcome
        for entry, result in zip(live, results, strict=True):
            self._succeed(entry, result)
        return True

    def _invoke(self, items: list[T]) -> Sequence[R] | _Failed:
        """Call the handler (in a worker thread); never raises."""
        try:
            results = self._handler(items)
        except BaseException as exc:  # carried to the loop as a value, whatever it is
            return _Failed(exc)
        try:
            count = len(results)
        except TypeError:
            kind = type(results).__name__
            return _Failed(OutputMismatch(f"model {self.name!r} returned {kind}, not a sequence"))
        if count != len(items):
            return _Failed(
                OutputMismatch(
                    f"model {self.name!r} returned {count} outputs for {len(items)} inputs"
                )
            )
        return results

    def _own_error(self, error: BaseException, shared_by: int) -> BaseException:
        if not isinstance(error, Exception):
            # KeyboardInterrupt & co. must not escape into the loop through a future.
            wrapped = BatchingError(f"model {self.name!r} predict aborted ({type(error).__name__})")
            wrapped.__cause__ = error
            return wrapped
        if shared_by > 1 and isinstance(error, OutputMismatch | WorkerDied):
            copy = type(error)(str(error))
            copy.__cause__ = error
            return copy
        return error

    # --- bookkeeping ---

    def _succeed(self, entry: _Entry[T, R], result: R) -> bool:
        """Set the entry's result once; False if it was already resolved (then dropped)."""
        self._s.pending.discard(entry)
        if entry.future.done():
            return False
        entry.future.set_result(result)
        return True

    def _fail(self, entry: _Entry[T, R], error: BaseException) -> bool:
        """Set the entry's error once; False if it was already resolved (then dropped)."""
        self._s.pending.discard(entry)
        if entry.future.done():
            return False
        entry.future.set_exception(error)
        return True

    def _unqueue(self, entry: _Entry[T, R]) -> None:
        entry.queued = False
        self._s.queued_items -= 1
        self._s.queued_rows -= entry.rows

    def _cancel(self, entry: _Entry[T, R]) -> None:
        if entry.queued:
            self._unqueue(entry)
            self._notify.on_queue_depth(self._s.queued_items)
        self._s.pending.discard(entry)
        if not entry.future.done():
            entry.future.cancel()
        self._notify.on_cancelled()
        self._pump()

    def _is_settled(self) -> bool:
        return self._s.queued_items == 0 and self._s.in_flight == 0

    def _retry_after(self) -> float:
        batches = max(1, math.ceil(self._s.queued_rows / self.policy.max_batch_size))
        rounds = math.ceil(batches / self.policy.workers)
        per_batch = self._s.batch_s if self._s.batch_s is not None else MIN_RETRY_AFTER_S
        return min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, rounds * per_batch))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("batcher %s task failed", self.name, exc_info=task.exception())
