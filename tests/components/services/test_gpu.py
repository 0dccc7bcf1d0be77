"""The NVIDIA device plugin and DCGM exporter: pinned, on GPU nodes only, values the charts
document."""

from __future__ import annotations

from typing import Any

import pytest

from components.services.gpu import (
    DCGM_EXPORTER_CHART,
    DEVICE_PLUGIN_CHART,
    GpuSupport,
    GpuSupportArgs,
)
from infra.offline import ProgramRun
from tests.components.services import nvidia_values as documented
from tests.components.support import one, plan

GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return plan(lambda: GpuSupport("gpu", GpuSupportArgs()))


def _releases(run: ProgramRun) -> dict[str, Any]:
    return {r.inputs["name"]: r.inputs for r in run.by_type("kubernetes:helm.sh/v3:Release")}


def test_both_charts_are_pinned_in_a_privileged_namespace_that_says_why(run) -> None:
    releases = _releases(run)
    plugin, exporter = releases["nvidia-device-plugin"], releases["dcgm-exporter"]
    assert (
        DEVICE_PLUGIN_CHART.repository,
        DEVICE_PLUGIN_CHART.chart,
        DEVICE_PLUGIN_CHART.version,
    ) == documented.DEVICE_PLUGIN_CHART
    assert (
        DCGM_EXPORTER_CHART.repository,
        DCGM_EXPORTER_CHART.chart,
        DCGM_EXPORTER_CHART.version,
    ) == documented.DCGM_EXPORTER_CHART
    assert plugin["version"] == "0.20.0" and exporter["version"] == "4.8.2"
    metadata = one(run, "kubernetes:core/v1:Namespace").inputs["metadata"]
    assert metadata["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert "SYS_ADMIN" in metadata["annotations"]["mlplatform.io/pod-security-reason"]
    assert plugin["namespace"] == exporter["namespace"] == "nvidia"


def test_the_device_plugin_runs_on_gpu_nodes_except_bottlerocket(run) -> None:
    values = _releases(run)["nvidia-device-plugin"]["values"]
    assert documented.values_problems(values, documented.DEVICE_PLUGIN_VALUES) == []
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["tolerations"] == [GPU_TOLERATION]
    (term,) = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert {"key": "mlplatform.io/os", "operator": "NotIn", "values": ["bottlerocket"]} in term[
        "matchExpressions"
    ]


def test_the_exporter_runs_on_gpu_nodes_and_its_service_monitor_waits_for_the_operator(run) -> None:
    values = _releases(run)["dcgm-exporter"]["values"]
    assert documented.values_problems(values, documented.DCGM_EXPORTER_VALUES) == []
    assert values["tolerations"] == [GPU_TOLERATION]
    assert values["serviceMonitor"] == {"enabled": False}
    with_operator = plan(lambda: GpuSupport("gpu", GpuSupportArgs(service_monitor=True)))
    assert _releases(with_operator)["dcgm-exporter"]["values"]["serviceMonitor"] == {
        "enabled": True
    }
