"""The batcher's errors; ``str(e)`` of each is safe to show to a client."""

from __future__ import annotations


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


class WorkerDied(BatchingError):
    """The process predicting a batch died; only that batch fails (it is not retried)."""
