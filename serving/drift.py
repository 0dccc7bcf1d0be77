"""Drift: the rows a model is asked about, compared with the rows it was trained on.

Training code logs a *reference profile* beside the model, in the same MLflow run:
``serving.drift.log_reference(df)`` keeps, per numeric feature, up to
:data:`REFERENCE_ROWS` values (a seeded sample), their mean and standard deviation, and
:data:`BINS` quantile bins. The service keeps a sliding window of the last
``--drift-window-rows`` rows each model received (a ring buffer per feature; adding a
request's rows is one array copy under a lock held for microseconds) and, on a timer in
its own thread, never on the event loop and never inside a batch, runs five tests per
feature against the reference:

- Kolmogorov-Smirnov (two samples): drift when its p-value is below ``ks_p``;
- Anderson-Darling (k samples): drift when its p-value (which scipy caps to 0.001-0.25)
  is below ``ad_p``;
- Wasserstein distance, in reference standard deviations: drift above ``wasserstein``;
- Jensen-Shannon distance (base 2, 0-1) of the two histograms over the reference's
  quantile bins: drift above ``jensen_shannon``;
- mean shift, in reference standard deviations: drift above ``mean_shift``.

A feature drifts when at least ``votes`` of the five agree (the consensus); a model
drifts when any of its features does. A window with fewer than ``min_rows`` rows gives
no verdict. The two p-value tests alone are sensitive enough to flag trivial shifts in a
large window; the consensus asks a distance to agree before anyone is paged.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

REFERENCE_ARTIFACT = "drift/reference.json"
REFERENCE_ROWS = 5000
BINS = 20
TESTS = ("ks", "anderson_darling", "wasserstein", "jensen_shannon", "mean_shift")

Verdict = Literal["drift", "no drift", "insufficient data"]


@dataclass(frozen=True)
class Thresholds:
    """When each test votes drift, how many votes make a consensus, and the fewest rows
    a verdict needs. Each is a flag of the service (``--drift-*``)."""

    ks_p: float = 0.05
    ad_p: float = 0.05
    wasserstein: float = 0.1
    jensen_shannon: float = 0.1
    mean_shift: float = 0.25
    votes: int = 3
    min_rows: int = 200


# --- the reference profile -----------------------------------------------------------


@dataclass(frozen=True)
class FeatureReference:
    values: np.ndarray
    mean: float
    std: float
    edges: np.ndarray  # interior quantile edges of BINS bins

    @property
    def scale(self) -> float:
        return self.std if self.std > 0 else 1.0


@dataclass(frozen=True)
class Reference:
    features: dict[str, FeatureReference]
    rows: int


def reference_profile(
    df: pd.DataFrame, *, max_rows: int = REFERENCE_ROWS, seed: int = 0
) -> dict[str, Any]:
    """The JSON profile of ``df``'s numeric and boolean columns (others are skipped)."""
    numeric = df.select_dtypes(include=["number", "bool"])
    if numeric.shape[1] == 0:
        raise ValueError("log_reference: the frame has no numeric column to profile")
    sample = numeric.sample(n=min(max_rows, len(numeric)), random_state=seed)
    features: dict[str, Any] = {}
    for name in sample.columns:
        values = sample[name].to_numpy(dtype="float64")
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        quantiles = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1])
        features[str(name)] = {
            "values": values.tolist(),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "edges": quantiles.tolist(),
        }
    return {"version": 1, "rows": len(df), "features": features}


def log_reference(df: pd.DataFrame, *, max_rows: int = REFERENCE_ROWS) -> None:
    """Log ``df``'s profile in the active MLflow run (the run that logs the model), as
    :data:`REFERENCE_ARTIFACT`. Call it with the training frame."""
    import mlflow

    if mlflow.active_run() is None:
        raise RuntimeError("log_reference: call it inside the run that logs the model")
    mlflow.log_dict(reference_profile(df, max_rows=max_rows), REFERENCE_ARTIFACT)


def parse_reference(document: Mapping[str, Any]) -> Reference:
    """Turn a logged profile back into arrays; ``ValueError`` if it is not one."""
    try:
        features = {
            str(name): FeatureReference(
                values=np.sort(np.asarray(entry["values"], dtype="float64")),
                mean=float(entry["mean"]),
                std=float(entry["std"]),
                edges=np.asarray(entry["edges"], dtype="float64"),
            )
            for name, entry in document["features"].items()
        }
        return Reference(features=features, rows=int(document["rows"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a drift reference profile: {exc!r}") from None


def load_reference(run_id: str) -> Reference | None:
    """The reference logged in ``run_id``, or None when the run has none."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        document = mlflow.artifacts.load_dict(f"runs:/{run_id}/{REFERENCE_ARTIFACT}")
    except (MlflowException, OSError):
        return None
    return parse_reference(document)


# --- the five tests --------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureResult:
    feature: str
    ks_pvalue: float
    anderson_darling_pvalue: float
    wasserstein: float
    jensen_shannon: float
    mean_shift: float
    votes: int
    score: float
    drifted: bool


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(1, values.size)


def compare_feature(
    name: str, ref: FeatureReference, window: np.ndarray, thresholds: Thresholds
) -> FeatureResult:
    """Run the five tests on one feature's window against its reference."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anderson_ksamp warns when it caps its p-value
        # scipy's result classes are untyped: read their documented ``pvalue``.
        ks_result: Any = stats.ks_2samp(window, ref.values)
        ad_result: Any = stats.anderson_ksamp([window, ref.values])
        ks, ad = float(ks_result.pvalue), float(ad_result.pvalue)
    wasserstein = float(stats.wasserstein_distance(window, ref.values)) / ref.scale
    js = float(
        jensenshannon(_histogram(window, ref.edges), _histogram(ref.values, ref.edges), base=2)
    )
    shift = abs(float(window.mean()) - ref.mean) / ref.scale
    votes = sum(
        (
            ks < thresholds.ks_p,
            ad < thresholds.ad_p,
            wasserstein > thresholds.wasserstein,
            js > thresholds.jensen_shannon,
            shift > thresholds.mean_shift,
        )
    )
    return FeatureResult(
        feature=name,
        ks_pvalue=ks,
        anderson_darling_pvalue=ad,
        wasserstein=wasserstein,
        jensen_shannon=0.0 if js != js else js,
        mean_shift=shift,
        votes=votes,
        score=votes / len(TESTS),
        drifted=votes >= thresholds.votes,
    )


# --- the window and the report ---------------------------------------------------------


class Window:
    """The last ``size`` rows of each feature, with the time each row arrived."""

    def __init__(
        self, features: Iterable[str], size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.features = tuple(features)
        self.size = size
        self._clock = clock
        self._data = np.zeros((len(self.features), size), dtype="float64")
        self._arrived = np.zeros(size, dtype="float64")
        self._next = 0
        self._rows = 0
        self._lock = threading.Lock()

    @property
    def rows(self) -> int:
        """Rows in the window now (at most ``size``)."""
        return self._rows

    def observe(self, columns: Mapping[str, np.ndarray], rows: int) -> None:
        """Add a request's rows (columns by name; missing features are not sampled)."""
        if rows <= 0 or not all(f in columns for f in self.features):
            return
        take = min(rows, self.size)
        block = np.empty((len(self.features), take), dtype="float64")
        for i, feature in enumerate(self.features):
            block[i] = np.asarray(columns[feature][-take:], dtype="float64")
        now = self._clock()
        with self._lock:
            end = self._next + take
            if end <= self.size:
                self._data[:, self._next : end] = block
                self._arrived[self._next : end] = now
            else:
                first = self.size - self._next
                self._data[:, self._next :] = block[:, :first]
                self._data[:, : take - first] = block[:, first:]
                self._arrived[self._next :] = now
                self._arrived[: take - first] = now
            self._next = end % self.size
            self._rows = min(self.size, self._rows + take)

    def clear(self) -> None:
        """Forget every row."""
        with self._lock:
            self._next = 0
            self._rows = 0

    def snapshot(self) -> tuple[dict[str, np.ndarray], int, float]:
        """Copy the window: ``(values by feature, rows, age of its oldest row in s)``."""
        with self._lock:
            rows = self._rows
            data = self._data[:, :rows].copy() if rows < self.size else self._data.copy()
            oldest = float(self._arrived[:rows].min()) if rows else self._clock()
        values = {feature: data[i] for i, feature in enumerate(self.features)}
        return values, rows, max(0.0, self._clock() - oldest)


@dataclass(frozen=True)
class DriftReport:
    model: str
    checked_at: float
    window_rows: int
    window_age_s: float
    verdict: Verdict
    features: list[FeatureResult] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"drifted": self.drifted}


class DriftMonitor:
    """One model's reference, window and last report."""

    def __init__(
        self,
        model: str,
        reference: Reference,
        inputs: Iterable[str],
        *,
        window_rows: int,
        thresholds: Thresholds,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.reference = reference
        self.thresholds = thresholds
        self.window = Window([f for f in inputs if f in reference.features], window_rows, clock)
        self.last: DriftReport | None = None

    def check(self, wall_time: float | None = None) -> DriftReport:
        """Compare the window with the reference now; keep and return the report."""
        values, rows, age = self.window.snapshot()
        checked_at = time.time() if wall_time is None else wall_time
        if rows < self.thresholds.min_rows or not self.window.features:
            report = DriftReport(self.model, checked_at, rows, age, "insufficient data")
        else:
            results = [
                compare_feature(f, self.reference.features[f], values[f], self.thresholds)
                for f in self.window.features
            ]
            verdict: Verdict = "drift" if any(r.drifted for r in results) else "no drift"
            report = DriftReport(self.model, checked_at, rows, age, verdict, results)
        self.last = report
        return report
