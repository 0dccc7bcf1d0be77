"""Command-line flags and ``SERVING_*`` environment variables, validated into ``Settings``.

Every flag has an environment twin: ``--max-batch-size`` is ``SERVING_MAX_BATCH_SIZE``;
the repeated ``--model NAME=URI`` is ``SERVING_MODELS=a=uri,b=uri``. A flag given on
the command line overrides the environment; the environment overrides the default.
A bad value raises ``SettingsError`` with one line naming the flag or variable and
what is allowed (``python -m serving`` prints it and exits 2).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A flag or environment variable holds a value that is not allowed (one-line message)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: the name clients use and where MLflow loads it from."""

    name: str
    uri: str


@dataclass(frozen=True)
class Settings:
    """Validated service settings; defaults are the ones documented for each flag."""

    models: tuple[ModelSpec, ...]
    """Models to serve, in order; the first is the default for ``/invocations``."""
    ensembles: tuple[str, ...] = ()
    """``--ensemble`` values, each checked by ``serving.ensemble.parse_ensemble``."""
    host: str = "127.0.0.1"
    """Address to bind; the container image passes ``0.0.0.0``."""
    port: int = 8080
    """TCP port, 1..65535."""
    max_batch_size: int = 64
    """Rows per batch, 1..4096."""
    max_batch_delay_ms: float = 5.0
    """How long the oldest queued request may wait for a batch to fill, 0..10000 ms."""
    max_queue: int = 1024
    """Queued requests per model before admission fails with 429, 1..1000000."""
    workers: int = 1
    """Predict threads per model (batches in flight), 1..64."""
    predict_processes: int | None = 0
    """Predict processes per model, 0..64 (0: predict in the service's own process);
    None (``auto``): the CPUs the container may use (``serving.workers.usable_cpus``)."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted (413 above it), 1 B..1 GiB."""
    request_timeout_ms: int = 10_000
    """Default per-request deadline when ``X-Request-Timeout-Ms`` is absent, 1..600000 ms."""
    drain_timeout_s: float = 25.0
    """On SIGTERM, how long in-flight work may take to finish, 0..3600 s."""
    max_connections: int = 1024
    """Open connections at most, 1..100000; a new one beyond is answered 503 and closed."""
    max_header_bytes: int = 65536
    """Request line plus headers at most, 1 KiB..1 MiB; 431 above it."""
    header_timeout_s: float = 10.0
    """Time to send a complete request head (from connect or the previous answer), 0.1..600 s."""
    max_rows_per_request: int = 10_000
    """Rows one request may carry, 1..10000000 (413 above it); larger requests are
    predicted in batches of ``max_batch_size`` rows, interleaved with other requests."""
    body_timeout_s: float = 10.0
    """Longest wait for the next part of a request body (408 beyond it), 0.1..600 s."""
    max_explain_rows: int = 100
    """Rows one explain request may carry, 1..10000 (413 above it)."""
    drift_window_rows: int = 2000
    """Rows of each model's sliding drift window, 0..1000000 (0: drift is not checked)."""
    drift_interval_s: float = 60.0
    """Seconds between drift checks, 1..86400."""
    drift_min_rows: int = 200
    """Fewest rows in the window for a drift verdict, 10..1000000."""
    drift_votes: int = 3
    """Drift tests (of five) that must agree, 1..5."""
    drift_thresholds: Mapping[str, float] = field(default_factory=dict)
    """Overrides of the drift tests' thresholds (``serving.drift.Thresholds``)."""
    refusal_delay_ms: int = 250
    """How long a 404 or 429 shed at the request head is held before it is written,
    0..10000 ms: clients retrying at once are paced instead of taking the CPU."""
    log_level: str = "info"
    """One of debug, info, warning, error."""
    access_log: bool = True
    """Log one JSON line per request (uvicorn's own access log stays off)."""


# (flag, attribute, converter, help). The env variable is derived from the flag.
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


_OPTIONS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
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


def env_name(flag: str) -> str:
    """Return the environment variable for a flag: ``--max-queue`` -> ``SERVING_MAX_QUEUE``."""
    return "SERVING_" + flag.lstrip("-").replace("-", "_").upper()


class _Parser(argparse.ArgumentParser):
    # argparse prints usage and exits on its own; we want one line and a typed error.
    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``python -m serving`` (values are parsed as strings)."""
    parser = _Parser(
        prog="python -m serving",
        description="Serve MLflow models over the Open Inference Protocol with dynamic batching. "
        "Each flag can also be set by environment: --max-queue is SERVING_MAX_QUEUE, "
        "--model is SERVING_MODELS=a=uri,b=uri.",
    )
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME=URI",
        help="model to serve (repeatable; the first is the default for /invocations); URI is "
        "models:/name@alias, models:/name/version or a local path",
    )
    parser.add_argument(
        "--ensemble",
        action="append",
        metavar="NAME=STRATEGY:A,B[;weights=...]",
        help="serve NAME combining --model members: vote, mean, median or weighted "
        "(weights=W,W or weights=tag:TAG); repeatable",
    )
    for flag, _attr, _convert, help_text in _OPTIONS:
        parser.add_argument(flag, help=help_text)
    return parser


def _parse_models(values: Sequence[str], source: str) -> tuple[ModelSpec, ...]:
    specs: list[ModelSpec] = []
    for raw in values:
        name, sep, uri = raw.strip().partition("=")
        name, uri = name.strip(), uri.strip()
        if not sep or not name or not uri:
            raise SettingsError(f"{source}: {raw!r} must be NAME=URI, e.g. iris=models:/iris@prod")
        if not _MODEL_NAME.match(name):
            raise SettingsError(
                f"{source}: model name {name!r} must be 1-128 characters of letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        if any(s.name == name for s in specs):
            raise SettingsError(f"{source}: model name {name!r} is given twice")
        specs.append(ModelSpec(name=name, uri=uri))
    return tuple(specs)


def _ensembles(
    given: Sequence[str] | None, environ: Mapping[str, str], models: Sequence[ModelSpec]
) -> tuple[str, ...]:
    source, values = "--ensemble", list(given or ())
    if not values:
        source, values = "SERVING_ENSEMBLES", environ.get("SERVING_ENSEMBLES", "").split()
    if values:
        from serving.ensemble import parse_ensemble

        for raw in values:
            try:
                parse_ensemble(raw, [m.name for m in models])
            except ValueError as exc:
                raise SettingsError(f"{source}: {exc}") from None
    return tuple(values)


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Parse ``argv`` (without the program name) over ``environ`` into ``Settings``.

    Flags win over ``SERVING_*`` variables, which win over the defaults. At least one
    model is required. Raises ``SettingsError`` with one line naming the offending flag
    or variable and the allowed values.
    """
    args = build_parser().parse_args(list(argv))
    if args.model:
        models = _parse_models(args.model, "--model")
    elif environ.get("SERVING_MODELS", "").strip():
        models = _parse_models(environ["SERVING_MODELS"].split(","), "SERVING_MODELS")
    else:
        raise SettingsError(
            "no model given: pass --model NAME=URI (repeatable) or set SERVING_MODELS=name=uri,..."
        )
    values: dict[str, Any] = {"ensembles": _ensembles(args.ensemble, environ, models)}
    for flag, attr, convert, _help in _OPTIONS:
        raw = getattr(args, attr)
        source = flag
        if raw is None:
            source = env_name(flag)
            raw = environ.get(source)
        if raw is None:
            continue
        try:
            values[attr] = convert(raw)
        except ValueError as exc:
            raise SettingsError(f"{source}={raw!r}: {exc}") from None
    return Settings(models=models, **values)
