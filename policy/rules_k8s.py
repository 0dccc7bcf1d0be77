"""Rules for Kubernetes workloads (Pod Security Standards "restricted" and more) and Helm.

Workload props are the Kubernetes object itself (``metadata``, ``spec``), camelCase
as Kubernetes spells it. The pod spec sits at ``spec.template.spec``, or at
``spec.jobTemplate.spec.template.spec`` for a CronJob, or at ``spec`` for a Pod.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_bool,
    as_list,
    dig,
    is_unknown,
    iter_mappings,
)

POD = "kubernetes:core/v1:Pod"
CRONJOB = "kubernetes:batch/v1:CronJob"
WORKLOAD_TYPES = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:batch/v1:Job",
        CRONJOB,
        POD,
    }
)
HELM_TYPES = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})
WRITABLE_ROOT_ANNOTATION = "mlplatform.io/writable-root-reason"
_SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})
# An exact SemVer 2 version, as Helm requires of chart versions; ranges are rejected.
_EXACT_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
)

Container = tuple[str, Mapping[str, Any]]
"""(label for messages, container spec)."""


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Any:
    """The pod spec of a workload (MISSING or UNKNOWN when absent or not known)."""
    if resource_type == POD:
        return dig(props, "spec")
    if resource_type == CRONJOB:
        return dig(props, "spec", "jobTemplate", "spec", "template", "spec")
    return dig(props, "spec", "template", "spec")


def containers(pod: Any) -> list[Container]:
    """Every known container and init container of a pod spec, labelled by name."""
    found: list[Container] = []
    for field in ("initContainers", "containers"):
        for container in iter_mappings(dig(pod, field)):
            name = dig(container, "name")
            found.append((f"{field}[{name if isinstance(name, str) else '?'}]", container))
    return found


def _per_container(
    judge: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None],
) -> Callable[[str, Mapping[str, Any]], list[str]]:
    """A rule that applies ``judge(pod, container)`` to each container of a workload."""

    def check(resource_type: str, props: Mapping[str, Any]) -> list[str]:
        pod = pod_spec(resource_type, props)
        if not isinstance(pod, Mapping):
            return []
        problems: list[str] = []
        for label, container in containers(pod):
            problem = judge(pod, container)
            if problem:
                problems.append(f"{label}: {problem}")
        return problems

    return check


def _effective(pod: Mapping[str, Any], container: Mapping[str, Any], *path: str) -> Any:
    """A security setting from the container, falling back to the pod's securityContext."""
    value = dig(container, "securityContext", *path)
    return dig(pod, "securityContext", *path) if value is MISSING else value


def _run_as_non_root(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    non_root = _effective(pod, container, "runAsNonRoot")
    user = _effective(pod, container, "runAsUser")
    if not is_unknown(user) and user is not MISSING and str(user).split(".")[0] == "0":
        return "securityContext.runAsUser must not be 0 (root)"
    if is_unknown(non_root) or as_bool(non_root) is True:
        return None
    return "securityContext.runAsNonRoot must be true (on the container or the pod)"


def _no_escalation(_: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    value = dig(container, "securityContext", "allowPrivilegeEscalation")
    if is_unknown(value) or (value is not MISSING and as_bool(value) is False):
        return None
    return "securityContext.allowPrivilegeEscalation must be false"


def _drop_all(_: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    drop = dig(container, "securityContext", "capabilities", "drop")
    if is_unknown(drop) or "ALL" in as_list(drop):
        return None
    return "securityContext.capabilities.drop must include 'ALL'"


def _seccomp(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    profile = _effective(pod, container, "seccompProfile", "type")
    if is_unknown(profile) or profile in _SECCOMP_OK:
        return None
    return "securityContext.seccompProfile.type must be 'RuntimeDefault' (container or pod)"


def _writable_root(_: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    read_only = dig(container, "securityContext", "readOnlyRootFilesystem")
    if as_bool(read_only) is not False:
        return None
    return "securityContext.readOnlyRootFilesystem must be true"


def _resources(_: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    wanted = (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))
    values = {path: dig(container, "resources", *path) for path in wanted}
    if any(is_unknown(v) for v in values.values()):
        return None
    missing = [f"resources.{a}.{b}" for (a, b), v in values.items() if v in (MISSING, "")]
    return f"{', '.join(missing)} must be set" if missing else None


def _image(_: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    image = dig(container, "image")
    if not isinstance(image, str) or is_unknown(image) or "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if tag and tag != "latest":
        return None
    return f"image {image!r} must be pinned to a version tag or digest, not ':latest' or untagged"


def _privileged(_: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if as_bool(dig(container, "securityContext", "privileged")) is True:
        return "securityContext.privileged must not be true"
    return None


def _annotated_exception(props: Mapping[str, Any], resource_type: str) -> bool:
    """True when the workload documents why it needs a writable root filesystem."""
    if resource_type == CRONJOB:
        template = dig(props, "spec", "jobTemplate", "spec", "template", "metadata", "annotations")
    else:
        template = dig(props, "spec", "template", "metadata", "annotations")
    for found in (dig(props, "metadata", "annotations"), template):
        reason = dig(found, WRITABLE_ROOT_ANNOTATION)
        if isinstance(reason, str) and reason.strip() and not is_unknown(reason):
            return True
    return False


def _read_only_root(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if _annotated_exception(props, resource_type):
        return []
    return _per_container(_writable_root)(resource_type, props)


def _read_only_root_exception(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not _annotated_exception(props, resource_type):
        return []
    return [
        f"{problem} (exception documented by the {WRITABLE_ROOT_ANNOTATION} annotation)"
        for problem in _per_container(_writable_root)(resource_type, props)
    ]


def _host_namespaces(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    pod = pod_spec(resource_type, props)
    if not isinstance(pod, Mapping):
        return []
    shared = [f for f in ("hostNetwork", "hostPID", "hostIPC") if as_bool(dig(pod, f)) is True]
    return [f"pod spec {field} must not be true" for field in shared]


def _namespace(_: str, props: Mapping[str, Any]) -> list[str]:
    namespace = dig(props, "metadata", "namespace")
    if is_unknown(namespace):
        return []
    if namespace in (MISSING, "", "default"):
        return ["metadata.namespace must name a dedicated namespace, not 'default' or empty"]
    return []


def _chart_version(_: str, props: Mapping[str, Any]) -> list[str]:
    chart, version = dig(props, "chart"), dig(props, "version")
    if is_unknown(chart) or is_unknown(version):
        return []
    if isinstance(chart, str) and chart.startswith((".", "/")):
        return []  # a chart vendored in the repository is pinned by the commit
    if isinstance(version, str) and _EXACT_VERSION.match(version.strip()):
        return []
    found = "not set" if version is MISSING else repr(version)
    return [f"version must pin one exact chart version (e.g. '1.2.3'), not a range; found {found}"]


def _pss(name: str, description: str, why: str, source: str, check: Any) -> ResourceRule:
    return ResourceRule(name, "mandatory", WORKLOAD_TYPES, description, why, source, check)


RULES: list[ResourceRule] = [
    _pss(
        "k8s-run-as-non-root",
        "Containers run as non-root (runAsNonRoot true, runAsUser not 0).",
        "A root process in a container is one kernel bug away from root on the node.",
        "Pod Security Standards (restricted); CIS EKS 4.2.6; Checkov CKV_K8S_23",
        _per_container(_run_as_non_root),
    ),
    _pss(
        "k8s-no-privilege-escalation",
        "Containers set allowPrivilegeEscalation false.",
        "Blocks setuid binaries from gaining more privileges than the process started with.",
        "Pod Security Standards (restricted); CIS EKS 4.2.5; Checkov CKV_K8S_20",
        _per_container(_no_escalation),
    ),
    _pss(
        "k8s-drop-all-capabilities",
        "Containers drop ALL Linux capabilities.",
        "Default capabilities (NET_RAW and others) are not needed by application containers.",
        "Pod Security Standards (restricted); CIS EKS 4.2.9; Checkov CKV_K8S_37",
        _per_container(_drop_all),
    ),
    _pss(
        "k8s-seccomp-runtime-default",
        "Containers run with the RuntimeDefault (or a Localhost) seccomp profile.",
        "Unconfined syscalls widen the kernel attack surface.",
        "Pod Security Standards (restricted); Checkov CKV_K8S_31",
        _per_container(_seccomp),
    ),
    _pss(
        "k8s-read-only-root",
        "Containers have a read-only root filesystem, unless the workload documents an "
        f"exception with the {WRITABLE_ROOT_ANNOTATION} annotation.",
        "An attacker cannot drop tools or modify binaries in a read-only container.",
        "EKS Best Practices (Pod security); Checkov CKV_K8S_22",
        _read_only_root,
    ),
    ResourceRule(
        "k8s-read-only-root-exception",
        "advisory",
        WORKLOAD_TYPES,
        "Reports writable root filesystems covered by a documented exception annotation.",
        "Exceptions stay visible in every preview until they are removed.",
        "EKS Best Practices (Pod security); Checkov CKV_K8S_22",
        _read_only_root_exception,
    ),
    _pss(
        "k8s-resources",
        "Containers request CPU and memory and limit memory.",
        "Without requests the scheduler overcommits nodes; without a memory limit one pod "
        "can starve the node.",
        "EKS Best Practices (Reliability: resource requests); Checkov CKV_K8S_10, "
        "CKV_K8S_12, CKV_K8S_13",
        _per_container(_resources),
    ),
    _pss(
        "k8s-image-pinned",
        "Images are pinned to a version tag or digest (no ':latest', no untagged).",
        "A moving tag makes rollouts irreproducible and rollbacks meaningless.",
        "EKS Best Practices (Image security); Checkov CKV_K8S_14, CKV_K8S_43",
        _per_container(_image),
    ),
    _pss(
        "k8s-no-privileged",
        "No container runs privileged.",
        "A privileged container is root on the node.",
        "Pod Security Standards (baseline); CIS EKS 4.2.1; Checkov CKV_K8S_16",
        _per_container(_privileged),
    ),
    _pss(
        "k8s-no-host-namespaces",
        "Pods do not share the node's network, PID or IPC namespace.",
        "Host namespaces expose node traffic and processes to the pod.",
        "Pod Security Standards (baseline); CIS EKS 4.2.2-4.2.4; Checkov CKV_K8S_17-19",
        _host_namespaces,
    ),
    _pss(
        "k8s-no-default-namespace",
        "Workloads live in a dedicated namespace (not 'default', not unset).",
        "Namespaces are the unit of RBAC, network policy and quotas.",
        "Checkov CKV_K8S_21 (the default namespace should not be used)",
        _namespace,
    ),
    ResourceRule(
        "helm-chart-version-pinned",
        "mandatory",
        HELM_TYPES,
        "Helm releases pin one exact chart version (no empty version, no range).",
        "An unpinned chart changes what a preview shows versus what `pulumi up` installs.",
        "Pulumi component design guidelines (pin what you install); Helm chart best practices",
        _chart_version,
    ),
]
