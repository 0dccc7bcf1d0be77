"""The batcher's vocabulary: its errors, its policy and its metrics hooks.

Kept apart from ``serving.batching`` (which re-exports every name here) so that the
HTTP layer and the metrics can name them without reading the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class BatchingError(Exception):
    """Base of the batcher's errors; ``str(e)`` is safe to show to a client."""


class QueueFull(BatchingError):
    """Admission refused at once because the queue is full; retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Draining(BatchingError):
    """The batcher is not accepting requests (not started, draining or stopped)."""


class DrainTimeout(Draining):
    """The request was admitted but not finished within the drain grace period."""


class DeadlineExceeded(BatchingError):
    """The request's deadline passed before dispatch or while its batch ran."""


class OutputMismatch(BatchingError):
    """The handler returned a wrong number of outputs; the whole batch fails."""


def _problem(name: str, value: object, low: float, high: float, integer: bool) -> str | None:
    kind = "an integer" if integer else "a number"
    bounds = f"{int(low)}..{int(high)}" if integer else f"{low:g}..{high:g}"
    message = f"{name} must be {kind} in {bounds}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return message
    if integer and not isinstance(value, int):
        return message
    return None if low <= value <= high else message


@dataclass(frozen=True)
class BatchPolicy:
    """How a batcher groups requests. Validated on construction (``ValueError``)."""

    max_batch_size: int = 64
    """Rows per batch (see ``size_of``), 1..1_000_000; a larger single item goes alone."""
    max_batch_delay_s: float = 0.005
    """Longest wait of the oldest queued request while the model is busy, 0..60 s."""
    max_queue: int = 1024
    """Queued items at most, 1..1_000_000; beyond it admission fails with ``QueueFull``."""
    workers: int = 1
    """Batches in flight at most (predict threads), 1..256."""

    def __post_init__(self) -> None:
        problems = [
            _problem("max_batch_size", self.max_batch_size, 1, 1_000_000, True),
            _problem("max_batch_delay_s", self.max_batch_delay_s, 0.0, 60.0, False),
            _problem("max_queue", self.max_queue, 1, 1_000_000, True),
            _problem("workers", self.workers, 1, 256, True),
        ]
        found = [p for p in problems if p is not None]
        if found:
            raise ValueError("invalid batch policy: " + "; ".join(found))


class BatchObserver(Protocol):
    """Metrics hooks; called on the event loop. ``reason`` is drain/full/idle/delay.

    An observer may also define ``on_queue_depth(queue_depth: int)``: it is called when
    the queue shrinks without a dispatch (expiry, cancellation, stop). It is optional
    (looked up by name) so observers written before it keep working.
    """

    def on_admitted(self, queue_depth: int) -> None: ...
    def on_rejected(self) -> None: ...
    def on_expired(self) -> None: ...
    def on_cancelled(self) -> None: ...
    def on_dispatch(
        self,
        size: int,
        items: int,
        reason: str,
        queue_waits_s: Sequence[float],
        queue_depth: int,
    ) -> None: ...
    def on_batch_done(self, duration_s: float, ok: bool) -> None: ...


class NullObserver:
    """A ``BatchObserver`` that records nothing."""

    def on_admitted(self, queue_depth: int) -> None:
        """Ignore an admission."""

    def on_rejected(self) -> None:
        """Ignore a rejection."""

    def on_expired(self) -> None:
        """Ignore an expiry."""

    def on_cancelled(self) -> None:
        """Ignore a cancellation."""

    def on_dispatch(
        self,
        size: int,
        items: int,
        reason: str,
        queue_waits_s: Sequence[float],
        queue_depth: int,
    ) -> None:
        """Ignore a dispatch."""

    def on_batch_done(self, duration_s: float, ok: bool) -> None:
        """Ignore a finished batch."""

    def on_queue_depth(self, queue_depth: int) -> None:
        """Ignore a queue that shrank without a dispatch."""
