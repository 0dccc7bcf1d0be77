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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from serving.flags import OPTIONS

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
    for flag, _attr, _convert, help_text in OPTIONS:
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
    for flag, attr, convert, _help in OPTIONS:
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
