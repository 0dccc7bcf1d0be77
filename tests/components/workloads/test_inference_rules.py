"""One inference service's alerts: valid for ``promtool``, each with its runbook, and the
drift alert firing on drifted series and staying quiet otherwise (``promtool test rules``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.services.observability_rules import rules_yaml
from components.workloads.inference_rules import SERVICE_RUNBOOKS, service_rule_groups
from tests.binaries import binary

ROOT = Path(__file__).resolve().parents[3]
BASE = "https://example.com/runbooks"


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    groups = service_rule_groups(
        "anomaly",
        namespace="ml-serving",
        deployments=["anomaly-blue", "anomaly-green"],
        max_replicas=6,
        runbook_base_url=BASE,
    )
    path = tmp_path / "service.rules.yml"
    path.write_text(rules_yaml(groups), encoding="utf-8")
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=60)


def test_the_rules_pass_promtool_and_each_alert_has_its_runbook(rules_file: Path) -> None:
    result = _promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    assert set(alerts) == set(SERVICE_RUNBOOKS)
    for name, runbook in SERVICE_RUNBOOKS.items():
        assert alerts[name]["annotations"]["runbook_url"] == f"{BASE}/{runbook}"
        assert name in (ROOT / "docs" / "runbooks" / runbook).read_text(encoding="utf-8")


def _drift(pod: str, feature: str, values: str) -> dict[str, str]:
    labels = f'namespace="ml-serving",pod="{pod}",model="anomaly-detector",feature="{feature}"'
    return {"series": f"serving_drift_detected{{{labels}}}", "values": values}


def _case(
    name: str, series: list[dict[str, str]], expected: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "40m", "alertname": "ModelDriftDetected", "exp_alerts": expected}
        ],
    }


def test_drift_fires_after_half_an_hour_and_only_for_this_services_pods(rules_file: Path) -> None:
    firing = {
        "exp_labels": {
            "severity": "warning",
            "service": "anomaly",
            "namespace": "ml-serving",
            "model": "anomaly-detector",
            "feature": "network_mbps",
        },
        "exp_annotations": {
            "summary": "Model anomaly-detector of anomaly sees drifted network_mbps",
            "description": "The requests' network_mbps has differed from the model's training "
            "data for 30m (three or more of the five drift tests agree). "
            "GET /v2/models/anomaly-detector/drift has the figures.",
            "runbook_url": f"{BASE}/model-drift.md",
        },
    }
    tests = [
        # One pod of the blue release has seen drift for 40 minutes; the other has not.
        _case(
            "drifted",
            [
                _drift("anomaly-blue-6d4cf8b7d9-x2kqp", "network_mbps", "1x40"),
                _drift("anomaly-blue-6d4cf8b7d9-9zqvw", "network_mbps", "0x40"),
                _drift("anomaly-blue-6d4cf8b7d9-x2kqp", "cpu_util", "0x40"),
            ],
            [firing],
        ),
        # Drifted for 20 minutes only: not yet.
        _case(
            "too short", [_drift("anomaly-blue-6d4cf8b7d9-x2kqp", "network_mbps", "0x20 1x20")], []
        ),
        # Another service's pod: not this service's alert.
        _case("other service", [_drift("fraud-blue-7c9d5b6f8-kk4x2", "network_mbps", "1x40")], []),
    ]
    document = {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests}
    test_file = rules_file.parent / "drift.test.yml"
    test_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
