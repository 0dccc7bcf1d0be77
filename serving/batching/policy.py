"""The batcher's policy (batch size, delay, queue bound, workers) and its dispatch reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: Why a batch left the queue (see ``serving.batching.batcher``); metrics label values.
DispatchReason = Literal["drain", "full", "idle", "delay"]
#: Every ``DispatchReason``, in the batcher's order of precedence.
DISPATCH_REASONS: tuple[DispatchReason, ...] = get_args(DispatchReason)


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
