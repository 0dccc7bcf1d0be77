"""Drift in the running service: references, sampling, the checker thread and metrics.

At start, each model's reference profile is read from the MLflow run that logged the
model version (``serving.drift.log_reference``). A model without one is served as
before and the log says so once. Every finished batch hands its columns to the model's
window (one array copy per feature, after predict); the checker thread compares the
windows with the references every ``--drift-interval-s``. ``/metrics`` reads the last
reports at scrape time:

- ``serving_drift_detected{model,feature}``: 1 when the feature's tests reach the vote;
- ``serving_drift_score{model,feature}``: the share of the five tests that voted drift;
- ``serving_drift_statistic{model,feature,test}``: each test's p-value or distance;
- ``serving_drift_window_rows{model}`` and ``serving_drift_window_age_seconds{model}``;
- ``serving_drift_last_check_timestamp_seconds{model}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from serving import drift

if TYPE_CHECKING:
    from serving.model import Model, PreparedItem
    from serving.settings import Settings

log = logging.getLogger("serving")


def thresholds(settings: Settings) -> drift.Thresholds:
    return drift.Thresholds(
        votes=settings.drift_votes, min_rows=settings.drift_min_rows, **settings.drift_thresholds
    )


def run_id_of(model: Model) -> str | None:
    """The MLflow run that logged ``model`` (from its ``MLmodel`` metadata), or None for a
    model not loaded through MLflow."""
    metadata = getattr(getattr(model, "pyfunc", None), "metadata", None)
    run_id = getattr(metadata, "run_id", None)
    return run_id if isinstance(run_id, str) and run_id else None


def _reference(model: Model) -> drift.Reference | None:
    run_id = run_id_of(model)
    if run_id is None:  # not an MLflow model (an ensemble, an in-memory one): no reference
        return None
    try:
        reference = drift.load_reference(run_id)
    except Exception as exc:  # the registry or the artifact store: serve without drift
        log.warning(
            "drift reference unreadable: drift is not checked",
            extra={"model": model.name, "error": str(exc)},
        )
        return None
    if reference is None:
        log.info(
            "model logged without a drift reference: drift is not checked",
            extra={"model": model.name, "artifact": drift.REFERENCE_ARTIFACT},
        )
    return reference


class DriftChecker:
    """Runs every monitor's check every ``interval_s`` in one daemon thread and hands
    each report to ``on_report`` (the metrics). A failing check is logged, not fatal."""

    def __init__(
        self,
        monitors: Iterable[drift.DriftMonitor],
        interval_s: float,
        on_report: Callable[[drift.DriftReport], None],
        on_error: Callable[[drift.DriftMonitor, Exception], None],
    ) -> None:
        self.monitors = list(monitors)
        self.interval_s = interval_s
        self._on_report = on_report
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-checker", daemon=True)

    def start(self) -> None:
        if self.monitors:
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def check_all(self) -> None:
        for monitor in self.monitors:
            try:
                self._on_report(monitor.check())
            except Exception as exc:  # one model's bad window must not stop the others
                self._on_error(monitor, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_all()


class DriftService:
    """The monitors of the models that have a reference, and their checker thread."""

    def __init__(self, models: Sequence[Model], settings: Settings) -> None:
        self.monitors: dict[str, drift.DriftMonitor] = {}
        if settings.drift_window_rows > 0:
            limits = thresholds(settings)
            for m in models:
                reference = _reference(m)
                if reference is not None:
                    self.monitors[m.name] = drift.DriftMonitor(
                        m.name,
                        reference,
                        [c.name for c in m.inputs],
                        window_rows=settings.drift_window_rows,
                        thresholds=limits,
                    )
        self.checker = DriftChecker(
            self.monitors.values(), settings.drift_interval_s, self._reported, self._failed
        )

    def observe(self, model: str, items: Sequence[PreparedItem]) -> None:
        """Sample a finished batch's rows into ``model``'s window (if it has one)."""
        monitor = self.monitors.get(model)
        if monitor is None:
            return
        for item in items:
            monitor.window.observe(item.columns, item.rows)

    def clear(self) -> None:
        """Empty every window (after the warm-up, whose rows are not traffic)."""
        for monitor in self.monitors.values():
            monitor.window.clear()

    def report(self, model: str) -> dict[str, object] | None:
        """The last report of ``model`` as JSON, None when it has no reference."""
        monitor = self.monitors.get(model)
        if monitor is None:
            return None
        if monitor.last is None:
            rows = monitor.window.rows
            return {"model": model, "verdict": "not checked yet", "window_rows": rows}
        return monitor.last.as_json()

    def _reported(self, report: drift.DriftReport) -> None:
        if report.drifted:
            names = [f.feature for f in report.features if f.drifted]
            log.warning("drift detected", extra={"model": report.model, "features": names})

    def _failed(self, monitor: drift.DriftMonitor, exc: Exception) -> None:
        log.warning("drift check failed", extra={"model": monitor.model, "error": repr(exc)})


class DriftCollector(Collector):
    """The last drift reports as gauges, read at scrape time."""

    def __init__(self, monitors: Mapping[str, drift.DriftMonitor]) -> None:
        self._monitors = monitors

    def collect(self) -> Iterator[GaugeMetricFamily]:
        detected = GaugeMetricFamily(
            "serving_drift_detected",
            "1 when the feature's drift tests reach the vote",
            labels=["model", "feature"],
        )
        score = GaugeMetricFamily(
            "serving_drift_score",
            "Share of the five drift tests that voted drift",
            labels=["model", "feature"],
        )
        statistic = GaugeMetricFamily(
            "serving_drift_statistic",
            "Each drift test's p-value (ks, anderson_darling) or distance",
            labels=["model", "feature", "test"],
        )
        rows = GaugeMetricFamily(
            "serving_drift_window_rows", "Rows in the drift window", labels=["model"]
        )
        age = GaugeMetricFamily(
            "serving_drift_window_age_seconds",
            "Age of the oldest row in the drift window at the last check",
            labels=["model"],
        )
        checked = GaugeMetricFamily(
            "serving_drift_last_check_timestamp_seconds",
            "When drift was last checked (Unix time)",
            labels=["model"],
        )
        for name, monitor in sorted(self._monitors.items()):
            report = monitor.last
            rows.add_metric([name], monitor.window.rows)
            if report is None:
                continue
            age.add_metric([name], report.window_age_s)
            checked.add_metric([name], report.checked_at)
            for f in report.features:
                detected.add_metric([name, f.feature], float(f.drifted))
                score.add_metric([name, f.feature], f.score)
                values = (
                    f.ks_pvalue,
                    f.anderson_darling_pvalue,
                    f.wasserstein,
                    f.jensen_shannon,
                    f.mean_shift,
                )
                for test, value in zip(drift.TESTS, values, strict=True):
                    statistic.add_metric([name, f.feature, test], value)
        yield from (detected, score, statistic, rows, age, checked)
