"""The SLO rules: valid for ``promtool``, and each alert fires on the data it is for.

``promtool test rules`` runs every alert against series written here: one case that
must fire (with its labels and rendered annotations, runbook URL included) and at
least one that must not. promtool is Debian's ``prometheus`` package; without it the
tests fail with one line, they never skip.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.services.observability_rules import (
    BURN_RATE_ALERTS,
    RUNBOOKS,
    SloTargets,
    rules_yaml,
    slo_rule_groups,
)
from tests.binaries import binary

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK_BASE = "https://github.com/mlplatform/mlplatform/blob/main/docs/runbooks"
PROMTOOL_TIMEOUT_S = 60


def promtool() -> str:
    return binary("promtool")


def _alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _expand(text: str, labels: dict[str, str]) -> str:
    """Render the ``{{ $labels.x }}`` placeholders the way Prometheus will."""
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)


def _requests(model: str, per_minute: dict[str, int], minutes: int) -> list[dict[str, str]]:
    return [
        {
            "series": f'serving_requests_total{{model="{model}",endpoint="infer",code="{code}"}}',
            "values": f"0+{rate}x{minutes}",
        }
        for code, rate in per_minute.items()
    ]


def _rejected(model: str, per_minute: int, minutes: int) -> dict[str, str]:
    return {
        "series": f'serving_rejected_total{{model="{model}"}}',
        "values": f"0+{per_minute}x{minutes}",
    }


def _latency(model: str, counts: dict[str, int | str], minutes: int) -> list[dict[str, str]]:
    """Bucket series for ``le`` in ``counts`` (must include +Inf): an int is the count
    added per minute, a string is promtool's values notation as it is."""
    return [
        {
            "series": f'serving_request_duration_seconds_bucket{{model="{model}",'
            f'endpoint="infer",le="{le}"}}',
            "values": n if isinstance(n, str) else f"0+{n}x{minutes}",
        }
        for le, n in counts.items()
    ]


# Burn-rate windows read whatever data exists: 90 minutes fire even the 1 h "for" of
# the ticket alert, and keep promtool quick (it evaluates every rule each minute).
BURN_MINUTES = 90
M = {"model": "fraud"}
# alert -> (series that fire it, labels of the alert, eval time), [quiet cases]
Case = tuple[list[dict[str, str]], str]
CASES: dict[str, tuple[Case, dict[str, str], list[Case]]] = {
    "InferenceErrorBudgetBurnFast": (
        (_requests("fraud", {"200": 1000, "500": 50}, BURN_MINUTES), "85m"),  # 4.8 % > 1.44 %
        M,
        [(_requests("fraud", {"200": 1000, "500": 10}, BURN_MINUTES), "85m")],  # 1 %: slow only
    ),
    "InferenceErrorBudgetBurnSlow": (
        (_requests("fraud", {"200": 1000, "500": 10}, BURN_MINUTES), "85m"),  # 1 % > 0.6 %
        M,
        [(_requests("fraud", {"200": 1000, "503": 3}, BURN_MINUTES), "85m")],  # 0.3 %
    ),
    "InferenceErrorBudgetBurnTicket": (
        (_requests("fraud", {"200": 1000, "504": 3}, BURN_MINUTES), "85m"),  # 0.3 % > 0.1 %
        M,
        [
            (_requests("fraud", {"200": 2000, "500": 1}, BURN_MINUTES), "85m"),  # 0.05 %
            # 4xx are the client's errors (or back-pressure): they burn no budget.
            (
                _requests("fraud", {"200": 1000, "400": 100, "429": 100, "404": 50}, BURN_MINUTES),
                "85m",
            ),
        ],
    ),
    "InferenceHighErrorRate": (
        (_requests("fraud", {"200": 1000, "500": 3}, 60), "30m"),  # 0.3 % > 0.1 %
        M,
        [
            (_requests("fraud", {"200": 2000, "500": 1}, 60), "30m"),
            (_requests("fraud", {"200": 100, "413": 100}, 60), "30m"),
        ],
    ),
    "InferenceHighLatencyP95": (
        # All requests between 100 and 250 ms: p95 = 242.5 ms > 100 ms for 10 m.
        (_latency("fraud", {"0.05": 0, "0.1": 0, "0.25": 100, "+Inf": 100}, 60), "30m"),
        M,
        [
            # All under 50 ms: p95 = 47.5 ms.
            (_latency("fraud", {"0.05": 100, "0.1": 100, "0.25": 100, "+Inf": 100}, 60), "30m"),
            # Slow for the last 5 minutes only: shorter than the alert's 10 m.
            (
                _latency(
                    "fraud",
                    {
                        "0.05": "0+100x55 5500+0x5",
                        "0.1": "0+100x55 5500+0x5",
                        "0.25": 100,
                        "+Inf": 100,
                    },
                    60,
                ),
                "60m",
            ),
        ],
    ),
    "InferenceQueueSaturated": (
        (
            [*_requests("fraud", {"200": 1000, "429": 50}, 60), _rejected("fraud", 50, 60)],
            "30m",
        ),
        M,
        [
            (
                [*_requests("fraud", {"200": 1000, "429": 5}, 60), _rejected("fraud", 5, 60)],
                "30m",
            )
        ],
    ),
    "InferencePodNotReady": (
        (
            [
                {
                    "series": 'kube_pod_status_ready{namespace="inference",pod="anomaly-0",'
                    'condition="false"}',
                    "values": "1x40",
                }
            ],
            "20m",
        ),
        {"namespace": "inference", "pod": "anomaly-0"},
        [
            (
                [
                    {
                        "series": 'kube_pod_status_ready{namespace="inference",pod="anomaly-0",'
                        'condition="false"}',
                        "values": "0x40",
                    },
                    {
                        "series": 'kube_pod_status_ready{namespace="inference",pod="anomaly-0",'
                        'condition="true"}',
                        "values": "1x40",
                    },
                    {
                        "series": 'kube_pod_status_ready{namespace="mlflow",pod="mlflow-0",'
                        'condition="false"}',
                        "values": "1x40",
                    },
                ],
                "20m",
            )
        ],
    ),
    "InferenceGpuMemoryNearFull": (
        (
            [
                {
                    "series": 'DCGM_FI_DEV_FB_USED{gpu="0",Hostname="gpu-a",UUID="GPU-1"}',
                    "values": "23000x40",
                },
                {
                    "series": 'DCGM_FI_DEV_FB_FREE{gpu="0",Hostname="gpu-a",UUID="GPU-1"}',
                    "values": "1000x40",
                },
            ],
            "20m",
        ),
        {"gpu": "0", "Hostname": "gpu-a", "UUID": "GPU-1"},
        [
            (
                [
                    {
                        "series": 'DCGM_FI_DEV_FB_USED{gpu="0",Hostname="gpu-a",UUID="GPU-1"}',
                        "values": "12000x40",
                    },
                    {
                        "series": 'DCGM_FI_DEV_FB_FREE{gpu="0",Hostname="gpu-a",UUID="GPU-1"}',
                        "values": "12000x40",
                    },
                ],
                "20m",
            )
        ],
    ),
}


@pytest.fixture(scope="module")
def groups() -> list[dict[str, Any]]:
    return slo_rule_groups(SloTargets(), runbook_base_url=RUNBOOK_BASE)


@pytest.fixture(scope="module")
def rules_file(groups: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "slo.rules.yml"
    path.write_text(rules_yaml(groups), encoding="utf-8")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S
    )


def test_promtool_check_rules_passes(rules_file: Path, groups: list[dict[str, Any]]) -> None:
    result = _run("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_every_alert_is_labelled_and_has_a_runbook(groups: list[dict[str, Any]]) -> None:
    alerts = _alerts(groups)
    assert {a["alert"] for a in alerts} == set(RUNBOOKS)
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        name = RUNBOOKS[alert["alert"]]
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}/{name}"
        runbook = ROOT / "docs" / "runbooks" / name
        assert runbook.is_file(), f"{alert['alert']}: {runbook} missing"
        assert alert["alert"] in runbook.read_text(encoding="utf-8"), "runbook names its alert"


def test_burn_rates_are_the_workbooks(groups: list[dict[str, Any]]) -> None:
    assert [row.factor(30) for row in BURN_RATE_ALERTS] == [14.4, 6.0, 1.0]
    by_name = {a["alert"]: a for a in _alerts(groups)}
    fast = by_name["InferenceErrorBudgetBurnFast"]["expr"]
    assert "ratio_rate1h) > (14.4 * 0.001)" in fast and "ratio_rate5m) > (14.4 * 0.001)" in fast
    assert by_name["InferenceErrorBudgetBurnFast"]["labels"]["severity"] == "critical"
    assert by_name["InferenceErrorBudgetBurnTicket"]["labels"]["severity"] == "warning"
    # Other targets move the thresholds: 99 % over 28 days.
    other = slo_rule_groups(
        SloTargets(availability_percent=99.0, latency_p95_ms=250, window_days=28),
        runbook_base_url=RUNBOOK_BASE,
    )
    exprs = {a["alert"]: a["expr"] for a in _alerts(other)}
    assert "> (13.44 * 0.01)" in exprs["InferenceErrorBudgetBurnFast"]
    assert exprs["InferenceHighLatencyP95"].endswith("> 0.25")


def test_invalid_targets_are_refused() -> None:
    with pytest.raises(ValueError, match=r"slo\.availability_percent: 100 must be between 0"):
        slo_rule_groups(SloTargets(availability_percent=100), runbook_base_url=RUNBOOK_BASE)
    with pytest.raises(ValueError, match=r"slo\.latency_p95_ms: 0 must be positive"):
        slo_rule_groups(SloTargets(latency_p95_ms=0), runbook_base_url=RUNBOOK_BASE)


def test_namespace_is_a_parameter() -> None:
    groups = slo_rule_groups(SloTargets(), runbook_base_url=RUNBOOK_BASE, namespace="serving")
    pod = next(a for a in _alerts(groups) if a["alert"] == "InferencePodNotReady")
    assert 'namespace="serving"' in pod["expr"]


def _unit_tests(groups: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """promtool test groups for alert ``name``: its firing case, then its quiet ones."""
    alert = next(a for a in _alerts(groups) if a["alert"] == name)
    (series, at), labels, quiet = CASES[name]
    expected = {
        "exp_labels": {**labels, **alert["labels"]},
        "exp_annotations": {k: _expand(v, labels) for k, v in alert["annotations"].items()},
    }
    tests: list[dict[str, Any]] = [
        {
            "name": f"{name} fires",
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": [expected]}],
        }
    ]
    for i, (quiet_series, quiet_at) in enumerate(quiet):
        tests.append(
            {
                "name": f"{name} quiet {i}",
                "interval": "1m",
                "input_series": quiet_series,
                "alert_rule_test": [{"eval_time": quiet_at, "alertname": name, "exp_alerts": []}],
            }
        )
    return tests


def test_every_alert_has_a_firing_and_a_quiet_case(groups: list[dict[str, Any]]) -> None:
    assert set(CASES) == {a["alert"] for a in _alerts(groups)}
    assert all(quiet for _, _, quiet in CASES.values())


@pytest.mark.parametrize("alert", sorted(CASES))
def test_promtool_unit_tests_pass(
    alert: str, rules_file: Path, groups: list[dict[str, Any]]
) -> None:
    test_file = rules_file.parent / f"{alert}.test.yml"
    document = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        "tests": _unit_tests(groups, alert),
    }
    test_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = _run("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_expectation_fails_promtool(rules_file: Path, groups: list[dict[str, Any]]) -> None:
    """The harness can fail: a quiet series claimed to fire is reported by promtool."""
    (quiet_series, at) = CASES["InferenceErrorBudgetBurnFast"][2][0]
    test_file = rules_file.parent / "wrong.test.yml"
    wrong = {"exp_labels": {"model": "fraud", "severity": "critical"}}
    test = {
        "interval": "1m",
        "input_series": quiet_series,
        "alert_rule_test": [
            {"eval_time": at, "alertname": "InferenceErrorBudgetBurnFast", "exp_alerts": [wrong]}
        ],
    }
    document = {"rule_files": [rules_file.name], "tests": [test]}
    test_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = _run("test", "rules", str(test_file))
    assert result.returncode == 1
    assert "InferenceErrorBudgetBurnFast" in result.stdout + result.stderr
