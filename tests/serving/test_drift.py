"""Drift detection on its own: the reference profile, the window and the five-test vote.

The statistics run on the demo's synthetic node metrics: a reference from one seed,
windows from others (the same distribution), and windows whose ``network_mbps`` is
scaled up (a shifted distribution).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving import drift
from serving.demo import FEATURES, synthetic_metrics
from serving.drift_service import DriftChecker

WINDOW = 2000
SAME_SEEDS = range(100, 160)
FALSE_POSITIVE_BUDGET = 0.02


@pytest.fixture(scope="module")
def reference() -> drift.Reference:
    return drift.parse_reference(drift.reference_profile(synthetic_metrics(5000, seed=1)))


def _monitor(reference: drift.Reference, frame: pd.DataFrame, **kw: float) -> drift.DriftMonitor:
    monitor = drift.DriftMonitor(
        "anomaly",
        reference,
        FEATURES,
        window_rows=WINDOW,
        thresholds=drift.Thresholds(**kw),  # type: ignore[arg-type]
    )
    monitor.window.observe({f: frame[f].to_numpy() for f in FEATURES}, len(frame))
    return monitor


def test_windows_from_the_training_distribution_stay_within_the_false_positive_budget(
    reference: drift.Reference,
) -> None:
    drifted = sum(
        _monitor(reference, synthetic_metrics(WINDOW, seed=s)).check().drifted for s in SAME_SEEDS
    )
    assert drifted <= FALSE_POSITIVE_BUDGET * len(SAME_SEEDS)


def test_a_p_value_alone_does_not_make_a_consensus(reference: drift.Reference) -> None:
    """Over many same-distribution windows the p-value tests fire now and then (as their
    5 % level says); the vote keeps those from raising drift."""
    reports = [_monitor(reference, synthetic_metrics(WINDOW, seed=s)).check() for s in SAME_SEEDS]
    fired = [f for r in reports for f in r.features if f.ks_pvalue < 0.05]
    assert fired, "expected some KS p-values under 0.05 by chance"
    assert not any(f.drifted for f in fired if f.votes < 3)


@pytest.mark.parametrize("scale", [1.5, 2.0])
def test_a_shifted_feature_is_detected_and_named(reference: drift.Reference, scale: float) -> None:
    for seed in range(200, 205):
        frame = synthetic_metrics(WINDOW, seed=seed)
        frame["network_mbps"] *= scale
        report = _monitor(reference, frame).check()
        assert report.verdict == "drift"
        by_feature = {f.feature: f for f in report.features}
        assert by_feature["network_mbps"].drifted
        assert by_feature["network_mbps"].votes >= 3
        assert not by_feature["cpu_util"].drifted and not by_feature["memory_util"].drifted


def test_the_vote_count_is_a_threshold(reference: drift.Reference) -> None:
    frame = synthetic_metrics(WINDOW, seed=300)
    frame["network_mbps"] *= 1.5
    assert _monitor(reference, frame, votes=5).check().verdict == "no drift"  # 4 of 5 agree


def test_a_window_too_small_gives_no_verdict(reference: drift.Reference) -> None:
    report = _monitor(reference, synthetic_metrics(150, seed=5) * 3).check()
    assert report.verdict == "insufficient data"
    assert report.window_rows == 150 and report.features == []


def test_the_window_keeps_the_last_rows_and_their_age() -> None:
    now = [100.0]
    window = drift.Window(["x"], size=5, clock=lambda: now[0])
    window.observe({"x": np.array([1.0, 2.0, 3.0])}, 3)
    now[0] = 110.0
    window.observe({"x": np.array([4.0, 5.0, 6.0, 7.0])}, 4)
    values, rows, age = window.snapshot()
    assert rows == 5
    assert sorted(values["x"].tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert age == pytest.approx(10.0)  # the oldest kept row (3.0) arrived at t=100
    window.observe({"x": np.arange(20.0)}, 20)  # more than the window: the last 5 only
    values, rows, age = window.snapshot()
    assert sorted(values["x"].tolist()) == [15.0, 16.0, 17.0, 18.0, 19.0] and age == 0.0


def test_rows_without_the_profiled_features_are_not_sampled() -> None:
    window = drift.Window(["x", "y"], size=4)
    window.observe({"x": np.array([1.0])}, 1)
    assert window.snapshot()[1] == 0


def test_the_reference_round_trips_through_an_mlflow_run(tmp_path: Path) -> None:
    import mlflow

    previous_uri = mlflow.get_tracking_uri()

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("drift", artifact_location=tmp_path.as_uri())
        frame = synthetic_metrics(8000, seed=3)
        frame["host"] = "node-1"  # not numeric: not profiled
        with mlflow.start_run(experiment_id=experiment) as run:
            drift.log_reference(frame)
        with mlflow.start_run(experiment_id=experiment) as bare:
            pass
        loaded = drift.load_reference(run.info.run_id)
        assert loaded is not None and loaded.rows == 8000
        assert sorted(loaded.features) == sorted(FEATURES)
        network = loaded.features["network_mbps"]
        assert network.values.size == drift.REFERENCE_ROWS
        assert network.mean == pytest.approx(float(network.values.mean()))
        assert network.edges.size == drift.BINS - 1
        assert drift.load_reference(bare.info.run_id) is None
    finally:
        mlflow.set_tracking_uri(previous_uri)


def test_log_reference_needs_the_models_run() -> None:
    with pytest.raises(RuntimeError, match="inside the run that logs the model"):
        drift.log_reference(synthetic_metrics(10))


def test_a_frame_with_nothing_numeric_is_refused() -> None:
    with pytest.raises(ValueError, match="no numeric column"):
        drift.reference_profile(pd.DataFrame({"host": ["a", "b"]}))


def test_a_damaged_profile_is_named() -> None:
    with pytest.raises(ValueError, match="not a drift reference profile"):
        drift.parse_reference({"features": {"x": {"values": [1.0]}}, "rows": 1})


def test_the_checker_reports_each_model_and_survives_a_failing_one(
    reference: drift.Reference,
) -> None:
    good = _monitor(reference, synthetic_metrics(WINDOW, seed=9))

    class Broken(drift.DriftMonitor):
        def check(self, wall_time: float | None = None) -> drift.DriftReport:
            raise FloatingPointError("a broken window")

    bad = Broken("broken", reference, FEATURES, window_rows=10, thresholds=drift.Thresholds())
    reports: list[drift.DriftReport] = []
    errors: list[str] = []
    checker = DriftChecker([bad, good], 3600.0, reports.append, lambda m, e: errors.append(m.model))
    checker.check_all()
    assert [r.verdict for r in reports] == ["no drift"]
    assert errors == ["broken"]
    assert good.last is reports[0]
    checker.start()
    checker.stop(timeout_s=5.0)
    assert not checker._thread.is_alive()


def test_sampling_never_waits_for_a_running_check(
    reference: drift.Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check holds the window's lock only to copy it: while its tests run, requests'
    rows still go in."""
    import threading

    monitor = _monitor(reference, synthetic_metrics(WINDOW, seed=21))
    comparing, release = threading.Event(), threading.Event()
    compare = drift.compare_feature

    def slow_compare(*args: object) -> drift.FeatureResult:
        comparing.set()
        release.wait(30)
        return compare(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(drift, "compare_feature", slow_compare)
    checking = threading.Thread(target=monitor.check)
    checking.start()
    try:
        assert comparing.wait(30), "the check never started comparing"
        rows = synthetic_metrics(10, seed=22)
        monitor.window.observe({f: rows[f].to_numpy() for f in FEATURES}, 10)
        assert checking.is_alive()  # the check is still blocked, the rows went in anyway
    finally:
        release.set()
        checking.join(30)
    assert monitor.last is not None and monitor.last.window_rows == WINDOW


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drift-thresholds", "ks=often"], "--drift-thresholds"),
        (["--drift-thresholds", "kl=0.1"], "KEY one of ks, ad, wasserstein, js, mean"),
        (["--drift-votes", "6"], "--drift-votes"),
        (["--drift-window-rows", "-1"], "--drift-window-rows"),
    ],
)
def test_bad_drift_flags_are_named(args: list[str], message: str) -> None:
    from serving.settings import SettingsError, parse_settings

    with pytest.raises(SettingsError, match=message):
        parse_settings(["--model", "a=models:/a/1", *args], {})


def test_drift_flags_set_the_thresholds() -> None:
    from serving.drift_service import thresholds
    from serving.settings import parse_settings

    settings = parse_settings(
        ["--model", "a=models:/a/1", "--drift-votes", "4", "--drift-thresholds", "js=0.2,ks=0.01"],
        {},
    )
    assert thresholds(settings) == drift.Thresholds(votes=4, jensen_shannon=0.2, ks_p=0.01)
