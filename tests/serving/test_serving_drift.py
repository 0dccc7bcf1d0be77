"""Drift in a real service: the demo model (registered with its reference profile) served
on 127.0.0.1 with a 1-second check interval, fed by real V2 requests."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.demo import FEATURES, synthetic_metrics
from serving.drift_service import DriftService
from serving.settings import Settings
from tests.serving.conftest import Registry, Server

CHECK_WAIT_S = 60.0


@pytest.fixture(scope="module")
def drift_server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "MLFLOW_REGISTRY_URI": registry.tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "SERVING_MODELS": f"anomaly={registry.model_uri}",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    log = tmp_path_factory.mktemp("drift") / "server.log"
    server = Server("drift", ["--drift-interval-s", "1"], env, log)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _send(url: str, frame: pd.DataFrame, rows_per_request: int = 100) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(frame), rows_per_request):
            part = frame.iloc[start : start + rows_per_request]
            body = {
                "inputs": [
                    {"name": f, "shape": [len(part)], "datatype": "FP64", "data": part[f].tolist()}
                    for f in FEATURES
                ]
            }
            answer = client.post("/v2/models/anomaly/infer", json=body)
            assert answer.status_code == 200, answer.text


def _report_after(url: str, since: float) -> dict[str, Any]:
    """The first drift report checked after ``since`` (wall time), within a bounded wait."""
    deadline = time.monotonic() + CHECK_WAIT_S
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            report = client.get("/v2/models/anomaly/drift").json()
            if report.get("checked_at", 0) > since:
                return report
            time.sleep(0.2)  # polling interval of a bounded wait for the next check
    raise AssertionError(f"no drift check after {since} within {CHECK_WAIT_S}s")


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels`` (in any order)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_training_rows_leave_drift_off_and_shifted_rows_turn_it_on(drift_server: Server) -> None:
    url = drift_server.url
    normal = synthetic_metrics(2000, seed=11)
    _send(url, normal)
    report = _report_after(url, time.time())
    assert report["window_rows"] == 2000
    assert report["verdict"] == "no drift", report
    metrics = httpx.get(f"{url}/metrics").text
    for feature in FEATURES:
        assert _metric(metrics, "serving_drift_detected", model="anomaly", feature=feature) == 0
    assert _metric(metrics, "serving_drift_window_rows", model="anomaly") == 2000

    shifted = synthetic_metrics(2000, seed=12)
    shifted["network_mbps"] *= 1.5
    _send(url, shifted)
    report = _report_after(url, time.time())
    assert report["verdict"] == "drift" and report["drifted"] is True
    by_feature = {f["feature"]: f for f in report["features"]}
    assert by_feature["network_mbps"]["drifted"] is True
    assert by_feature["cpu_util"]["drifted"] is False
    metrics = httpx.get(f"{url}/metrics").text
    on = _metric(metrics, "serving_drift_detected", model="anomaly", feature="network_mbps")
    assert on == 1
    assert _metric(metrics, "serving_drift_detected", model="anomaly", feature="cpu_util") == 0
    score = _metric(metrics, "serving_drift_score", model="anomaly", feature="network_mbps")
    assert score >= 0.6
    ks = _metric(
        metrics, "serving_drift_statistic", model="anomaly", feature="network_mbps", test="ks"
    )
    assert ks < 0.05
    assert _metric(metrics, "serving_drift_window_age_seconds", model="anomaly") >= 0
    assert "drift detected" in drift_server.log()


def test_drift_of_an_unserved_model_is_404(drift_server: Server) -> None:
    answer = httpx.get(f"{drift_server.url}/v2/models/ghost/drift")
    assert answer.status_code == 404
    assert answer.json() == {"error": "model 'ghost' is not served"}


def test_a_model_without_a_reference_is_served_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import mlflow

    previous_uri = mlflow.get_tracking_uri()

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            pass
        logged = SimpleNamespace(metadata=SimpleNamespace(run_id=run.info.run_id))
        model = SimpleNamespace(name="bare", pyfunc=logged, inputs=(), outputs=())
        with caplog.at_level(logging.INFO, logger="serving"):
            service = DriftService([model], Settings(models=()))  # type: ignore[list-item]
    finally:
        mlflow.set_tracking_uri(previous_uri)
    assert service.monitors == {}
    assert service.report("bare") is None
    lines = [r for r in caplog.records if "without a drift reference" in r.getMessage()]
    assert len(lines) == 1
