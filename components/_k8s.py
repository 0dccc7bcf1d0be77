"""Kubernetes plumbing shared by the components: pinned Helm releases, namespaces with Pod
Security, restricted security contexts, and the node contract.

Functions, not components: a component calls them for its own children, so every
release, namespace and pod the platform creates follows the same rules.

The node contract (one set of labels and taints) is used by the managed node groups, the
Karpenter node pools and the workloads that choose a pool:

- ``mlplatform.io/pool=<pool>`` names the pool a node belongs to;
- ``mlplatform.io/capacity=on-demand|spot`` says how it is bought;
- ``mlplatform.io/os=al2023|bottlerocket`` names the node OS (no built-in label does;
  Bottlerocket's NVIDIA variants run the device plugin on the host);
- GPU nodes are tainted ``nvidia.com/gpu=true:NoSchedule`` and labelled
  ``nvidia.com/gpu.present=true``;
- a system pool may be tainted ``CriticalAddonsOnly=true:NoSchedule`` so that only the
  cluster's own add-ons (which tolerate it) run there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

POOL_LABEL = "mlplatform.io/pool"
CAPACITY_LABEL = "mlplatform.io/capacity"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
OS_LABEL = "mlplatform.io/os"
GPU_RESOURCE = "nvidia.com/gpu"
CRITICAL_ADDONS_KEY = "CriticalAddonsOnly"
POD_SECURITY_REASON_ANNOTATION = "mlplatform.io/pod-security-reason"

Capacity = Literal["on-demand", "spot"]
NodeOs = Literal["al2023", "bottlerocket"]
PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
TaintEffect = Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
# Keys that hold a credential themselves (``adminPassword``, ``authToken``, ``secret``);
# references to one (``existingSecret``, ``passwordKey``, ``secretName``) do not match.
_SECRET_KEY = re.compile(
    r"^(secret|apikey|api_key|privatekey|accesskey|secretaccesskey|clientsecret)$"
    r"|(password|passwd|token)$",
    re.I,
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class NodeTaint:
    """A node taint in Kubernetes spelling (``NoSchedule``)."""

    key: str
    value: str
    effect: TaintEffect = "NoSchedule"

    def toleration(self) -> dict[str, str]:
        """Return the pod toleration that matches exactly this taint."""
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


GPU_TAINT = NodeTaint(GPU_RESOURCE, "true")
CRITICAL_ADDONS_TAINT = NodeTaint(CRITICAL_ADDONS_KEY, "true")


def node_labels(
    pool: str, capacity: Capacity | None, *, gpu: bool = False, os: NodeOs = "al2023"
) -> dict[str, str]:
    """Return the labels every node of ``pool`` carries (no capacity label for a pool
    that mixes spot and on-demand: Karpenter's ``karpenter.sh/capacity-type`` says)."""
    labels = {POOL_LABEL: pool, OS_LABEL: os}
    if capacity:
        labels[CAPACITY_LABEL] = capacity
    if gpu:
        labels[GPU_PRESENT_LABEL] = "true"
    return labels


def node_taints(*, gpu: bool = False, critical_addons_only: bool = False) -> list[NodeTaint]:
    """Return the taints of a pool: the GPU taint for GPU pools, the critical-add-ons
    taint for a system pool that keeps other work off."""
    taints: list[NodeTaint] = []
    if gpu:
        taints.append(GPU_TAINT)
    if critical_addons_only:
        taints.append(CRITICAL_ADDONS_TAINT)
    return taints


def pool_selector(pool: str) -> dict[str, str]:
    """Return the ``nodeSelector`` that places a pod on ``pool``."""
    return {POOL_LABEL: pool}


def critical_addon_tolerations() -> list[dict[str, str]]:
    """Tolerations of a cluster add-on pinned to the system pool."""
    return [{"key": CRITICAL_ADDONS_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def system_placement(pool: str) -> dict[str, object]:
    """``nodeSelector`` and ``tolerations`` of a platform service on the system pool
    ``pool`` (it tolerates the pool's optional ``CriticalAddonsOnly`` taint)."""
    return {"nodeSelector": pool_selector(pool), "tolerations": critical_addon_tolerations()}


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart at one exact version from one repository.

    Raises ``ValueError`` when ``version`` is a range or a tag rather than an exact
    version, or the repository is not an https or oci URL.
    """

    repository: str
    chart: str
    version: str

    def __post_init__(self) -> None:
        if not _EXACT_VERSION.match(self.version):
            raise ValueError(
                f"ChartPin {self.chart}: version {self.version!r} must be exact (e.g. 1.2.3)"
            )
        if not self.repository.startswith(("https://", "oci://")):
            raise ValueError(
                f"ChartPin {self.chart}: repository {self.repository!r} must be https:// or oci://"
            )


def secret_value_paths(values: Any, path: str = "") -> list[str]:
    """Return the dotted paths in Helm ``values`` whose key names a credential and whose
    value is set (a password belongs in a Kubernetes Secret the chart references)."""
    found: list[str] = []
    if isinstance(values, Mapping):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            if (
                _SECRET_KEY.search(str(key))
                and value not in (None, "", {}, [])
                and not (isinstance(value, Mapping | bool))
            ):
                found.append(here)
            found += secret_value_paths(value, here)
    elif isinstance(values, list | tuple):
        for index, item in enumerate(values):
            found += secret_value_paths(item, f"{path}[{index}]")
    return found


def helm_release(
    name: str,
    *,
    pin: ChartPin,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    parent: pulumi.Resource,
    timeout_s: int = 600,
    depends_on: Sequence[pulumi.Resource] = (),
    release_name: str | None = None,
    skip_crds: bool = False,
) -> k8s.helm.v3.Release:
    """Install ``pin`` as a Helm release that either fully succeeds or rolls back.

    ``atomic`` with ``cleanup_on_fail``, a bounded ``timeout_s`` (default 600), ten
    revisions of history, and never ``create_namespace`` (namespaces come from
    :func:`namespace`, with their Pod Security labels). An ``oci://`` repository is
    addressed through the chart reference itself. ``skip_crds`` leaves the chart's CRDs to
    a separate CRD chart (Helm installs CRDs only once and never upgrades them). Raises
    ``ValueError`` when
    ``values`` sets a credential-named key: charts get Secret references instead.
    """
    leaked = secret_value_paths(values)
    if leaked:
        raise ValueError(
            f"helm release {name}: values {leaked} look like credentials; put them in a "
            "Kubernetes Secret and pass the chart its name (e.g. existingSecret)"
        )
    oci = pin.repository.startswith("oci://")
    return k8s.helm.v3.Release(
        name,
        name=release_name or name,
        chart=f"{pin.repository}/{pin.chart}" if oci else pin.chart,
        version=pin.version,
        repository_opts=None if oci else {"repo": pin.repository},
        skip_crds=skip_crds,
        namespace=namespace,
        create_namespace=False,
        atomic=True,
        cleanup_on_fail=True,
        timeout=timeout_s,
        max_history=10,
        values=dict(values),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def namespace(
    name: str,
    *,
    parent: pulumi.Resource,
    pod_security: PodSecurityLevel = "restricted",
    reason: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> k8s.core.v1.Namespace:
    """Create namespace ``name`` with Pod Security admission at ``pod_security``.

    The level is enforced, audited and warned. ``privileged`` needs a ``reason`` (recorded
    as the ``mlplatform.io/pod-security-reason`` annotation); raises ``ValueError``
    without one, or for a name that is not a DNS label.
    """
    if not _DNS_LABEL.match(name):
        raise ValueError(f"namespace {name!r} must be a DNS label ([a-z0-9-], at most 63)")
    if pod_security == "privileged" and not (reason and reason.strip()):
        raise ValueError(f"namespace {name}: pod_security 'privileged' needs a reason")
    annotations = {POD_SECURITY_REASON_ANNOTATION: reason} if reason else {}
    security = {
        f"pod-security.kubernetes.io/{mode}": pod_security for mode in ("enforce", "audit", "warn")
    }
    return k8s.core.v1.Namespace(
        name,
        metadata={
            "name": name,
            "labels": {**dict(labels or {}), **security},
            "annotations": annotations,
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def restricted_pod_security_context(*, uid: int = 10001) -> dict[str, Any]:
    """The pod-level security context of a first-party workload (Pod Security
    ``restricted``): non-root ``uid``, RuntimeDefault seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security_context() -> dict[str, Any]:
    """The container-level security context of a first-party workload: no privilege
    escalation, every capability dropped, read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
