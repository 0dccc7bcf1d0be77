"""Unit tests of the connection limits: the rate-limited log, raw answers, uvicorn's internals."""

from __future__ import annotations

import json
import logging

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from serving.connections import (
    ConnectionLimits,
    GuardedHttpToolsProtocol,
    RateLimitedLog,
    error_bytes,
    guarded_protocol,
)
from serving.settings import parse_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limited_log_logs_once_per_interval_with_what_it_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    refusals = RateLimitedLog(interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="serving"):
        assert refusals.warning("connection refused", limit=5)
        assert not refusals.warning("connection refused", limit=5)
        assert refusals.warning("request head too large")  # another kind: its own interval
        clock.now += 9.9
        assert not refusals.warning("connection refused", limit=5)
        clock.now += 0.1
        assert refusals.warning("connection refused", limit=5)
    logged = [(r.getMessage(), getattr(r, "suppressed", None)) for r in caplog.records]
    assert logged == [
        ("connection refused", 0),
        ("request head too large", 0),
        ("connection refused", 2),
    ]


def test_error_bytes_is_a_complete_closing_json_answer() -> None:
    raw = error_bytes(431, "too large")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"content-type: application/json" in head and b"connection: close" in head
    assert b"content-length: %d" % len(body) in head
    assert json.loads(body) == {"error": "too large"}


def test_guarded_protocol_binds_its_own_limits_and_counters() -> None:
    limits = ConnectionLimits(max_connections=3, max_header_bytes=2048, header_timeout_s=0.5)
    a, b = guarded_protocol(limits), guarded_protocol(ConnectionLimits())
    assert issubclass(a, GuardedHttpToolsProtocol) and a.limits == limits
    assert b.limits == ConnectionLimits() and a.refusals is not b.refusals


def test_uvicorn_protocol_internals_the_guard_relies_on_exist() -> None:
    # serving.connections overrides or reads these; an uvicorn upgrade that renames one
    # must fail here, in one place, not as a silent loss of a limit.
    for method in ("connection_made", "connection_lost", "data_received", "send_400_response",
                   "on_headers_complete", "on_message_complete", "on_response_complete",
                   "_unset_keepalive_if_required", "_unsupported_upgrade_warning"):  # fmt: skip
        assert callable(getattr(HttpToolsProtocol, method)), method
    init = HttpToolsProtocol.__init__.__code__.co_names
    for attr in ("connections", "parser", "loop", "pipeline", "cycle"):
        assert attr in init, attr
    cycle = RequestResponseCycle.__init__.__code__.co_names
    assert {"disconnected", "message_event", "response_complete"} <= set(cycle)


def test_connection_flags_parse_with_documented_defaults() -> None:
    model = ["--model", "a=models:/a@champion"]
    s = parse_settings(model, {})
    assert (s.max_connections, s.max_header_bytes, s.header_timeout_s) == (1024, 65536, 10.0)
    s = parse_settings(
        [*model, "--max-connections", "10", "--max-header-bytes", "4096"],
        {"SERVING_HEADER_TIMEOUT_S": "2.5"},
    )
    assert (s.max_connections, s.max_header_bytes, s.header_timeout_s) == (10, 4096, 2.5)


def test_too_few_descriptors_for_max_connections_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    from serving.__main__ import _ensure_descriptors
    from serving.settings import SettingsError

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    raised: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda _which, limits: raised.append(limits))
    _ensure_descriptors(1024)  # needs 2 x 1024 + 256: the soft limit is raised
    assert raised == [(2304, 4096)]
    with pytest.raises(SettingsError, match="--max-connections=5000 needs 10256 file descriptors"):
        _ensure_descriptors(5000)


def test_uvicorn_protocol_internals_shedding_relies_on_exist() -> None:
    # serving.shedding reads or overrides these as well.
    for method in ("on_body", "shutdown", "on_message_begin"):
        assert callable(getattr(HttpToolsProtocol, method)), method
    init = HttpToolsProtocol.__init__.__code__.co_names
    for attr in ("flow", "server_state", "root_path", "headers"):
        assert attr in init, attr
    assert "url" in HttpToolsProtocol.on_message_begin.__code__.co_names
    assert "FlowControl" in HttpToolsProtocol.connection_made.__code__.co_names
