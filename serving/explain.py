"""Explanations: SHAP values of a tree model's answer, per row and feature.

``POST /v2/models/{name}/explain`` takes the body of ``/infer`` and answers in V2 form:
per input feature an output ``shap_<feature>`` (the feature's SHAP value for each row),
``base_value`` (the explainer's expected output), ``raw_output`` (base value plus the
row's SHAP values: the model's raw score in the explainer's units) and the model's own
outputs (its prediction). Additivity holds by construction of TreeSHAP: for an
IsolationForest the raw score is the mean path length ``h``, and ``score_samples`` is
``-2 ** (-h / c(max_samples))``.

SHAP runs in a predict thread of its own batcher (``ServiceState.explainers``): the
event loop never computes it, and at most ``--max-explain-rows`` rows per request are
explained (413 above). ``shap.TreeExplainer`` is built once per model, on its first
explain request, off the loop. Explanations need the optional ``explain`` extra
(``pip install 'mlplatform[explain]'``; the service image has it): without ``shap`` the
route answers 501; a model TreeSHAP cannot explain (not a tree ensemble, a pipeline in
front of one) answers 400.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.batching import Batcher, BatchPolicy
from serving.errors import HttpError
from serving.model import Model, PreparedItem
from serving.protocol import Prediction

if TYPE_CHECKING:
    from serving.settings import Settings

SHAP_PREFIX = "shap_"
log = logging.getLogger("serving")


def _rows_of(item: PreparedItem) -> int:
    return item.rows


class Explainer:
    """One model's TreeSHAP explainer, built on first use."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._tree: Any = None
        self._refusal: HttpError | None = None
        self._lock = threading.Lock()

    def _build(self) -> None:
        with self._lock:
            if self._tree is not None or self._refusal is not None:
                return
            try:
                import shap
            except ImportError:
                self._refusal = HttpError(
                    501, "explanations need the explain extra: pip install 'mlplatform[explain]'"
                )
                return
            except Exception as exc:  # installed but broken (e.g. numba with no cache dir)
                log.error(
                    "shap cannot be imported", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
                self._refusal = HttpError(501, "explanations are unavailable: see the log")
                return
            pyfunc = getattr(self.model, "pyfunc", None)
            raw = pyfunc.get_raw_model() if pyfunc is not None else self.model
            try:
                self._tree = shap.TreeExplainer(raw)
            except Exception as exc:  # shap names the model type it does not support
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                self._refusal = HttpError(
                    400, f"model {self.model.name!r} cannot be explained by TreeSHAP: {first}"
                )

    def batcher(
        self, handler: Callable[[Sequence[PreparedItem]], list[Prediction]], settings: Settings
    ) -> Batcher[PreparedItem, Prediction]:
        """The model's explain batcher: ``handler`` (``explain_batch`` in the service's
        tracing), batches of at most ``--max-explain-rows`` rows, one at a time."""
        policy = BatchPolicy(
            max_batch_size=settings.max_explain_rows,
            max_batch_delay_s=settings.max_batch_delay_ms / 1000.0,
            max_queue=settings.max_queue,
            workers=1,
        )
        return Batcher(f"{self.model.name}:explain", handler, policy, size_of=_rows_of)

    async def ready(self) -> None:
        """Build the explainer off the loop (once); raise its refusal if it has one."""
        if self._tree is None and self._refusal is None:
            await asyncio.to_thread(self._build)
        if self._refusal is not None:
            raise self._refusal

    def explain_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        """Explain and predict a batch; one ``Prediction`` per item (a predict thread)."""
        self._build()
        if self._refusal is not None:
            raise self._refusal
        frame = self.model.assemble(items)  # type: ignore[attr-defined]
        rows = len(frame)
        # (rows, features) for one output; (rows, features, outputs) for several.
        values = np.asarray(self._tree.shap_values(frame), dtype="float64")
        base = np.asarray(self._tree.expected_value, dtype="float64").reshape(-1)
        base_rows = np.full(rows, base[0]) if values.ndim == 2 else np.tile(base, (rows, 1))
        outputs: dict[str, np.ndarray] = {
            f"{SHAP_PREFIX}{column}": values[:, j] for j, column in enumerate(frame.columns)
        }
        outputs["base_value"] = base_rows
        outputs["raw_output"] = base_rows + values.sum(axis=1)
        results, start = [], 0
        for item, prediction in zip(items, self.model.predict_batch(items), strict=True):
            stop = start + item.rows
            mine = {k: v[start:stop] for k, v in outputs.items()}
            results.append(Prediction({**mine, **prediction.outputs}))
            start = stop
        return results


def check_rows(rows: int, limit: int) -> None:
    """413 when a request asks to explain more than ``limit`` rows."""
    if rows > limit:
        raise HttpError(
            413, f"explain takes at most {limit} rows per request (--max-explain-rows); got {rows}"
        )
