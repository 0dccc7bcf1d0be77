"""Request bodies to ``Decoded``: JSON parsing and codec validation, off the loop when large.

A small body (the common one-row request is ~100 bytes) is parsed and validated on
the event loop: handing it elsewhere would cost more than the work. A large one is
not, because ``orjson.loads`` and numpy's list conversion are single C calls that
hold the GIL for their whole run (measured here: 0.4 s to parse and 0.8 s to
validate an 8 MiB nested V2 body), so a thread would stall the loop just the same.
Large bodies therefore go to one worker process, and only the decoded columns (a few
numpy arrays, cheap to unpickle) come back. The process is started on the first
large body (``python -m serving`` starts it before serving) and restarted if it dies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson

from serving.protocol import (
    ColumnSpec,
    Decoded,
    ProtocolError,
    TooManyRows,
    decode_mlflow_request,
    decode_v2_request,
)

#: Bodies up to this size are decoded on the event loop (about 3 ms at the measured
#: ~170 ns per byte of nested V2 JSON); larger ones in the decoding process.
INLINE_DECODE_BYTES = 16 * 1024

#: A codec: (body, signature columns, output names) -> ``Decoded``; raises ``ProtocolError``.
BodyCodec = Callable[[bytes, Sequence[ColumnSpec], Sequence[str]], Decoded]


def parse_json(body: bytes) -> Any:
    """Parse ``body`` as JSON; ``ProtocolError`` naming the position if it is malformed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"malformed JSON body: {exc}") from None


def decode_v2(body: bytes, columns: Sequence[ColumnSpec], output_names: Sequence[str]) -> Decoded:
    """Parse and decode a V2 inference request body (see ``decode_v2_request``)."""
    return decode_v2_request(parse_json(body), columns, output_names)


def decode_mlflow(
    body: bytes, columns: Sequence[ColumnSpec], output_names: Sequence[str]
) -> Decoded:
    """Parse and decode an MLflow ``/invocations`` body (see ``decode_mlflow_request``)."""
    return decode_mlflow_request(parse_json(body), columns)


def decode_limited(
    codec: BodyCodec,
    body: bytes,
    columns: Sequence[ColumnSpec],
    output_names: Sequence[str],
    max_rows: int,
) -> Decoded:
    """Run ``codec`` and refuse a result of more than ``max_rows`` rows (``TooManyRows``).

    Checked where the decoding ran, so that a refused request's columns never travel
    back from the decoding process.
    """
    decoded = codec(body, columns, output_names)
    if decoded.rows > max_rows:
        raise TooManyRows(
            f"request has {decoded.rows} rows; at most {max_rows} are accepted per request "
            "(--max-rows-per-request): split it"
        )
    return decoded


def _ignore_signals() -> None:
    # The service handles SIGTERM/SIGINT (drain); a terminal's Ctrl-C reaches the whole
    # process group, and the decoder must not die of it with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class BodyDecoder:
    """Runs a ``BodyCodec`` inline for small bodies and in a worker process for large ones.

    ``inline_bytes`` is the largest body decoded on the loop (default
    ``INLINE_DECODE_BYTES``). Large bodies are decoded one at a time, in arrival order.
    """

    def __init__(self, inline_bytes: int = INLINE_DECODE_BYTES) -> None:
        self.inline_bytes = inline_bytes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def decode(
        self,
        codec: BodyCodec,
        body: bytes,
        columns: Sequence[ColumnSpec],
        output_names: Sequence[str],
        max_rows: int,
    ) -> Decoded:
        """Return ``codec(body, columns, output_names)``, computed off the loop if large.

        Raises the codec's ``ProtocolError``, ``TooManyRows`` above ``max_rows``;
        ``RuntimeError`` if the decoding process died (it is restarted for the next
        request).
        """
        if len(body) <= self.inline_bytes:
            return decode_limited(codec, body, columns, output_names, max_rows)
        pool = self.start()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                pool, decode_limited, codec, body, tuple(columns), tuple(output_names), max_rows
            )
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError("the decoding process died") from None

    def start(self) -> concurrent.futures.ProcessPoolExecutor:
        """Start the decoding process if it is not running (idempotent); return its pool.

        ``python -m serving`` calls it before serving, so that the first large body
        does not wait for the process to start (measured: a 209 ms health-probe delay
        on a first large body when started then).
        """
        if self._pool is None:
            # spawn, not fork: the service runs threads (predict, log writer) by now.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_signals,
            )
            self._pool.submit(parse_json, b"{}")  # starts the process and its imports
        return self._pool

    def close(self) -> None:
        """Stop the decoding process, if one was started (idempotent)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False, cancel_futures=True)
