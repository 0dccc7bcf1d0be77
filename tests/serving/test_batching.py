"""Unit tests of the dynamic batcher's policy, on a fake clock and a fake executor.

Nothing here sleeps: ``FakeTime.advance`` moves the clock and wakes the batcher's
timers, ``FakeExecutor.complete`` runs a submitted handler call when the test says
so, and ``settle`` lets the event loop process what that caused.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from serving.batching import (
    Batcher,
    BatchPolicy,
    DeadlineExceeded,
    QueueFull,
)
from tests.serving.batching_rig import (
    FakeExecutor,
    FakeTime,
    Recorder,
    double,
    make_rig,
    outcome,
    run,
    settle,
)


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
