"""Models for the predict-process tests: loadable in a worker (their loader pickles)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from serving.model import Model, PreparedItem
from serving.protocol import ColumnSpec, OutputSpec, Prediction

#: A row holding this value kills the worker process that predicts it.
KILL = -1.0
#: A row holding this value makes its batch take ``SLOW_S``.
SLOW = -2.0
SLOW_S = 1.0


class DoublingModel:
    """y = 2x and the worker's pid; ``KILL`` exits the process, ``SLOW`` sleeps ``SLOW_S``."""

    name, version, platform = "doubling", "1", "test"
    inputs = (ColumnSpec("x", "double"),)
    outputs = (OutputSpec("y", "FP64"), OutputSpec("pid", "INT64"))

    @property
    def loader(self) -> Callable[[], Model]:
        return functools.partial(DoublingModel)

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        for item in items:
            if (item.columns["x"] == KILL).any():
                os._exit(3)
            if (item.columns["x"] == SLOW).any():
                time.sleep(SLOW_S)
        pid = os.getpid()
        return [self._answer(it, pid) for it in items]

    @staticmethod
    def _answer(item: PreparedItem, pid: int) -> Prediction:
        return Prediction({"y": item.columns["x"] * 2, "pid": np.full(item.rows, pid)})
