"""Predict in worker processes: answers, a worker's death, liveness, drain, memory metrics.

Each test serves ``DoublingModel`` from two worker processes behind a real uvicorn on
127.0.0.1 (``serve``); every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn

from serving.app import create_app
from serving.batching import WorkerDied
from serving.service import MAX_DEATHS, ServiceState
from serving.settings import ModelSpec, Settings
from serving.workers import WorkerPool, usable_cpus
from tests.serving.probes import wait_until
from tests.serving.worker_models import KILL, SLOW, DoublingModel

POLL_S = 0.02
POLL_LIMIT = 1500  # polls of POLL_S: a bounded wait of about 30 s (a worker restarts)
INFER = "/v2/models/doubling/infer"


def _body(*xs: float) -> bytes:
    tensor = {"name": "x", "shape": [len(xs)], "datatype": "FP64", "data": list(xs)}
    return json.dumps({"inputs": [tensor]}).encode()


def _outputs(response: httpx.Response) -> dict[str, list[Any]]:
    assert response.status_code == 200, response.text
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


async def _until(check: Callable[[], bool], what: str) -> None:
    await wait_until(check, what, POLL_S, POLL_LIMIT)


@contextlib.asynccontextmanager
async def serve(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceState]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(
        models=(ModelSpec("doubling", "u"),), port=port, predict_processes=2, **overrides
    )
    app = create_app([DoublingModel()], settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await _until(lambda: server.started, "the server started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client, app.state.service
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def _pids(state: ServiceState) -> set[int]:
    pool = state.pools["doubling"]
    return {w.process.pid for w in pool._workers.values() if w.process.pid is not None}


def test_batches_are_predicted_in_the_worker_processes() -> None:
    async def main() -> None:
        async with serve(max_batch_delay_ms=50.0) as (client, state):
            assert state.batchers["doubling"].policy.workers == 2  # one batch per process
            answers = await asyncio.gather(
                *(client.post(INFER, content=_body(i, i + 0.5)) for i in range(40))
            )
            seen: set[int] = set()
            for i, answer in enumerate(answers):
                out = _outputs(answer)
                assert out["y"] == [2 * i, 2 * i + 1.0]
                seen.update(out["pid"])
            assert seen <= _pids(state) and seen  # predicted in the workers, not here
            assert os.getpid() not in seen
            metrics = (await client.get("/metrics")).text
            for index in (0, 1):
                line = f'serving_predict_worker_rss_bytes{{model="doubling",worker="{index}"}}'
                assert line in metrics
                assert float(metrics.split(line, 1)[1].split()[0]) > 10e6

    asyncio.run(main())


def test_a_worker_that_dies_fails_only_its_batch_and_is_restarted() -> None:
    async def main() -> None:
        async with serve() as (client, state):
            before = _pids(state)
            dead = await client.post(INFER, content=_body(KILL))
            assert dead.status_code == 503
            assert "predict worker" in dead.json()["error"] and "died" in dead.json()["error"]
            # The other worker keeps answering while the dead one restarts.
            for i in range(5):
                assert _outputs(await client.post(INFER, content=_body(i)))["y"] == [2 * i]
            pool = state.pools["doubling"]
            await _until(lambda: pool._idle.qsize() == 2, "the dead worker was restarted")
            after = _pids(state)
            assert len(after) == 2 and len(after & before) == 1
            assert (
                await client.get("/v2/health/live")
            ).status_code == 200  # one death is not a hang
            metrics = (await client.get("/metrics")).text
            assert 'serving_predict_worker_deaths_total{model="doubling"} 1.0' in metrics

    asyncio.run(main())


def test_repeated_worker_deaths_fail_liveness() -> None:
    async def main() -> None:
        async with serve() as (client, state):
            pool = state.pools["doubling"]
            for _ in range(MAX_DEATHS):
                await _until(lambda: pool._idle.qsize() >= 1, "a worker is idle")
                answer = await client.post(INFER, content=_body(KILL))
                assert answer.status_code == 503
            live = await client.get("/v2/health/live")
            assert live.status_code == 503
            assert "predict worker deaths" in live.json()["error"]

    asyncio.run(main())


def test_drain_waits_for_busy_workers_then_stops_them() -> None:
    async def main() -> None:
        async with serve(drain_timeout_s=20.0) as (client, state):
            processes = [w.process for w in state.pools["doubling"]._workers.values()]
            busy = [
                asyncio.ensure_future(client.post(INFER, content=_body(SLOW, i))) for i in range(2)
            ]
            await _until(lambda: state.batchers["doubling"].in_flight == 2, "both workers are busy")
            await state.drain()
            for i, answer in enumerate(await asyncio.gather(*busy)):
                assert _outputs(answer)["y"] == [2 * SLOW, 2 * i]
            assert not any(p.is_alive() for p in processes)

    asyncio.run(main())


def test_worker_died_is_not_bisected_and_names_the_worker() -> None:
    pool = WorkerPool("doubling", DoublingModel().loader, 1)
    pool.start()
    try:
        import numpy as np

        from serving.model import PreparedItem

        items = [PreparedItem({"x": np.array([float(i)])}, 1) for i in range(3)]
        assert [p.outputs["y"].tolist() for p in pool.predict_batch(items)] == [[0.0], [2.0], [4.0]]
        items.append(PreparedItem({"x": np.array([KILL])}, 1))
        try:
            pool.predict_batch(items)
        except WorkerDied as exc:
            assert "predict worker 0 died (exit code 3)" in str(exc)
        else:
            raise AssertionError("a dead worker must raise WorkerDied")
    finally:
        pool.close()


def test_usable_cpus_is_at_least_one_and_at_most_the_affinity() -> None:
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))
