"""Startup: phases that add up to the total, and one warm-up batch before ready.

In-process apps (Starlette's TestClient runs the lifespan) with a model whose warm-up
batch is held until the test releases it; the real server's ``ready`` log line and
gauges come from the session's ``main_server``. No wall-clock bounds: only order,
presence and sums.
"""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Sequence

import httpx
import numpy as np
import pytest

from serving.app import create_app
from serving.model import PreparedItem, warm_up_item
from serving.protocol import ColumnSpec, OutputSpec, Prediction
from serving.settings import ModelSpec, Settings
from serving.startup import PHASES, StartupClock, process_age_s
from tests.serving.conftest import Server

with warnings.catch_warnings():  # starlette nudges towards httpx2, which is not needed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

POLLS = 1500  # of POLL_S: a bounded wait of about 30 s
POLL_S = 0.02


class WarmingModel:
    """y = x + 1; its warm-up batch (x = 0) waits for ``release``, or raises ``failure``."""

    name, version, platform = "warming", "1", "test"
    inputs = (ColumnSpec("x", "double"),)
    outputs = (OutputSpec("y", "FP64"),)

    def __init__(self, failure: Exception | None = None) -> None:
        self.release = threading.Event()
        self.failure = failure
        self.batches: list[list[float]] = []

    def warm_up_items(self) -> list[PreparedItem]:
        return [warm_up_item(self.inputs)]

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        rows = [float(v) for it in items for v in it.columns["x"]]
        self.batches.append(rows)
        if rows == [0.0]:
            if self.failure is not None:
                raise self.failure
            assert self.release.wait(30), "the test never released the warm-up"
        return [Prediction({"y": it.columns["x"] + 1}) for it in items]


def _settings() -> Settings:
    return Settings(models=(ModelSpec("warming", "unused"),))


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def _until_ready(client: TestClient) -> None:
    for _ in range(POLLS):
        if client.get("/v2/health/ready").status_code == 200:
            return
        time.sleep(POLL_S)  # bounded poll of the app's readiness
    raise AssertionError("never ready")


def test_laps_cover_the_way_to_ready_without_gaps() -> None:
    now = [100.0]
    clock = StartupClock(origin=90.0, clock=lambda: now[0])
    now[0] = 93.5
    assert clock.lap("imports") == pytest.approx(3.5)
    now[0] = 94.0
    clock.lap("load")
    now[0] = 95.0
    clock.lap("serve")
    now[0] = 95.25
    clock.lap("load")  # a second model: laps of one phase add up
    now[0] = 96.0
    report = clock.ready()
    assert report["startup_s"] == pytest.approx(6.0)
    assert report["phases_s"] == {"imports": 3.5, "load": 0.75, "serve": 1.75}
    assert list(report["phases_s"]) == ["imports", "load", "serve"]  # in PHASES order
    assert sum(report["phases_s"].values()) == pytest.approx(report["startup_s"])


def test_process_age_is_read_from_the_kernel() -> None:
    age = process_age_s()
    assert age is not None and age > 0
    clock = StartupClock()  # counted from this process's start, so before now
    assert clock.origin < time.monotonic()


def test_warm_up_batch_runs_before_ready_and_readiness_waits_for_it() -> None:
    model = WarmingModel()
    with TestClient(create_app([model], _settings())) as client:
        for _ in range(POLLS):  # the warm-up batch reaches predict
            if model.batches:
                break
            time.sleep(POLL_S)
        assert model.batches == [[0.0]]
        r = client.get("/v2/health/ready")
        assert (r.status_code, r.json()) == (503, {"error": "warming up"})
        tensor = {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}
        r = client.post("/v2/models/warming/infer", json={"inputs": [tensor]})
        assert (r.status_code, r.json()) == (503, {"error": "warming up"})
        assert client.get("/v2/health/live").status_code == 200
        model.release.set()
        _until_ready(client)
        metrics = client.get("/metrics").text
        # The one batch predicted so far is the warm-up; no request has been answered 200.
        assert _metric(metrics, 'serving_batch_requests_count{model="warming"}') == 1.0
        assert 'serving_requests_total{code="200"' not in metrics
        pattern = re.compile(r'^serving_startup_phase_seconds\{phase="(\w+)"\} (\S+)$', re.M)
        phases = {m[1]: float(m[2]) for m in pattern.finditer(metrics)}
        assert {"warm_up", "serve"} <= set(phases) <= set(PHASES)
        assert sum(phases.values()) == pytest.approx(
            _metric(metrics, "serving_startup_seconds"), abs=0.01
        )


def test_a_failed_warm_up_keeps_the_service_not_ready_with_its_reason() -> None:
    model = WarmingModel(failure=ValueError("x must be positive, see /srv/model.py"))
    with TestClient(create_app([model], _settings())) as client:
        for _ in range(POLLS):
            r = client.get("/v2/health/ready")
            if r.json() != {"error": "warming up"}:
                break
            time.sleep(POLL_S)
        assert r.status_code == 503
        # The error's type, not its text: the probe needs no token, the text may name paths.
        assert r.json() == {"error": "model 'warming' warm-up failed: ValueError (see the log)"}
        assert client.get("/v2/models/warming/ready").status_code == 503
        assert client.get("/v2/health/live").status_code == 200  # a restart would not help


def test_a_model_without_a_warm_up_batch_is_ready_at_start() -> None:
    model = WarmingModel()
    model.warm_up_items = None  # type: ignore[assignment]
    with TestClient(create_app([model], _settings())) as client:
        assert client.get("/v2/health/ready").status_code == 200
        assert model.batches == []


def test_real_server_logs_its_phases_at_ready(main_server: Server) -> None:
    lines = [json.loads(x) for x in main_server.log().splitlines() if x.startswith("{")]
    ready = [x for x in lines if x.get("message") == "ready"]
    assert len(ready) == 1
    phases = ready[0]["phases_s"]
    assert list(phases) == ["imports", "resolve", "download", "load", "warm_up", "serve"]
    assert all(v >= 0 for v in phases.values())
    assert sum(phases.values()) == pytest.approx(ready[0]["startup_s"], abs=0.01)
    # The warm-up batch is logged before ready; "serving" (listener open) too.
    messages = [x.get("message") for x in lines]
    assert messages.index("model loaded") < messages.index("ready")
    metrics = httpx.get(main_server.url + "/metrics", timeout=10).text
    assert _metric(metrics, "serving_startup_seconds") == ready[0]["startup_s"]
    for phase, seconds in phases.items():
        assert _metric(metrics, f'serving_startup_phase_seconds{{phase="{phase}"}}') == seconds


def test_warm_up_item_has_the_signature_dtypes() -> None:
    columns = (ColumnSpec("a", "double"), ColumnSpec("b", "long"), ColumnSpec("c", "string"))
    item = warm_up_item(columns)
    assert item.rows == 1
    assert item.columns["a"].dtype == np.float64 and item.columns["b"].dtype == np.int64
    assert item.columns["c"].tolist() == [""]
