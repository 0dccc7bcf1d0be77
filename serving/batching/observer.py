"""The batcher's metrics hooks: ``BatchObserver``, one real method per event.

Every hook is a method of the base class (a no-op there), so an observer overrides the
ones it records and pyright checks each call's name and arguments. The batcher calls
them through ``SafeObserver``, which keeps a failing hook from breaking batching.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from serving.batching.policy import DispatchReason

log = logging.getLogger("serving.batching")


class BatchObserver:
    """Metrics hooks, called on the event loop; each default records nothing."""

    def on_admitted(self, queue_depth: int) -> None:
        """A request entered the queue; ``queue_depth`` counts it."""

    def on_rejected(self) -> None:
        """Admission refused because the queue was full."""

    def on_expired(self) -> None:
        """A request's deadline passed before or while its batch ran."""

    def on_cancelled(self) -> None:
        """The client went away; the request left the queue or its result was dropped."""

    def on_dispatch(
        self,
        size: int,
        items: int,
        reason: DispatchReason,
        queue_waits_s: Sequence[float],
        queue_depth: int,
    ) -> None:
        """A batch of ``items`` requests (``size`` rows) left the queue for ``reason``."""

    def on_batch_done(self, duration_s: float, ok: bool) -> None:
        """A batch finished after ``duration_s``; ``ok`` if no request of it failed."""

    def on_queue_depth(self, queue_depth: int) -> None:
        """The queue shrank without a dispatch (expiry, cancellation, stop)."""


#: An observer that records nothing.
NullObserver = BatchObserver


class _Guard:
    """Logs and swallows what a hook raises (a class, not ``contextmanager``: it is per call)."""

    __slots__ = ("hook",)

    def __init__(self, hook: str) -> None:
        self.hook = hook

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        log.error("batch observer hook %s failed", self.hook, exc_info=exc)
        return True


class SafeObserver(BatchObserver):
    """Forwards every hook to ``inner``, logging (never raising) what a hook raises."""

    def __init__(self, inner: BatchObserver) -> None:
        self._inner = inner

    def on_admitted(self, queue_depth: int) -> None:
        """Forward ``on_admitted``."""
        with _Guard("on_admitted"):
            self._inner.on_admitted(queue_depth)

    def on_rejected(self) -> None:
        """Forward ``on_rejected``."""
        with _Guard("on_rejected"):
            self._inner.on_rejected()

    def on_expired(self) -> None:
        """Forward ``on_expired``."""
        with _Guard("on_expired"):
            self._inner.on_expired()

    def on_cancelled(self) -> None:
        """Forward ``on_cancelled``."""
        with _Guard("on_cancelled"):
            self._inner.on_cancelled()

    def on_dispatch(
        self,
        size: int,
        items: int,
        reason: DispatchReason,
        queue_waits_s: Sequence[float],
        queue_depth: int,
    ) -> None:
        """Forward ``on_dispatch``."""
        with _Guard("on_dispatch"):
            self._inner.on_dispatch(size, items, reason, queue_waits_s, queue_depth)

    def on_batch_done(self, duration_s: float, ok: bool) -> None:
        """Forward ``on_batch_done``."""
        with _Guard("on_batch_done"):
            self._inner.on_batch_done(duration_s, ok)

    def on_queue_depth(self, queue_depth: int) -> None:
        """Forward ``on_queue_depth``."""
        with _Guard("on_queue_depth"):
            self._inner.on_queue_depth(queue_depth)
