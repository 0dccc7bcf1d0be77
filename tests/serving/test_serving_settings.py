"""Settings: flags, SERVING_* environment, precedence and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from serving.settings import ModelSpec, Settings, SettingsError, env_name, parse_settings

MODEL = ["--model", "a=models:/a@champion"]


def test_defaults_are_secure_and_documented() -> None:
    s = parse_settings(MODEL, {})
    assert s == Settings(models=(ModelSpec("a", "models:/a@champion"),))
    assert s.host == "127.0.0.1"
    assert (s.port, s.max_batch_size, s.max_queue, s.workers) == (8080, 64, 1024, 1)


def test_every_flag_parses() -> None:
    s = parse_settings(
        [*MODEL, "--model", "b=/models/b", "--host", "0.0.0.0", "--port", "9000",
         "--max-batch-size", "16", "--max-batch-delay-ms", "2.5", "--max-queue", "10",
         "--workers", "2", "--max-body-bytes", "1000", "--request-timeout-ms", "250",
         "--drain-timeout-s", "3", "--log-level", "WARNING", "--access-log", "false"],
        {},
    )  # fmt: skip
    assert [m.name for m in s.models] == ["a", "b"]
    assert s.models[1].uri == "/models/b"
    assert (s.host, s.port, s.max_batch_size, s.max_batch_delay_ms) == ("0.0.0.0", 9000, 16, 2.5)
    assert (s.max_queue, s.workers, s.max_body_bytes, s.request_timeout_ms) == (10, 2, 1000, 250)
    assert (s.drain_timeout_s, s.log_level, s.access_log) == (3.0, "warning", False)


def test_environment_sets_values_and_flags_win() -> None:
    env = {
        "SERVING_MODELS": "x=models:/x/3, y=models:/y@prod",
        "SERVING_MAX_BATCH_SIZE": "8",
        "SERVING_MAX_QUEUE": "5",
    }
    s = parse_settings(["--max-queue", "7"], env)
    assert s.models == (ModelSpec("x", "models:/x/3"), ModelSpec("y", "models:/y@prod"))
    assert s.max_batch_size == 8
    assert s.max_queue == 7
    assert parse_settings(MODEL, env).models == (ModelSpec("a", "models:/a@champion"),)


def test_env_name_is_derived_from_the_flag() -> None:
    assert env_name("--max-batch-delay-ms") == "SERVING_MAX_BATCH_DELAY_MS"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "no model given"),
        (["--model", "nouri"], {}, "--model: 'nouri' must be NAME=URI"),
        (["--model", "bad name=x"], {}, "model name 'bad name'"),
        (["--model", "a=x", "--model", "a=y"], {}, "'a' is given twice"),
        ([], {"SERVING_MODELS": "a=x,=y"}, "SERVING_MODELS: '=y' must be NAME=URI"),
        ([*MODEL, "--port", "0"], {}, r"--port='0': must be an integer in 1\.\.65535"),
        ([*MODEL, "--max-batch-size", "many"], {}, "--max-batch-size='many': must be an integer"),
        ([*MODEL], {"SERVING_WORKERS": "0"}, r"SERVING_WORKERS='0': must be an integer in 1\.\.64"),
        ([*MODEL, "--max-batch-delay-ms", "nan"], {}, "--max-batch-delay-ms='nan': must be a"),
        ([*MODEL, "--drain-timeout-s", "-1"], {}, "--drain-timeout-s='-1'"),
        ([*MODEL, "--refusal-delay-ms", "-5"], {}, r"--refusal-delay-ms='-5': must be an int"),
        ([*MODEL, "--log-level", "loud"], {}, "--log-level='loud': must be one of debug"),
        ([*MODEL], {"SERVING_ACCESS_LOG": "maybe"}, "SERVING_ACCESS_LOG='maybe': must be true"),
        ([*MODEL, "--host", ""], {}, "--host='': must be a host name"),
        ([*MODEL, "--frobnicate"], {}, "unrecognized arguments: --frobnicate"),
    ],
)  # fmt: skip
def test_bad_values_raise_one_line_naming_the_source(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        parse_settings(argv, env)
    assert "\n" not in str(info.value)


def test_cli_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving", "--model", "a=x", "--max-queue", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--max-queue='0'" in lines[0]


def test_refusal_delay_defaults_to_250_ms_and_may_be_turned_off() -> None:
    assert parse_settings(MODEL, {}).refusal_delay_ms == 250
    assert parse_settings(MODEL, {"SERVING_REFUSAL_DELAY_MS": "0"}).refusal_delay_ms == 0
