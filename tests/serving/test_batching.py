"""Unit tests of the dynamic batcher's policy, on a fake clock and a fake executor.

Nothing here sleeps: ``FakeTime.advance`` moves the clock and wakes the batcher's
timers, ``FakeExecutor.complete`` runs a submitted handler call when the test says
so, and ``settle`` lets the event loop process what that caused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from serving.batching import (
    Batcher,
    BatchPolicy,
    DeadlineExceeded,
    QueueFull,
)


async def settle(rounds: int = 30) -> None:
    """Let the loop run every callback that is ready (executor results hop twice)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeTime:
    """A clock the test advances, and a ``sleep`` that waits on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), fut))
        await fut

    async def advance(self, dt: float = 0.0) -> None:
        """Let pending work run, move the clock by ``dt``, fire every timer due by then."""
        await settle()
        self.now += dt
        await settle()
        while self._timers and self._timers[0][0] <= self.now:
            while self._timers and self._timers[0][0] <= self.now:
                fut = heapq.heappop(self._timers)[2]
                if not fut.done():
                    fut.set_result(None)
            await settle()


@dataclass
class Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: concurrent.futures.Future[Any]

    @property
    def items(self) -> list[Any]:
        return list(self.args[0])


@dataclass
class FakeExecutor(concurrent.futures.Executor):
    """Records submitted calls; the test runs them with ``complete`` (on the loop thread)."""

    pending: list[Call] = field(default_factory=list)
    history: list[list[Any]] = field(default_factory=list)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        call = Call(fn, args, concurrent.futures.Future())
        call.future.set_running_or_notify_cancel()  # like a worker thread: cannot be cancelled
        self.pending.append(call)
        self.history.append(call.items)
        return call.future

    async def complete(self, index: int = 0) -> list[Any]:
        """Run the ``index``-th pending call (after letting the loop submit its calls)."""
        await settle()
        call = self.pending.pop(index)
        call.future.set_result(call.fn(*call.args))
        await settle()
        return call.items

    async def complete_all(self, limit: int = 1000) -> None:
        for _ in range(limit):
            if not self.pending:
                return
            await self.complete()
        raise AssertionError("handler calls did not stop")


@dataclass
class Recorder:
    """A ``BatchObserver`` keeping every event."""

    events: list[tuple[Any, ...]] = field(default_factory=list)

    def on_admitted(self, queue_depth: int) -> None:
        self.events.append(("admitted", queue_depth))

    def on_rejected(self) -> None:
        self.events.append(("rejected",))

    def on_expired(self) -> None:
        self.events.append(("expired",))

    def on_cancelled(self) -> None:
        self.events.append(("cancelled",))

    def on_dispatch(
        self, size: int, items: int, reason: str, queue_waits_s: Sequence[float], queue_depth: int
    ) -> None:
        self.events.append(("dispatch", size, items, reason, list(queue_waits_s), queue_depth))

    def on_batch_done(self, duration_s: float, ok: bool) -> None:
        self.events.append(("done", duration_s, ok))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]

    def reasons(self) -> list[str]:
        return [e[3] for e in self.of("dispatch")]


def double(items: Sequence[int]) -> list[int]:
    return [i * 2 for i in items]


@dataclass
class Rig:
    """A started batcher with its fakes."""

    batcher: Batcher[Any, Any]
    time: FakeTime
    ex: FakeExecutor
    obs: Recorder

    def submit(self, item: Any, deadline: float | None = None) -> asyncio.Task[Any]:
        return asyncio.ensure_future(self.batcher.submit(item, deadline=deadline))


async def make_rig(
    policy: BatchPolicy | None = None,
    handler: Callable[[Sequence[Any]], Sequence[Any]] = double,
    size_of: Callable[[Any], int] = lambda _item: 1,
    ex: FakeExecutor | None = None,
) -> Rig:
    """Start a batcher named ``m`` on a fake clock and ``ex`` (default: a new ``FakeExecutor``)."""
    fake_time, obs = FakeTime(), Recorder()
    ex = ex if ex is not None else FakeExecutor()
    batcher: Batcher[Any, Any] = Batcher(
        "m",
        handler,
        policy or BatchPolicy(),
        size_of=size_of,
        clock=fake_time.clock,
        executor=ex,
        observer=obs,
        sleep=fake_time.sleep,
    )
    await batcher.start()
    return Rig(batcher, fake_time, ex, obs)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``test`` on a fresh loop; fail on any error the loop saw on its own."""
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        await test()

    asyncio.run(main())
    assert errors == []


def outcome(task: asyncio.Task[Any]) -> Any:
    assert task.done()
    return task.exception() or task.result()


def test_idle_model_dispatches_at_once() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        task = rig.submit(3)
        await settle()
        assert rig.ex.history == [[3]]
        assert rig.obs.reasons() == ["idle"]
        await rig.ex.complete()
        assert task.result() == 6

    run(body)


def test_busy_model_accumulates_then_dispatches_when_idle() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        first = rig.submit(1)
        await settle()
        rest = [rig.submit(i) for i in (2, 3, 4)]
        await rig.time.advance(1.0)
        assert rig.ex.history == [[1]] and rig.batcher.queue_depth == 3
        await rig.ex.complete()
        assert rig.ex.history == [[1], [2, 3, 4]]
        assert rig.obs.reasons() == ["idle", "idle"]
        await rig.ex.complete()
        assert [outcome(t) for t in [first, *rest]] == [2, 4, 6, 8]

    run(body)


def test_max_batch_size_counts_rows_and_oversized_item_goes_alone() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_size=4, max_batch_delay_s=10.0), size_of=len)
        blocker = rig.submit("x")
        await settle()
        tasks = [rig.submit(s) for s in ("aa", "bb", "ccc", "d", "eeeeeeeee", "ff")]
        await settle()
        await rig.ex.complete_all()
        assert rig.ex.history == [["x"], ["aa", "bb"], ["ccc", "d"], ["eeeeeeeee"], ["ff"]]
        sizes = [(e[1], e[2], e[3]) for e in rig.obs.of("dispatch")]
        assert sizes == [
            (1, 1, "idle"),
            (4, 2, "full"),
            (4, 2, "full"),
            (9, 1, "full"),
            (2, 1, "idle"),
        ]
        assert outcome(blocker) == "xx"
        assert [outcome(t) for t in tasks] == ["aaaa", "bbbb", "cccccc", "dd", "e" * 18, "ffff"]

    run(body)


def test_full_batch_dispatches_while_busy_with_a_free_worker() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_size=3, max_batch_delay_s=10.0, workers=2))
        rig.submit(0)
        await settle()
        for i in (1, 2):
            rig.submit(i)
        await settle()
        assert len(rig.ex.pending) == 1
        rig.submit(3)
        await settle()
        assert [c.items for c in rig.ex.pending] == [[0], [1, 2, 3]]
        assert rig.obs.reasons() == ["idle", "full"]

    run(body)


def test_delay_counts_from_the_oldest_queued_request() -> None:
    async def body() -> None:
        # binary fractions keep the fake clock's sums exact
        rig = await make_rig(BatchPolicy(max_batch_delay_s=1.0, workers=2))
        rig.submit(0)
        await settle()
        rig.submit(1)
        await rig.time.advance(0.5)
        rig.submit(2)
        await rig.time.advance(0.25)
        assert len(rig.ex.pending) == 1
        await rig.time.advance(0.25)  # the oldest has waited 1 s, the newest 0.5 s
        assert [c.items for c in rig.ex.pending] == [[0], [1, 2]]
        dispatch = rig.obs.of("dispatch")[-1]
        assert dispatch[3] == "delay"
        assert dispatch[4] == [1.0, 0.5]

    run(body)


def test_never_more_batches_in_flight_than_workers() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_size=1, max_batch_delay_s=0.0, workers=2))
        tasks = [rig.submit(i) for i in range(7)]
        await rig.time.advance(5.0)
        assert len(rig.ex.pending) == 2 and rig.batcher.in_flight == 2
        assert rig.batcher.queue_depth == 5
        await rig.ex.complete()
        assert len(rig.ex.pending) == 2
        await rig.ex.complete_all()
        assert [outcome(t) for t in tasks] == [i * 2 for i in range(7)]
        assert all(e[2] == 1 for e in rig.obs.of("dispatch"))

    run(body)


def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_queue=2, max_batch_delay_s=10.0))
        rig.submit(0)
        await settle()
        rig.submit(1)
        rig.submit(2)
        await settle()
        with pytest.raises(QueueFull, match="queue is full") as info:
            await rig.batcher.submit(3)
        assert info.value.retry_after_s >= 0.05
        assert rig.obs.of("rejected") == [("rejected",)]
        await rig.time.advance(2.0)  # the running batch took 2 s
        await rig.ex.complete()
        rig.submit(4)
        rig.submit(5)  # admitted behind the running [1, 2]
        await settle()
        with pytest.raises(QueueFull) as again:
            await rig.batcher.submit(6)
        assert again.value.retry_after_s >= 2.0  # estimated from the measured batch time

    run(body)


def test_deadline_expires_in_the_queue_by_timer() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        first = rig.submit(0)
        await settle()
        late = rig.submit(1, deadline=rig.time.now + 0.5)
        kept = rig.submit(2)
        await rig.time.advance(0.499)
        assert not late.done()
        await rig.time.advance(0.001)  # no arrival needed: the timer expires it
        assert isinstance(outcome(late), DeadlineExceeded)
        assert rig.batcher.queue_depth == 1
        await rig.ex.complete_all()
        assert rig.ex.history == [[0], [2]]
        assert (outcome(first), outcome(kept)) == (0, 4)
        assert rig.obs.of("expired") == [("expired",)]

    run(body)


def test_deadline_passing_while_the_batch_runs() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        rig.submit(0)
        await settle()
        short = rig.submit(1, deadline=rig.time.now + 1.0)
        other = rig.submit(2)
        await rig.ex.complete()
        assert rig.ex.pending[0].items == [1, 2]
        await rig.time.advance(1.0)
        assert isinstance(outcome(short), DeadlineExceeded)  # not waiting for the batch
        assert not other.done()
        await rig.ex.complete()  # the late result is discarded, never set twice
        assert outcome(other) == 4

    run(body)


def test_deadline_already_past_is_refused() -> None:
    async def body() -> None:
        rig = await make_rig()
        with pytest.raises(DeadlineExceeded):
            await rig.batcher.submit(1, deadline=rig.time.now)
        with pytest.raises(ValueError, match="deadline"):
            await rig.batcher.submit(1, deadline=math.nan)
        assert rig.ex.history == []

    run(body)


def test_cancelled_while_queued_leaves_the_queue() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        rig.submit(0)
        await settle()
        gone = rig.submit(1)
        kept = rig.submit(2)
        await settle()
        gone.cancel()
        await settle()
        assert rig.batcher.queue_depth == 1
        await rig.ex.complete_all()
        assert rig.ex.history == [[0], [2]]
        assert gone.cancelled() and outcome(kept) == 4
        assert rig.obs.of("cancelled") == [("cancelled",)]

    run(body)


def test_cancelled_while_its_batch_runs_discards_the_result() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        rig.submit(0)
        await settle()
        gone, kept = rig.submit(1), rig.submit(2)
        await rig.ex.complete()
        gone.cancel()
        await settle()
        await rig.ex.complete()
        assert gone.cancelled() and outcome(kept) == 4
        assert rig.obs.of("done")[-1][2] is True

    run(body)


class DepthRecorder(Recorder):
    """A ``Recorder`` that also defines the optional ``on_queue_depth`` hook."""

    def on_queue_depth(self, queue_depth: int) -> None:
        self.events.append(("depth", queue_depth))


def test_queue_depth_is_reported_when_requests_leave_without_dispatch() -> None:
    async def body() -> None:
        fake_time, ex, obs = FakeTime(), FakeExecutor(), DepthRecorder()
        batcher: Batcher[Any, Any] = Batcher(
            "m", double, BatchPolicy(max_batch_delay_s=10.0), clock=fake_time.clock,
            executor=ex, observer=obs, sleep=fake_time.sleep,
        )  # fmt: skip
        await batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit(0))]
        await settle()  # dispatched at once: the model is busy from here
        tasks.append(asyncio.ensure_future(batcher.submit(1)))
        tasks.append(asyncio.ensure_future(batcher.submit(2, deadline=fake_time.now + 1.0)))
        tasks.append(asyncio.ensure_future(batcher.submit(3)))
        await settle()
        assert batcher.queue_depth == 3
        tasks[1].cancel()
        await settle()
        assert obs.of("depth") == [("depth", 2)]
        await fake_time.advance(1.0)  # the second queued request expires
        assert obs.of("depth") == [("depth", 2), ("depth", 1)]
        assert batcher.queue_depth == 1 and isinstance(outcome(tasks[2]), DeadlineExceeded)
        await ex.complete_all()
        assert outcome(tasks[3]) == 6

    run(body)
