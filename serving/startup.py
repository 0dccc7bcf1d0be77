"""Where the time from process start to ready goes, phase by phase.

``StartupClock`` keeps consecutive laps: each ``lap(phase)`` adds the time since the
previous lap (the first lap counts from the process's start, read from the kernel) to
``phase``. The laps therefore cover the whole way to ready with no gap and no
overlap: the phases sum to the total. ``python -m serving`` laps ``imports``, then for
each model ``resolve`` (registry: alias to version), ``download`` (artifacts) and
``load``, then ``workers`` (predict processes, when enabled: each loads the model
itself), ``warm_up`` (one batch per model through its batcher) and ``serve`` (the app,
the batchers and the listener, lapped around the others), logs the report as one ``ready`` line and
exposes it on ``/metrics`` (``serving_startup_phase_seconds``).

Nothing here reads a wall clock: laps come from ``time.monotonic()`` (injectable).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

#: The phases in the order they happen (a phase may be lapped several times, per model).
PHASES = ("imports", "resolve", "download", "load", "workers", "warm_up", "serve")


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: ``/proc/self/stat`` and the boot clock).

    None where the kernel does not say (no ``/proc``, or a field that does not parse).
    """
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        # Field 22 (starttime, in clock ticks since boot), counted after the command
        # name's last ")": that name may hold spaces and parentheses.
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        started = ticks / os.sysconf("SC_CLK_TCK")
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class StartupClock:
    """Consecutive laps from ``origin`` (a ``clock()`` reading) to ready; see the module doc.

    ``origin`` defaults to the process's start (``process_age_s``), or to now where the
    kernel does not tell it.
    """

    def __init__(
        self, origin: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        if origin is None:
            now = clock()
            age = process_age_s()
            origin = now - age if age is not None else now
        self.origin = origin
        self._last = origin
        self.phases: dict[str, float] = {}
        self.total_s: float | None = None

    def lap(self, phase: str) -> float:
        """Add the time since the previous lap to ``phase``; return that time in seconds."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self.phases[phase] = self.phases.get(phase, 0.0) + elapsed
        return elapsed

    def ready(self, phase: str = "serve") -> dict[str, Any]:
        """Close the last lap into ``phase``, fix the total and return ``report()``."""
        self.lap(phase)
        self.total_s = self._last - self.origin
        return self.report()

    def report(self) -> dict[str, Any]:
        """``{"startup_s": total or None, "phases_s": {phase: seconds}}``, rounded to ms."""
        total = None if self.total_s is None else round(self.total_s, 3)
        ordered = sorted(self.phases, key=lambda p: PHASES.index(p) if p in PHASES else 99)
        return {"startup_s": total, "phases_s": {p: round(self.phases[p], 3) for p in ordered}}
