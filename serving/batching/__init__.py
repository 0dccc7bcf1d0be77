"""The dynamic batcher: one per model, stdlib ``asyncio`` only, no HTTP, no MLflow.

``policy`` holds what a batcher is told (batch size, delay, queue, workers) and why a
batch leaves (``DispatchReason``), ``errors`` what a request can fail with,
``observer`` the typed metrics hooks, ``batcher`` the scheduler itself.
"""

from __future__ import annotations

from serving.batching.batcher import Batcher
from serving.batching.errors import (
    BatchingError,
    DeadlineExceeded,
    Draining,
    DrainTimeout,
    OutputMismatch,
    QueueFull,
    WorkerDied,
)
from serving.batching.observer import BatchObserver, NullObserver, SafeObserver
from serving.batching.policy import DISPATCH_REASONS, BatchPolicy, DispatchReason

__all__ = [
    "DISPATCH_REASONS",
    "BatchObserver",
    "BatchPolicy",
    "Batcher",
    "BatchingError",
    "DeadlineExceeded",
    "DispatchReason",
    "DrainTimeout",
    "Draining",
    "NullObserver",
    "OutputMismatch",
    "QueueFull",
    "SafeObserver",
    "WorkerDied",
]
