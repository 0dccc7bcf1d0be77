"""Kubernetes helpers: pinned releases, Pod Security namespaces, security contexts, the node
contract. Objects are checked against the Kubernetes OpenAPI schema of the cluster version."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components import _k8s
from tests.components.support import assert_valid, one, plan

PIN = _k8s.ChartPin("https://charts.example.org", "example", "1.2.3")


class _Owner(pulumi.ComponentResource):
    def __init__(self, build: Any) -> None:
        super().__init__("mlplatform:index:Owner", "owner", None)
        build(self)
        self.register_outputs({})


def test_a_release_is_atomic_bounded_and_never_creates_its_namespace() -> None:
    run = plan(
        lambda: _Owner(
            lambda parent: _k8s.helm_release(
                "example", pin=PIN, namespace="apps", values={"replicas": 2}, parent=parent
            )
        )
    )
    release = one(run, "kubernetes:helm.sh/v3:Release")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"]) == ("example", "1.2.3")
    assert inputs["repositoryOpts"] == {"repo": "https://charts.example.org"}
    assert inputs["atomic"] is True and inputs["cleanupOnFail"] is True
    assert inputs["createNamespace"] is False
    assert inputs["timeout"] == 600 and inputs["maxHistory"] == 10
    assert release.parent == one(run, "mlplatform:index:Owner").urn


@pytest.mark.parametrize(
    "values",
    [
        {"auth": {"password": "hunter2"}},
        {"admin": {"apiKey": "k"}},
        {"items": [{"token": "t"}]},
    ],
)
def test_a_release_refuses_credentials_in_values(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="look like credentials"):
        _k8s.helm_release("x", pin=PIN, namespace="apps", values=values, parent=None)  # type: ignore[arg-type]


def test_secret_references_in_values_are_fine() -> None:
    assert _k8s.secret_value_paths({"auth": {"existingSecret": "db", "password": ""}}) == []
    assert _k8s.secret_value_paths({"tls": {"secretName": "cert"}}) == []


@pytest.mark.parametrize("version", ["^1.2", "1.2", "latest", "1.x", ">=1.0.0"])
def test_a_chart_pin_is_an_exact_version(version: str) -> None:
    with pytest.raises(ValueError, match="must be exact"):
        _k8s.ChartPin("https://charts.example.org", "example", version)
    with pytest.raises(ValueError, match="https:// or oci://"):
        _k8s.ChartPin("http://charts.example.org", "example", "1.0.0")
    assert _k8s.ChartPin("oci://registry.example/charts", "x", "v1.4.0-rc.1").version


def test_a_namespace_enforces_audits_and_warns_its_pod_security_level() -> None:
    run = plan(lambda: _Owner(lambda parent: _k8s.namespace("serving", parent=parent)))
    namespace = one(run, "kubernetes:core/v1:Namespace")
    labels = namespace.inputs["metadata"]["labels"]
    assert {k: v for k, v in labels.items() if k.startswith("pod-security")} == {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    assert_valid({"apiVersion": "v1", "kind": "Namespace", **namespace.inputs})


def test_a_privileged_namespace_needs_a_reason_recorded_on_it() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        _k8s.namespace("gpu", parent=None, pod_security="privileged")  # type: ignore[arg-type]
    run = plan(
        lambda: _Owner(
            lambda parent: _k8s.namespace(
                "gpu-operator",
                parent=parent,
                pod_security="privileged",
                reason="the driver DaemonSet loads kernel modules",
            )
        )
    )
    metadata = one(run, "kubernetes:core/v1:Namespace").inputs["metadata"]
    assert metadata["annotations"] == {
        "mlplatform.io/pod-security-reason": "the driver DaemonSet loads kernel modules"
    }
    assert metadata["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    with pytest.raises(ValueError, match="DNS label"):
        _k8s.namespace("Bad_Name", parent=None)  # type: ignore[arg-type]


def test_restricted_contexts_and_the_node_contract_make_a_valid_gpu_pod() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "infer"},
        "spec": {
            "securityContext": _k8s.restricted_pod_security_context(),
            "nodeSelector": _k8s.pool_selector("gpu"),
            "tolerations": [_k8s.GPU_TAINT.toleration()],
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/app@sha256:" + "0" * 64,
                    "securityContext": _k8s.restricted_container_security_context(),
                    "resources": {"limits": {_k8s.GPU_RESOURCE: "1"}},
                }
            ],
        },
    }
    assert_valid(pod)
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]


def test_the_node_contract_labels_and_taints() -> None:
    assert _k8s.node_labels("gpu", "spot", gpu=True) == {
        "mlplatform.io/pool": "gpu",
        "mlplatform.io/os": "al2023",
        "mlplatform.io/capacity": "spot",
        "nvidia.com/gpu.present": "true",
    }
    mixed = _k8s.node_labels("gpu", None, os="bottlerocket")
    assert mixed == {"mlplatform.io/pool": "gpu", "mlplatform.io/os": "bottlerocket"}
    assert _k8s.node_taints() == []
    assert _k8s.node_taints(gpu=True, critical_addons_only=True) == [
        _k8s.NodeTaint("nvidia.com/gpu", "true", "NoSchedule"),
        _k8s.NodeTaint("CriticalAddonsOnly", "true", "NoSchedule"),
    ]
