"""The batcher's test rig: a fake clock, a fake executor and a recorder, so the policy is
driven step by step without sleeps (shared by the batching tests)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.batching import (
    Batcher,
    BatchObserver,
    BatchPolicy,
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
class Recorder(BatchObserver):
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
