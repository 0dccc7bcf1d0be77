"""The service's flags: each one's attribute of ``Settings``, its converter and its help.

A converter takes the raw string (from the command line or the ``SERVING_*`` variable)
and returns the value or raises ``ValueError`` saying what is allowed; ``settings``
turns that into one line naming the flag or variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be an integer in {lo}..{hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be an integer in {lo}..{hi}")
        return value

    return convert


def _float_in(lo: float, hi: float) -> Callable[[str], float]:
    def convert(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"must be a number in {lo:g}..{hi:g}") from None
        if not lo <= value <= hi:  # also rejects nan
            raise ValueError(f"must be a number in {lo:g}..{hi:g}")
        return value

    return convert


def _auto_or(convert: Callable[[str], int]) -> Callable[[str], int | None]:
    def parse(raw: str) -> int | None:
        if raw.strip().lower() == "auto":
            return None
        try:
            return convert(raw)
        except ValueError as exc:
            raise ValueError(f"{exc}, or auto") from None

    return parse


def _host(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be a host name or IP address, e.g. 127.0.0.1 or 0.0.0.0")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


#: ``--drift-thresholds`` keys and the ``serving.drift.Thresholds`` field each sets.
DRIFT_THRESHOLD_KEYS = {
    "ks": "ks_p",
    "ad": "ad_p",
    "wasserstein": "wasserstein",
    "js": "jensen_shannon",
    "mean": "mean_shift",
}


def _drift_thresholds(raw: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, _, value = part.partition("=")
        if key not in DRIFT_THRESHOLD_KEYS:
            raise ValueError(
                f"{part!r}: expected KEY=NUMBER, KEY one of {', '.join(DRIFT_THRESHOLD_KEYS)}"
            )
        number = _float_in(1e-9, 1e6)(value)
        out[DRIFT_THRESHOLD_KEYS[key]] = number
    return out


#: (flag, ``Settings`` attribute, converter, help); the variable is derived from the flag.
OPTIONS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--host", "host", _host, "address to bind (default 127.0.0.1)"),
    ("--port", "port", _int_in(1, 65535), "TCP port (default 8080)"),
    ("--max-batch-size", "max_batch_size", _int_in(1, 4096), "rows per batch (default 64)"),
    (
        "--max-batch-delay-ms",
        "max_batch_delay_ms",
        _float_in(0.0, 10_000.0),
        "max wait of the oldest queued request for a fuller batch (default 5)",
    ),
    ("--max-queue", "max_queue", _int_in(1, 1_000_000), "queued requests per model (default 1024)"),
    ("--workers", "workers", _int_in(1, 64), "predict threads per model (default 1)"),
    (
        "--predict-processes",
        "predict_processes",
        _auto_or(_int_in(0, 64)),
        "predict processes per model, or auto: the CPUs the container may use (default 0: none)",
    ),
    (
        "--max-body-bytes",
        "max_body_bytes",
        _int_in(1, 1024**3),
        "largest request body (default 8388608)",
    ),
    (
        "--request-timeout-ms",
        "request_timeout_ms",
        _int_in(1, 600_000),
        "default request deadline (default 10000)",
    ),
    (
        "--drain-timeout-s",
        "drain_timeout_s",
        _float_in(0.0, 3600.0),
        "grace period for in-flight work on SIGTERM (default 25)",
    ),
    (
        "--max-connections",
        "max_connections",
        _int_in(1, 100_000),
        "open connections at most; beyond, 503 and close (default 1024)",
    ),
    (
        "--max-header-bytes",
        "max_header_bytes",
        _int_in(1024, 1024**2),
        "request line plus headers at most; 431 above (default 65536)",
    ),
    (
        "--header-timeout-s",
        "header_timeout_s",
        _float_in(0.1, 600.0),
        "time to send a complete request head (default 10)",
    ),
    (
        "--max-rows-per-request",
        "max_rows_per_request",
        _int_in(1, 10_000_000),
        "rows one request may carry; 413 above (default 10000)",
    ),
    (
        "--body-timeout-s",
        "body_timeout_s",
        _float_in(0.1, 600.0),
        "longest wait for the next part of a request body (default 10)",
    ),
    ("--max-explain-rows", "max_explain_rows", _int_in(1, 10_000), "explain rows cap (100)"),
    ("--drift-window-rows", "drift_window_rows", _int_in(0, 1_000_000), "drift window (2000)"),
    ("--drift-interval-s", "drift_interval_s", _float_in(1.0, 86_400.0), "drift checks (60)"),
    ("--drift-min-rows", "drift_min_rows", _int_in(10, 1_000_000), "rows for a verdict (200)"),
    ("--drift-votes", "drift_votes", _int_in(1, 5), "drift tests that must agree (3)"),
    (
        "--drift-thresholds",
        "drift_thresholds",
        _drift_thresholds,
        "ks=0.05,ad=0.05,wasserstein=0.1,js=0.1,mean=0.25 (any subset)",
    ),
    (
        "--refusal-delay-ms",
        "refusal_delay_ms",
        _int_in(0, 10_000),
        "hold a 404/429 shed at the request head this long before writing it (default 250)",
    ),
    ("--log-level", "log_level", _log_level, "debug, info, warning or error (default info)"),
    (
        "--access-log",
        "access_log",
        _bool,
        "one JSON log line per request: true/false (default true)",
    ),
)
