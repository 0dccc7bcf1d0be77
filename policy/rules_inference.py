"""Rules for the inference services: images by digest, probes, a grace period that covers
the drain, GPU pods that tolerate the GPU taint, routes whose weights sum to 100, and
models pinned to versions where the service says they must be.

An inference Deployment is one labelled ``app.kubernetes.io/part-of=mlplatform-inference``
(the label ``components/workloads/inference_pods.py`` sets; copied here because the pack
is published alone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_number,
    dig,
    is_unknown,
    iter_mappings,
    mandatory_rule,
)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
VIRTUAL_SERVICE_TYPES = {
    "kubernetes:networking.istio.io/v1:VirtualService",
    "kubernetes:networking.istio.io/v1beta1:VirtualService",
    "kubernetes:networking.istio.io/v1alpha3:VirtualService",
}
PART_OF = ("app.kubernetes.io/part-of", "mlplatform-inference")
MODEL_PINS = "mlplatform.io/model-pins"
GPU = "nvidia.com/gpu"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_ALIAS = re.compile(r"=models:/[^/@]+@")


def _inference_containers(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if dig(props, "metadata", "labels", PART_OF[0]) != PART_OF[1]:
        return []
    return list(iter_mappings(dig(props, "spec", "template", "spec", "containers")))


def _image_digest(_: str, props: Mapping[str, Any]) -> list[str]:
    found = []
    for box in _inference_containers(props):
        image = dig(box, "image")
        if is_unknown(image) or (isinstance(image, str) and _DIGEST.search(image)):
            continue
        found.append(f"container {dig(box, 'name')!r} image {image!r} is not pinned by digest")
    return found


def _probes(_: str, props: Mapping[str, Any]) -> list[str]:
    return [
        f"container {dig(box, 'name')!r} has no {probe}"
        for box in _inference_containers(props)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
        if dig(box, probe) is MISSING
    ]


def _flag(command: Any, name: str) -> float | None:
    if not isinstance(command, list) or name not in command:
        return None
    at = command.index(name)
    return as_number(command[at + 1]) if at + 1 < len(command) else None


def _grace(_: str, props: Mapping[str, Any]) -> list[str]:
    found = []
    raw = dig(props, "spec", "template", "spec", "terminationGracePeriodSeconds")
    if is_unknown(raw):
        return []
    grace = as_number(raw)
    for box in _inference_containers(props):
        prestop = as_number(dig(box, "lifecycle", "preStop", "sleep", "seconds")) or 0.0
        # A deliberate copy of the service's default drain (serving/settings.py), for a
        # command without the flag: the pack is published alone.
        drain = _flag(dig(box, "command"), "--drain-timeout-s")
        drain = 25.0 if drain is None else drain
        needed = prestop + drain
        if grace is None or grace <= needed:
            found.append(
                f"terminationGracePeriodSeconds {grace if grace is not None else 30:g} is not "
                f"above preStop {prestop:g} s + drain {drain:g} s: pods are killed mid-drain"
            )
    return found


def _gpu_toleration(_: str, props: Mapping[str, Any]) -> list[str]:
    pod = dig(props, "spec", "template", "spec")
    wants = any(
        dig(box, "resources", "limits", GPU) not in (MISSING, None, "0", 0)
        for box in iter_mappings(dig(pod, "containers"))
    )
    if not wants:
        return []
    tolerations = dig(pod, "tolerations")
    if is_unknown(tolerations):
        return []
    if any(dig(t, "key") == GPU for t in iter_mappings(tolerations)):
        return []
    return [f"a container requests {GPU} but the pod does not tolerate the {GPU} taint"]


def _weights(_: str, props: Mapping[str, Any]) -> list[str]:
    found = []
    for route in iter_mappings(dig(props, "spec", "http")):
        destinations = list(iter_mappings(dig(route, "route")))
        weights = [dig(d, "weight") for d in destinations]
        if len(destinations) < 2 or any(is_unknown(w) for w in weights):
            continue
        total = sum(as_number(w) or 0 for w in weights if w is not MISSING)
        if total != 100:
            found.append(f"route {dig(route, 'name')!r} weights sum to {total:g}, not 100")
    return found


def _model_pins(_: str, props: Mapping[str, Any]) -> list[str]:
    annotations = dig(props, "spec", "template", "metadata", "annotations")
    if dig(annotations, MODEL_PINS) == "aliases-allowed":
        return []
    found = []
    for box in _inference_containers(props):
        command = dig(box, "command")
        for arg in command if isinstance(command, list) else []:
            if isinstance(arg, str) and _ALIAS.search(arg):
                found.append(f"model {arg!r} is an alias; pin a version (models:/NAME/VERSION)")
    return found


RULES: list[ResourceRule] = [
    mandatory_rule(
        "inference-image-digest",
        {DEPLOYMENT},
        "Inference Deployments run their image by digest (repository@sha256:...).",
        "A tag can be moved: two pods of one release could run different code, and a "
        "rollback would not restore what ran before.",
        "Kubernetes docs (Images: image pull by digest); SLSA build provenance",
        _image_digest,
    ),
    mandatory_rule(
        "inference-probes",
        {DEPLOYMENT},
        "Inference containers have startup, readiness and liveness probes.",
        "Without readiness a pod takes traffic before its models load; without liveness "
        "a hung pod keeps its share; without startup a slow model load is killed.",
        "Kubernetes docs (Configure liveness, readiness and startup probes)",
        _probes,
    ),
    mandatory_rule(
        "inference-grace-period",
        {DEPLOYMENT},
        "An inference pod's terminationGracePeriodSeconds is above preStop + the drain timeout.",
        "The kubelet kills the pod when the grace period ends: admitted requests still "
        "draining are lost.",
        "Kubernetes docs (Pod termination); serving drain contract (docs/inference.md)",
        _grace,
    ),
    mandatory_rule(
        "gpu-pod-tolerates-gpu-taint",
        {DEPLOYMENT},
        "A Deployment requesting nvidia.com/gpu tolerates the nvidia.com/gpu taint.",
        "GPU nodes are tainted; a GPU pod without the toleration stays Pending forever.",
        "EKS Best Practices (AI/ML: compute); NVIDIA device plugin docs",
        _gpu_toleration,
    ),
    mandatory_rule(
        "virtualservice-weights-100",
        VIRTUAL_SERVICE_TYPES,
        "Weighted VirtualService routes sum to 100.",
        "Istio rejects or renormalises other sums: a canary would take a share nobody set.",
        "Istio docs (VirtualService HTTPRouteDestination.weight)",
        _weights,
    ),
    mandatory_rule(
        "inference-models-pinned",
        {DEPLOYMENT},
        "Inference models are pinned versions unless the service allows aliases (dev only).",
        "An alias moves in the registry without a deploy: pods started at different times "
        "serve different versions and a rollback has nothing to roll back to.",
        "MLflow docs (model registry aliases); docs/inference.md (promotion)",
        _model_pins,
    ),
]
