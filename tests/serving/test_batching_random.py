"""Randomized schedules against the batcher's invariants, and one run on real threads.

The random test draws a policy and a schedule of arrivals (some poisoned, some
producing a wrong number of outputs, some with deadlines), clock advances,
cancellations and handler completions, then drains. Whatever happens, every admitted
request resolves exactly once and a result always belongs to its own item.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.batching import (
    Batcher,
    BatchPolicy,
    DeadlineExceeded,
    Draining,
    OutputMismatch,
    QueueFull,
)
from tests.serving.batching_rig import FakeExecutor, make_rig, run, settle

OK, POISON, MISMATCH = "ok", "poison", "mismatch"


class Item:
    """A request: its result is ``ident * 2``; ``kind`` decides how the handler treats it."""

    def __init__(self, ident: int, rows: int, kind: str) -> None:
        self.ident, self.rows, self.kind = ident, rows, kind


def handler(items: Sequence[Item]) -> list[int]:
    poisoned = [it for it in items if it.kind == POISON]
    if poisoned:
        raise ValueError(f"poison {poisoned[0].ident}")
    results = [it.ident * 2 for it in items]
    return results[:-1] if any(it.kind == MISMATCH for it in items) else results


policies = st.builds(
    BatchPolicy,
    max_batch_size=st.integers(1, 5),
    max_batch_delay_s=st.sampled_from([0.0, 0.005, 0.02]),
    max_queue=st.integers(1, 8),
    workers=st.integers(1, 3),
)
submits = st.tuples(
    st.just("submit"),
    st.integers(1, 3),
    st.sampled_from([OK, OK, OK, OK, OK, POISON, MISMATCH]),
    st.one_of(st.none(), st.sampled_from([0.001, 0.01, 0.05])),
)
advances = st.tuples(st.just("advance"), st.sampled_from([0.0, 0.001, 0.004, 0.01, 0.03]))
completions = st.tuples(st.just("complete"), st.integers(0, 5))
cancels = st.tuples(st.just("cancel"), st.integers(0, 60))
bursts = st.tuples(st.just("burst"), st.lists(submits, min_size=2, max_size=8))
# arrivals weighted up, some in bursts, so that queues build and batches hold several items
steps = st.one_of(submits, submits, bursts, advances, completions, completions, cancels)


class GuardedExecutor(FakeExecutor):
    """Fails the test if more handler calls are outstanding than there are workers."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.workers = workers

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        running = [c for c in self.pending if not c.future.done()]
        assert len(running) < self.workers, "more batches in flight than workers"
        return super().submit(fn, *args, **kwargs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=policies,
    schedule=st.lists(steps, min_size=5, max_size=60),
    finish=st.booleans(),
)
def test_random_schedules_resolve_every_request_exactly_once(
    policy: BatchPolicy, schedule: list[tuple[Any, ...]], finish: bool
) -> None:
    async def body() -> None:
        ex = GuardedExecutor(policy.workers)
        rig = await make_rig(policy, handler=handler, size_of=lambda it: it.rows, ex=ex)
        tasks: list[tuple[Item, float | None, asyncio.Task[Any]]] = []
        for step in schedule:
            if step[0] in ("submit", "burst"):
                for _, rows, kind, timeout in step[1] if step[0] == "burst" else [step]:
                    item = Item(len(tasks), rows, kind)
                    deadline = None if timeout is None else rig.time.now + timeout
                    tasks.append((item, deadline, rig.submit(item, deadline)))
                await settle()
            elif step[0] == "advance":
                await rig.time.advance(step[1])
                for _, deadline, task in tasks:  # no request outlives its deadline
                    assert deadline is None or deadline > rig.time.now or task.done()
            elif step[0] == "cancel" and tasks:
                tasks[step[1] % len(tasks)][2].cancel()
                await settle()
            elif step[0] == "complete" and ex.pending:
                await ex.complete(step[1] % len(ex.pending))
        drain = asyncio.ensure_future(rig.batcher.drain(1.0))
        if finish:
            await ex.complete_all()
        await rig.time.advance(1.0)
        assert drain.done() and drain.exception() is None
        await ex.complete_all()  # late results of hung calls are discarded
        check(rig.obs.of("admitted"), tasks, policy, ex.history)
        assert rig.batcher.queue_depth == 0 and rig.batcher.in_flight == 0

    run(body)


def check(
    admitted: list[tuple[Any, ...]],
    tasks: list[tuple[Item, float | None, asyncio.Task[Any]]],
    policy: BatchPolicy,
    calls: list[list[Item]],
) -> None:
    mismatch_seen = any(it.kind == MISMATCH for call in calls for it in call)
    refused = 0
    for item, _, task in tasks:
        assert task.done()
        if task.cancelled():
            continue
        error = task.exception()
        if isinstance(error, QueueFull):
            refused += 1
        elif error is None:
            assert item.kind != POISON and task.result() == item.ident * 2
        elif isinstance(error, ValueError):
            assert item.kind == POISON and str(error) == f"poison {item.ident}"
        elif isinstance(error, OutputMismatch):
            assert mismatch_seen
        else:
            assert isinstance(error, DeadlineExceeded | Draining), error
    assert len(admitted) == len(tasks) - refused
    for call in calls:
        assert len(call) == 1 or sum(it.rows for it in call) <= policy.max_batch_size


def test_predict_runs_off_the_event_loop_thread() -> None:
    threads: set[int] = set()

    def predict(items: Sequence[int]) -> list[int]:
        threads.add(threading.get_ident())
        return [i * 2 for i in items]

    async def body() -> None:
        batcher: Batcher[int, int] = Batcher("real", predict, BatchPolicy(workers=2))
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(40)))
        assert results == [i * 2 for i in range(40)]
        assert threads and threading.get_ident() not in threads
        await batcher.drain(5.0)
        assert not batcher.accepting

    run(body)
