"""Predict in worker processes: ``--predict-processes N`` separate processes per model.

Why: predict holds the GIL, so in one process the event loop and predict share one
core; in worker processes they use every core the pod may use. The batcher keeps
owning the policy (batch size, delay, deadlines, cancellation, bisection, drain): a
batcher thread hands a batch to an idle worker and waits on its pipe, which releases
the GIL. A batch travels as its items' columns, pickled with protocol 5 and their
numpy buffers sent out of band (one copy into the pipe, no per-row Python objects);
the predictions come back the same way.

A worker loads the model itself (``Model.loader``) and runs one warm-up predict
before it reports ready. A worker that dies fails only the batch it was running
(``WorkerDied``, answered 503) and is restarted in the background; ``deaths`` tells
liveness how often that happened recently. ``close`` lets running batches finish
(the drain has waited for them) and stops every worker.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import struct
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from serving.batching import WorkerDied
from serving.model import Model, ModelLoadError, PreparedItem
from serving.protocol import Prediction

log = logging.getLogger("serving")
#: How long a worker may take to load its model and run the warm-up predict.
START_TIMEOUT_S = 300.0
#: How long ``close`` waits for a worker to exit before it is killed.
STOP_TIMEOUT_S = 2.0
_COUNT = struct.Struct("<I")


def usable_cpus() -> int:
    """CPUs this process may use: the cgroup's CPU quota if set, else its CPU affinity.

    A container limited to ``cpu: 1500m`` reads ``150000 100000`` from ``cpu.max`` and
    gets 2 (rounded up); without a quota, the CPUs the scheduler lets it run on.
    """
    cpus = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    return max(1, cpus)


def _send(conn: Connection, message: Any) -> None:
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    conn.send_bytes(_COUNT.pack(len(buffers)) + head)
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


def _recv(conn: Connection) -> Any:
    first = conn.recv_bytes()
    (count,) = _COUNT.unpack_from(first)
    buffers = [conn.recv_bytes() for _ in range(count)]
    return pickle.loads(memoryview(first)[_COUNT.size :], buffers=buffers)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it pickles (and unpickles), else a plain error of the same kind of text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        kind = ValueError if isinstance(exc, ValueError | TypeError) else RuntimeError
        return kind(f"{type(exc).__name__}: {exc}")


def _worker_main(conn: Connection, loader: Callable[[], Model]) -> None:
    # The service handles SIGTERM/SIGINT (drain) and then closes the pipe; a terminal's
    # Ctrl-C reaches the whole process group and must not kill a worker mid-batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        model = loader()
        warm_up = getattr(model, "warm_up", None)
        if warm_up is not None:
            with contextlib.suppress(Exception):  # a model may refuse neutral values
                warm_up()
    except BaseException as exc:
        _send(conn, ("failed", f"{type(exc).__name__}: {exc}"))
        return
    _send(conn, ("ready", None))
    while True:
        try:
            batch = _recv(conn)
        except (EOFError, OSError):
            return  # the service closed the pipe (or died): nothing more to do
        if batch is None:
            return
        try:
            result: Any = ("ok", model.predict_batch([PreparedItem(c, r) for c, r in batch]))
        except BaseException as exc:
            result = ("error", _portable(exc))
        _send(conn, result)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, index: int, loader: Callable[[], Model]) -> None:
        self.index = index
        parent, child = multiprocessing.Pipe(duplex=True)
        # spawn, not fork: the service runs threads (predict, log writer) by now.
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(
            target=_worker_main, args=(child, loader), name=f"predict-{index}", daemon=True
        )
        self.process.start()
        child.close()
        self.conn = parent

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for the worker's model to load; ``ModelLoadError`` if it fails or times out."""
        if not self.conn.poll(timeout_s):
            self.kill()
            raise ModelLoadError(f"predict worker {self.index} not ready after {timeout_s:g}s")
        try:
            status, detail = _recv(self.conn)
        except (EOFError, OSError):
            status, detail = "failed", f"exited with code {self.exit_code()}"
        if status != "ready":
            self.kill()
            raise ModelLoadError(f"predict worker {self.index} cannot load the model: {detail}")

    def exit_code(self) -> int | None:
        self.process.join(0.5)
        return self.process.exitcode

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Ask the worker to exit, then make sure it did."""
        with contextlib.suppress(OSError):
            _send(self.conn, None)
        self.process.join(STOP_TIMEOUT_S)
        self.kill()

    def rss_bytes(self) -> int | None:
        """Resident memory of the worker process (Linux ``/proc``), None if it is gone."""
        try:
            with open(f"/proc/{self.process.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None


class WorkerPool:
    """``processes`` worker processes predicting for the model ``name`` (see the module doc).

    ``loader`` builds the model in a worker; it must be picklable (a module-level
    function or a ``functools.partial`` of one). ``predict_batch`` is the batcher's
    handler: it blocks its (batcher) thread until an idle worker has run the batch.
    """

    def __init__(self, name: str, loader: Callable[[], Model], processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.name = name
        self.processes = processes
        self._loader = loader
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: dict[int, _Worker] = {}
        self._lock = threading.Lock()
        self._deaths: collections.deque[float] = collections.deque(maxlen=64)
        self._closed = False
        self._started = False

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start every worker and wait until each has loaded the model (idempotent).

        Blocking: call it off the event loop. Raises ``ModelLoadError`` if a worker
        cannot load the model (the others are stopped).
        """
        if self._started:
            return
        self._started = True
        workers = [_Worker(i, self._loader) for i in range(self.processes)]
        try:
            for worker in workers:
                worker.wait_ready(timeout_s)
        except ModelLoadError as exc:
            for worker in workers:
                worker.kill()
            raise ModelLoadError(f"model {self.name!r}: {exc}") from None
        for worker in workers:
            self._workers[worker.index] = worker
            self._idle.put(worker)

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        """Run ``items`` on an idle worker; raise ``WorkerDied`` if it dies meanwhile.

        Raises the model's own exception (carried back from the worker) otherwise.
        """
        worker = self._idle.get()
        batch = [(item.columns, item.rows) for item in items]
        try:
            _send(worker.conn, batch)
            status, value = _recv(worker.conn)
        except (EOFError, OSError):
            self._died(worker)
            raise WorkerDied(
                f"model {self.name!r} predict worker {worker.index} died "
                f"(exit code {worker.exit_code()}); it is being restarted"
            ) from None
        self._idle.put(worker)
        if status == "error":
            raise value
        return value

    def _died(self, worker: _Worker) -> None:
        self._deaths.append(time.monotonic())
        log.error(
            "predict worker died",
            extra={"model": self.name, "worker": worker.index, "exit_code": worker.exit_code()},
        )
        worker.kill()
        thread = threading.Thread(
            target=self._restart, args=(worker.index,), name=f"restart-{self.name}", daemon=True
        )
        thread.start()

    def _restart(self, index: int) -> None:
        while not self._closed:
            worker = _Worker(index, self._loader)
            try:
                worker.wait_ready(START_TIMEOUT_S)
            except ModelLoadError as exc:
                log.error(
                    "predict worker restart failed", extra={"model": self.name, "error": str(exc)}
                )
                time.sleep(1.0)
                continue
            with self._lock:
                if self._closed:
                    worker.stop()
                    return
                self._workers[index] = worker
            self._idle.put(worker)
            log.info("predict worker restarted", extra={"model": self.name, "worker": index})
            return

    def deaths(self, window_s: float) -> int:
        """How many workers died in the last ``window_s`` seconds."""
        since = time.monotonic() - window_s
        return sum(1 for at in self._deaths if at >= since)

    def memory(self) -> dict[int, int]:
        """Resident bytes of each live worker, by worker index."""
        rss = {i: w.rss_bytes() for i, w in list(self._workers.items())}
        return {i: r for i, r in rss.items() if r is not None}

    def close(self) -> None:
        """Stop every worker (idempotent); blocking, call it off the loop after the drain."""
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop()


def worker_pools(models: Sequence[Model], processes: int | None) -> dict[str, WorkerPool]:
    """A pool of ``processes`` predict processes for each model that can be loaded in
    one (``--predict-processes``; None, ``auto``, is ``usable_cpus()``). 0 predicts in
    the service's process, and so does a model without a ``loader`` (an in-memory one or
    an ensemble)."""
    if processes is None:
        processes = usable_cpus()
    pools = {}
    for m in models:
        loader = getattr(m, "loader", None)
        if processes > 0 and loader is not None:
            pools[m.name] = WorkerPool(m.name, loader, processes)
    return pools
