"""Kubernetes workload (pod security, resources, images, namespace) and Helm rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policy.rules import check_resource

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
RELEASE = "kubernetes:helm.sh/v3:Release"

CONTAINER: dict[str, Any] = {
    "name": "server",
    "image": "ghcr.io/acme/mlplatform-serving:0.1.0",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    },
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
}
POD: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "initContainers": [{**copy.deepcopy(CONTAINER), "name": "fetch-model"}],
    "containers": [copy.deepcopy(CONTAINER)],
}


def workload(kind: str = DEPLOYMENT, pod: dict[str, Any] | None = None) -> dict[str, Any]:
    """A compliant workload of ``kind`` wrapping ``pod`` at the kind's pod spec path."""
    template = {"metadata": {"labels": {"app": "x"}}, "spec": copy.deepcopy(pod or POD)}
    if kind.endswith(":CronJob"):
        spec: dict[str, Any] = {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": template}},
        }
    elif kind.endswith(":Pod"):
        spec = template["spec"]
    else:
        spec = {"selector": {"matchLabels": {"app": "x"}}, "template": template}
    return {"metadata": {"name": "x", "namespace": "inference"}, "spec": spec}


def fired(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    return {f.policy: f.level for f in check_resource(resource_type, props)}


def mutate(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or delete, with KeyError) a dotted path; numeric parts index lists."""
    *parents, leaf = path.split(".")
    target: Any = props
    for key in parents:
        target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
    if value is KeyError:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return props


KINDS = [
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
]


@pytest.mark.parametrize("kind", KINDS)
def test_compliant_workload_of_every_kind(kind: str) -> None:
    assert fired(kind, workload(kind)) == {}


@pytest.mark.parametrize("kind", KINDS)
def test_violation_found_at_every_kinds_pod_spec_path(kind: str) -> None:
    pod = mutate(copy.deepcopy(POD), "containers.0.securityContext.privileged", True)
    assert fired(kind, workload(kind, pod)) == {"k8s-no-privileged": "mandatory"}


POD_VIOLATIONS = [
    ("securityContext.runAsNonRoot", KeyError, "k8s-run-as-non-root"),
    ("containers.0.securityContext.runAsNonRoot", False, "k8s-run-as-non-root"),
    ("containers.0.securityContext.runAsUser", 0.0, "k8s-run-as-non-root"),
    (
        "initContainers.0.securityContext.allowPrivilegeEscalation",
        KeyError,
        "k8s-no-privilege-escalation",
    ),
    (
        "containers.0.securityContext.allowPrivilegeEscalation",
        "true",
        "k8s-no-privilege-escalation",
    ),
    ("containers.0.securityContext.capabilities.drop", ["NET_RAW"], "k8s-drop-all-capabilities"),
    ("containers.0.securityContext.capabilities", KeyError, "k8s-drop-all-capabilities"),
    ("securityContext.seccompProfile", KeyError, "k8s-seccomp-runtime-default"),
    (
        "containers.0.securityContext.seccompProfile",
        {"type": "Unconfined"},
        "k8s-seccomp-runtime-default",
    ),
    ("containers.0.securityContext.readOnlyRootFilesystem", KeyError, "k8s-read-only-root"),
    ("containers.0.securityContext.readOnlyRootFilesystem", False, "k8s-read-only-root"),
    ("containers.0.resources.requests.cpu", KeyError, "k8s-resources"),
    ("initContainers.0.resources.requests.memory", KeyError, "k8s-resources"),
    ("containers.0.resources.limits", KeyError, "k8s-resources"),
    ("containers.0.image", "ghcr.io/acme/serving:latest", "k8s-image-pinned"),
    ("containers.0.image", "ghcr.io/acme/serving", "k8s-image-pinned"),
    ("containers.0.image", "localhost:5000/serving", "k8s-image-pinned"),
    ("containers.0.securityContext.privileged", True, "k8s-no-privileged"),
    ("hostNetwork", True, "k8s-no-host-namespaces"),
    ("hostPID", "true", "k8s-no-host-namespaces"),
    ("hostIPC", True, "k8s-no-host-namespaces"),
]


@pytest.mark.parametrize(("path", "value", "rule"), POD_VIOLATIONS)
def test_pod_spec_violations(path: str, value: Any, rule: str) -> None:
    pod = mutate(copy.deepcopy(POD), path, value)
    findings = check_resource(DEPLOYMENT, workload(pod=pod))
    assert {(f.policy, f.level) for f in findings} == {(rule, "mandatory")}
    container = path.split(".")[0]
    if container in ("containers", "initContainers"):
        assert findings[0].message.startswith(container)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("securityContext", KeyError),  # every container carries its own settings
        ("containers.0.image", "ghcr.io/acme/serving@sha256:" + "a" * 64),
        ("containers.0.image", "localhost:5000/serving:1.2"),
        ("containers.0.securityContext.seccompProfile", {"type": "Localhost"}),
        ("hostNetwork", False),
    ],
)
def test_pod_spec_alternatives_that_comply(path: str, value: Any) -> None:
    pod = copy.deepcopy(POD)
    for container in pod["initContainers"] + pod["containers"]:
        container["securityContext"].update(
            runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"}
        )
    assert fired(DEPLOYMENT, workload(pod=mutate(pod, path, value))) == {}


def test_namespace_must_be_set_and_not_default() -> None:
    props = workload()
    assert fired(DEPLOYMENT, mutate(copy.deepcopy(props), "metadata.namespace", "default")) == {
        "k8s-no-default-namespace": "mandatory"
    }
    assert fired(DEPLOYMENT, mutate(copy.deepcopy(props), "metadata.namespace", KeyError)) == {
        "k8s-no-default-namespace": "mandatory"
    }
    assert fired(DEPLOYMENT, mutate(props, "metadata.namespace", UNKNOWN)) == {}


@pytest.mark.parametrize("where", ["metadata", "spec.template.metadata"])
def test_writable_root_with_documented_exception_is_advisory(where: str) -> None:
    pod = mutate(copy.deepcopy(POD), "containers.0.securityContext.readOnlyRootFilesystem", False)
    props = workload(pod=pod)
    reason = "mlplatform.io/writable-root-reason"
    mutate(props, f"{where}.annotations", {reason: "vault agent writes /home/vault"})
    findings = check_resource(DEPLOYMENT, props)
    assert [(f.policy, f.level) for f in findings] == [("k8s-read-only-root-exception", "advisory")]
    assert reason in findings[0].message
    mutate(props, f"{where}.annotations", {reason: ""})  # an empty reason documents nothing
    assert fired(DEPLOYMENT, props) == {"k8s-read-only-root": "mandatory"}


def test_workload_unknowns_cannot_be_judged() -> None:
    assert fired(DEPLOYMENT, {"metadata": {"namespace": "x"}, "spec": UNKNOWN}) == {}
    pod = copy.deepcopy(POD)
    pod["containers"] = [UNKNOWN]
    pod["initContainers"] = UNKNOWN
    pod["hostNetwork"] = UNKNOWN
    assert fired(DEPLOYMENT, workload(pod=pod)) == {}
    unknown_container = {
        "name": "c",
        "image": UNKNOWN,
        "securityContext": UNKNOWN,
        "resources": {"requests": UNKNOWN, "limits": {"memory": "1Gi"}},
    }
    pod["containers"] = [unknown_container]
    assert fired(DEPLOYMENT, workload(pod=pod)) == {}


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"chart": "cert-manager", "version": "0.29.1"}, {}),
        ({"chart": "oci://registry-1.docker.io/bitnamicharts/redis", "version": "v20.1.0"}, {}),
        ({"chart": "./charts/local"}, {}),
        ({"chart": "cert-manager"}, {"helm-chart-version-pinned": "mandatory"}),
        ({"chart": "cert-manager", "version": ""}, {"helm-chart-version-pinned": "mandatory"}),
        ({"chart": "cert-manager", "version": "^0.29"}, {"helm-chart-version-pinned": "mandatory"}),
        (
            {"chart": "cert-manager", "version": ">=0.28.0"},
            {"helm-chart-version-pinned": "mandatory"},
        ),
        ({"chart": "cert-manager", "version": "*"}, {"helm-chart-version-pinned": "mandatory"}),
        (
            {"chart": "cert-manager", "version": "0.29.x"},
            {"helm-chart-version-pinned": "mandatory"},
        ),
        ({"chart": "cert-manager", "version": UNKNOWN}, {}),
    ],
)
def test_helm_release_chart_version(props: dict[str, Any], expected: dict[str, str]) -> None:
    assert fired(RELEASE, props) == expected
    assert fired("kubernetes:helm.sh/v4:Chart", props) == expected
