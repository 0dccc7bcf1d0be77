"""Values for the NVIDIA device plugin and dcgm-exporter charts, checked against their keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.components.services.nvidia_values import (
    DCGM_EXPORTER_CHART,
    DCGM_EXPORTER_VALUES,
    DEVICE_PLUGIN_CHART,
    DEVICE_PLUGIN_VALUES,
    Layout,
    values_problems,
)

GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
# The nvidia.com/gpu=true:NoSchedule taint the platform puts on GPU nodes.
GPU_TOLERATIONS = [
    {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
]


def device_plugin_values() -> dict[str, Any]:
    return {
        "gfd": {"enabled": True},
        # NFD's worker is what labels nodes, so it gets the toleration but no GPU selector.
        "nfd": {"worker": {"tolerations": GPU_TOLERATIONS}},
        "image": {"repository": "nvcr.io/nvidia/k8s-device-plugin", "tag": "v0.20.0"},
        "config": {
            "map": {"default": "version: v1\nflags:\n  migStrategy: none\n"},
            "default": "default",
        },
        "deviceListStrategy": "envvar",
        "migStrategy": "none",
        "failOnInitError": True,
        "compatWithCPUManager": False,
        "nodeSelector": GPU_NODE_SELECTOR,
        "tolerations": GPU_TOLERATIONS,
        "affinity": {},
        "priorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "podAnnotations": {"example.com/owner": "ml-platform"},
    }


def dcgm_exporter_values() -> dict[str, Any]:
    return {
        "serviceMonitor": {
            "enabled": True,
            "interval": "30s",
            "honorLabels": True,
            "additionalLabels": {"release": "kube-prometheus-stack"},
            "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}
            ],
        },
        "image": {
            "repository": "nvcr.io/nvidia/k8s/dcgm-exporter",
            "tag": "4.5.3-4.8.2-distroless",
        },
        "arguments": ["-f", "/etc/dcgm-exporter/default-counters.csv"],
        "nodeSelector": GPU_NODE_SELECTOR,
        "tolerations": GPU_TOLERATIONS,
        "priorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}},
        "podSecurityContext": {"runAsNonRoot": False},
        "service": {"port": 9400},
        "kubeletPath": "/var/lib/kubelet/pod-resources",
        "extraEnv": [{"name": "DCGM_EXPORTER_INTERVAL", "value": "30000"}],
        "kubernetes": {"enablePodLabels": True, "rbac": {"create": True}},
    }


def test_the_charts_are_pinned_to_the_versions_read() -> None:
    assert DEVICE_PLUGIN_CHART == (
        "https://nvidia.github.io/k8s-device-plugin",
        "nvidia-device-plugin",
        "0.20.0",
    )
    assert DCGM_EXPORTER_CHART == (
        "https://nvidia.github.io/dcgm-exporter/helm-charts",
        "dcgm-exporter",
        "4.8.2",
    )


def test_realistic_device_plugin_values_with_gfd_pass() -> None:
    assert values_problems(device_plugin_values(), DEVICE_PLUGIN_VALUES) == []


def test_realistic_dcgm_exporter_values_with_a_service_monitor_pass() -> None:
    assert values_problems(dcgm_exporter_values(), DCGM_EXPORTER_VALUES) == []


@pytest.mark.parametrize(
    ("values", "layout", "expected"),
    [
        pytest.param(
            {"nodeSelectors": GPU_NODE_SELECTOR},
            DEVICE_PLUGIN_VALUES,
            ["nodeSelectors: not a key the chart documents"],
            id="device-plugin-top-level",
        ),
        pytest.param(
            {"gfd": {"enable": True}},
            DEVICE_PLUGIN_VALUES,
            ["gfd.enable: not a key the chart documents"],
            id="device-plugin-gfd",
        ),
        pytest.param(
            {"nfd": {"worker": {"toleration": GPU_TOLERATIONS}}},
            DEVICE_PLUGIN_VALUES,
            ["nfd.worker.toleration: not a key the chart documents"],
            id="device-plugin-nfd-subchart",
        ),
        pytest.param(
            {"securityContext": {"privilegd": True}},
            DEVICE_PLUGIN_VALUES,
            ["securityContext.privilegd: not a key the chart documents"],
            id="device-plugin-security-context",
        ),
        pytest.param(
            {"serviceMonitor": {"enable": True}},
            DCGM_EXPORTER_VALUES,
            ["serviceMonitor.enable: not a key the chart documents"],
            id="dcgm-service-monitor",
        ),
        pytest.param(
            {"kubernetes": {"rbac": {"enabled": True}}},
            DCGM_EXPORTER_VALUES,
            ["kubernetes.rbac.enabled: not a key the chart documents"],
            id="dcgm-nested",
        ),
        pytest.param(
            {"nodeSelectors": GPU_NODE_SELECTOR},
            DCGM_EXPORTER_VALUES,
            ["nodeSelectors: not a key the chart documents"],
            id="dcgm-top-level",
        ),
    ],
)
def test_a_misspelt_key_is_reported_by_its_dotted_path(
    values: dict[str, Any], layout: Layout, expected: list[str]
) -> None:
    assert values_problems(values, layout) == expected


def test_every_misspelling_is_reported_not_just_the_first() -> None:
    values = {**dcgm_exporter_values(), "nodeSelectors": {}, "servicemonitor": {}}
    values["serviceMonitor"] = {**values["serviceMonitor"], "enable": True}
    assert values_problems(values, DCGM_EXPORTER_VALUES) == [
        "serviceMonitor.enable: not a key the chart documents",
        "nodeSelectors: not a key the chart documents",
        "servicemonitor: not a key the chart documents",
    ]


def test_free_form_maps_are_not_opened() -> None:
    # Label keys, affinity terms and env entries are the user's own, not chart keys.
    values = {
        "nodeSelector": {"any.example.com/label": "x"},
        "affinity": {"nodeAffinity": {"anything": []}},
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "podAnnotations": {"free": "form"},
        "config": {"map": {"whatever-name": "version: v1\n"}},
    }
    assert values_problems(values, DEVICE_PLUGIN_VALUES) == []
    assert (
        values_problems({"extraEnv": [{"nam": "typo in an env entry"}]}, DCGM_EXPORTER_VALUES) == []
    )


def test_a_scalar_where_an_object_is_expected_is_reported_and_null_is_not() -> None:
    assert values_problems({"gfd": None, "image": "repo:tag"}, DEVICE_PLUGIN_VALUES) == [
        "image: expected an object, got str"
    ]
