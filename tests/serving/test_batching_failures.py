"""Unit tests of the batcher's failure paths: poison items, wrong outputs, drain, hangs.

Same fakes as ``test_batching``: a fake clock and executor driven by the test, no sleeps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from serving.batching import (
    Batcher,
    BatchingError,
    BatchPolicy,
    DeadlineExceeded,
    Draining,
    DrainTimeout,
    OutputMismatch,
)
from tests.serving.batching_rig import double, make_rig, outcome, run, settle


def poison_handler(items: Sequence[int]) -> list[int]:
    bad = [i for i in items if i % 100 == 13]
    if bad:
        raise ValueError(f"bad item {bad[0]}")
    return double(items)


@pytest.mark.parametrize(("n", "poison"), [(16, [5]), (16, [0, 15]), (7, [3]), (2, [1])])
def test_poison_items_fail_alone_with_bounded_reruns(n: int, poison: list[int]) -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_size=64), handler=poison_handler)
        blocker = rig.submit(1000)
        await settle()
        items = [100 * k + (13 if k in poison else 1) for k in range(n)]
        tasks = [rig.submit(i) for i in items]
        await settle()
        await rig.ex.complete_all()
        for item, task in zip(items, tasks, strict=True):
            got = outcome(task)
            if item % 100 == 13:
                assert isinstance(got, ValueError) and str(got) == f"bad item {item}"
            else:
                assert got == item * 2
        calls = len(rig.ex.history) - 1
        assert calls <= 1 + 2 * len(poison) * math.ceil(math.log2(n))
        assert outcome(blocker) == 2000
        assert rig.obs.of("done")[-1][2] is False

    run(body)


def test_bisection_reruns_skip_requests_already_resolved() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0), handler=poison_handler)
        rig.submit(0)
        await settle()
        tasks = [rig.submit(i) for i in (1, 2, 3, 13)]
        await rig.ex.complete()
        gone = tasks[0]
        gone.cancel()
        await settle()
        await rig.ex.complete_all()
        assert rig.ex.history[1] == [1, 2, 3, 13]
        assert all(1 not in call for call in rig.ex.history[2:])  # cancelled: not re-run
        assert [outcome(t) for t in tasks[1:3]] == [4, 6]
        assert isinstance(outcome(tasks[3]), ValueError)

    run(body)


@pytest.mark.parametrize(
    "handler",
    [
        lambda items: double(items)[:-1],
        lambda items: [*double(items), 0],
        lambda items: None,
        lambda items: (_ for _ in ()).throw(OutputMismatch("model gave 1 row for 3 rows")),
    ],
    ids=["short", "long", "not-a-sequence", "raised"],
)
def test_wrong_number_of_outputs_fails_the_whole_batch(
    handler: Callable[[Sequence[int]], Any],
) -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0), handler=handler)
        blocker = rig.submit(0)
        await settle()
        tasks = [rig.submit(i) for i in (1, 2, 3)]
        await rig.ex.complete_all()
        assert isinstance(outcome(blocker), OutputMismatch)
        assert all(isinstance(outcome(t), OutputMismatch) for t in tasks)
        assert rig.ex.history == [[0], [1, 2, 3]]  # no bisection

    run(body)


def test_drain_flushes_refuses_new_and_resolves_everything_once() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_size=2, max_batch_delay_s=10.0, workers=2))
        tasks = [rig.submit(i) for i in range(5)]
        await settle()
        assert len(rig.ex.pending) == 2  # [0] idle, [1, 2] full; 3 and 4 wait for delay
        drain = asyncio.ensure_future(rig.batcher.drain(30.0))
        await settle()
        assert not rig.batcher.accepting
        with pytest.raises(Draining):
            await rig.batcher.submit(9)
        await rig.ex.complete()
        assert rig.ex.pending[-1].items == [3, 4]
        assert rig.obs.reasons()[-1] == "drain"
        await rig.ex.complete_all()
        await settle()
        assert drain.done() and drain.exception() is None
        assert [outcome(t) for t in tasks] == [0, 2, 4, 6, 8]
        await rig.batcher.drain(1.0)  # idempotent

    run(body)


def test_drain_times_out_on_a_hung_handler() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0))
        hung = rig.submit(0)
        queued = rig.submit(1)
        drain = asyncio.ensure_future(rig.batcher.drain(5.0))
        await rig.time.advance(4.9)
        assert not drain.done()
        await rig.time.advance(0.1)
        assert drain.done() and drain.exception() is None
        assert isinstance(outcome(hung), Draining) and isinstance(outcome(queued), Draining)
        # Abandoned at the end of the grace period: told apart from a refused request.
        for task in (hung, queued):
            assert isinstance(outcome(task), DrainTimeout)
            assert "not finished within the drain grace period" in str(outcome(task))
        await rig.ex.complete_all()  # the hung call returns after all: nothing set twice
        assert rig.batcher.in_flight == 0

    run(body)


class Abort(BaseException):
    """Not an ``Exception``: must not escape into the loop."""


def test_base_exception_or_hang_does_not_wedge_the_batcher() -> None:
    calls: list[int] = []

    def handler(items: Sequence[int]) -> list[int]:
        calls.append(len(items))
        if len(calls) == 1:
            raise Abort()
        return double(items)

    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=0.0, workers=2), handler=handler)
        first = rig.submit(1)
        await rig.ex.complete()
        assert isinstance(outcome(first), BatchingError) and "Abort" in str(outcome(first))
        hung = rig.submit(2, deadline=rig.time.now + 1.0)  # its call is never completed
        await settle()
        later = rig.submit(3, deadline=rig.time.now + 1.0)
        await settle()
        await rig.ex.complete(1)
        assert outcome(later) == 6
        await rig.time.advance(1.0)
        assert isinstance(outcome(hung), DeadlineExceeded)
        assert rig.batcher.in_flight == 1  # the hung call still holds its worker

    run(body)


def test_policy_validation_names_the_field() -> None:
    for kwargs, field_name in [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_delay_s": -0.1}, "max_batch_delay_s"),
        ({"max_batch_delay_s": math.inf}, "max_batch_delay_s"),
        ({"max_queue": 1.5}, "max_queue"),
        ({"workers": True}, "workers"),
        ({"workers": 0}, "workers"),
    ]:
        with pytest.raises(ValueError, match=field_name):
            BatchPolicy(**kwargs)


def test_submit_before_start_is_refused() -> None:
    async def body() -> None:
        batcher: Batcher[int, int] = Batcher("m", double)
        with pytest.raises(Draining, match="not started"):
            await batcher.submit(1)

    run(body)


def test_oldest_running_batch_start_is_reported_until_it_ends() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0, workers=2, max_batch_size=1))
        assert rig.batcher.oldest_batch_started_at is None
        first = rig.submit(0)
        await rig.time.advance(3.0)
        second = rig.submit(1)
        await settle()
        assert rig.batcher.in_flight == 2
        assert rig.batcher.oldest_batch_started_at == 100.0  # the first batch's start
        await rig.ex.complete()
        assert rig.batcher.oldest_batch_started_at == 103.0
        await rig.ex.complete()
        assert rig.batcher.oldest_batch_started_at is None
        assert outcome(first) == 0 and outcome(second) == 2

    run(body)


def test_running_batches_report_their_longest_deadline_budget() -> None:
    async def body() -> None:
        rig = await make_rig(BatchPolicy(max_batch_delay_s=10.0, workers=2, max_batch_size=2))
        first = rig.submit(0, deadline=100.0 + 60.0)  # asked for 60 s: runs alone (idle)
        await settle()
        second = rig.submit(1, deadline=100.0 + 0.5)
        third = rig.submit(2)  # no deadline: the batch's budget is unknown
        await settle()  # two rows fill a batch: the second worker takes it at once
        assert sorted(rig.batcher.running_batches, key=lambda b: b[1] is None) == [
            (100.0, 60.0),
            (100.0, None),
        ]
        await rig.time.advance(1.0)  # the second request's deadline passes while it runs
        await rig.ex.complete()
        await rig.ex.complete()
        assert rig.batcher.running_batches == []
        assert outcome(first) == 0 and outcome(third) == 4
        assert isinstance(outcome(second), DeadlineExceeded)

    run(body)
