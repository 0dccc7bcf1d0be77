"""``python -m serving``: load the models, then serve them with uvicorn until SIGTERM.

Shutdown order on SIGTERM/SIGINT (uvicorn's own handling would close the listener
first): readiness turns 503 and admission stops at once (new requests get 503
``draining``), the queues are flushed, in-flight requests finish within
``--drain-timeout-s``, and only then does uvicorn close the listener and exit 0.
A second signal forces an immediate exit.

Exit status: 0 after a drain, 1 if a model cannot be loaded or the port cannot be
bound, or after a second signal (work was abandoned), 2 for a bad flag or
environment variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Generator, Sequence

import uvicorn

from serving.connections import ConnectionLimits
from serving.logs import configure_logging
from serving.settings import Settings, SettingsError, parse_settings
from serving.startup import StartupClock

log = logging.getLogger("serving")


class _Server(uvicorn.Server):
    """uvicorn's server with its signal capture disabled: we order the shutdown ourselves."""

    #: Set by a second signal: the process exits without finishing the drain.
    abandoned = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        from serving.listener import stop_accepting

        await stop_accepting(self.servers)  # no reset for connections already queued
        await super().shutdown(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # models loaded, batchers running, listener open
            log.info("serving", extra={"host": self.config.host, "port": self.config.port})


async def _serve(server: _Server) -> None:
    from serving.service import ServiceState

    loop = asyncio.get_running_loop()
    state: ServiceState = server.config.app.state.service  # type: ignore[attr-defined]
    tasks: set[asyncio.Task[None]] = set()

    async def drain_then_exit() -> None:
        try:
            await state.drain()
        finally:
            server.should_exit = True

    def on_signal(signum: int) -> None:
        if tasks or server.should_exit:
            log.warning("second signal: exiting now", extra={"signal": signum})
            server.should_exit = server.force_exit = True
            server.abandoned = True
            return
        log.info("signal received: draining", extra={"signal": signum})
        task = loop.create_task(drain_then_exit())
        tasks.add(task)  # keep a reference; the set is cleared only at exit

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await server.serve()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


#: Descriptors kept beside the connections: refused ones lingering (up to as many
#: again), the listener, log and model files, the decoding process's pipes.
_FD_RESERVE = 256


def _ensure_descriptors(max_connections: int) -> None:
    """Raise the soft open-file limit so ``max_connections`` cannot exhaust descriptors.

    Raises ``SettingsError`` if the hard limit is too low for ``--max-connections``.
    """
    needed = 2 * max_connections + _FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SettingsError(
            f"--max-connections={max_connections} needs {needed} file descriptors, the "
            f"process may open {hard} (ulimit -n); lower --max-connections or raise the limit"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def build_server(settings: Settings, startup: StartupClock) -> _Server:
    """Load every model in ``settings`` and wrap the app in a uvicorn server (not started).

    Laps ``startup`` for each model's phases; the warm-up batch runs once the server
    has started (``ServiceState.start``). Raises ``serving.model.ModelLoadError`` if a
    model cannot be loaded.
    """
    from serving.app import create_app
    from serving.model import load_model
    from serving.shedding import shedding_protocol

    startup.lap("imports")
    models = []
    for spec in settings.models:
        log.info("loading model", extra={"model": spec.name, "uri": spec.uri})
        model = load_model(spec.name, spec.uri, startup)
        log.info("model loaded", extra={"model": model.name, "version": model.version})
        models.append(model)
    app = create_app(models, settings, startup=startup)
    app.state.service.decoder.start()
    # MLflow, pandas and the models leave ~350,000 long-lived objects; a full
    # collection scanning them stalled every request for 0.3-0.8 s under load (p99).
    # Freezing them moves them out of the collector's sight; new garbage is still
    # collected as usual.
    gc.collect()
    gc.freeze()
    limits = ConnectionLimits(
        max_connections=settings.max_connections,
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=shedding_protocol(limits, app.state.service),
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        # Nothing reads the client's address (the access log does not log it), so the
        # X-Forwarded-For rewrite of every request's scope would be work for nobody.
        proxy_headers=False,
        # Our drain has already waited for in-flight work; this only bounds the close.
        timeout_graceful_shutdown=5,
    )
    return _Server(config)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service; return the process exit status (see the module doc)."""
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"python -m serving: error: {exc}", file=sys.stderr)
        return 2
    try:
        _ensure_descriptors(settings.max_connections)
    except SettingsError as exc:
        print(f"python -m serving: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    # A production server makes no outbound calls of its own; users may opt back in.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    startup = StartupClock()
    # Imported here, in the ``imports`` lap: loading a model needs them anyway.
    import mlflow.pyfunc  # noqa: F401

    from serving.model import ModelLoadError

    try:
        server = build_server(settings, startup)
    except ModelLoadError as exc:
        log.error("cannot load model", extra={"error": str(exc)})
        return 1
    loop_factory = server.config.get_loop_factory()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(server))
    if server.abandoned:
        return 1
    return 0 if server.started or server.should_exit else 1


if __name__ == "__main__":
    raise SystemExit(main())
