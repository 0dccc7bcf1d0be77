"""What a cluster would answer for the Kubernetes objects the program creates.

Every object gets ``metadata`` with its name (the given one, else an auto-name with a
suffix derived from type and name), a ``uid`` and, for namespaced built-in kinds, its
namespace (``default`` when none is given, as the provider's default namespace). The
inputs themselves (``spec``, ``data``, ...) are echoed back by ``PlatformMocks``.

- ``kubernetes:helm.sh/v3:Release``: a ``status`` as Helm reports a first install
  (``deployed``, revision 1, the chart and version asked for). ``appVersion`` comes from
  the chart's own ``Chart.yaml``, which is not available offline, so it is left out.
- ``kubernetes:core/v1:Namespace``: ``status.phase`` ``Active``.
- Any custom resource (``kubernetes:<group>/<version>:<Kind>`` whose group is not one of
  Kubernetes' built-in API groups, e.g. ``karpenter.sh``): metadata with ``generation``
  1 and an empty but present ``status`` (its controller has not reconciled it yet).
  Its scope (namespaced or cluster-wide) is its CRD's, unknown here: the namespace is
  the given one only.
"""

from __future__ import annotations

from typing import Any

from infra.offline.fakes.registry import FakeResource, Registry, ResourceFake

RESOURCES: Registry[ResourceFake] = Registry("infra/offline/fakes/kubernetes.py")

BUILTIN_GROUPS = frozenset(
    {
        "core",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "extensions",
        "meta",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "auditregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "lifecycle.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "settings.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
        # Pulumi's own Kubernetes types (Helm releases, YAML and Kustomize groups).
        "helm.sh",
        "yaml",
        "kustomize",
    }
)
"""API groups served by Kubernetes itself (and Pulumi's own kubernetes types); any other
group comes from a CRD. A suffix rule would not do: ``gateway.networking.k8s.io`` and
``snapshot.storage.k8s.io`` are CRDs. A test checks this against the groups the
``pulumi_kubernetes`` SDK registers."""

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "CSIDriver",
        "CSINode",
        "VolumeAttachment",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "FlowSchema",
        "PriorityLevelConfiguration",
        "CertificateSigningRequest",
    }
)
"""Built-in kinds that live outside any namespace (their metadata has no namespace)."""


def api_group(type_token: str) -> str:
    """Return the API group of a ``kubernetes:<group>/<version>:<Kind>`` token."""
    return type_token.split(":")[1].split("/")[0]


def is_custom_resource(type_token: str) -> bool:
    """True for a ``kubernetes:`` type whose API group no built-in server serves."""
    return api_group(type_token) not in BUILTIN_GROUPS


def _metadata(r: FakeResource, *, namespaced: bool) -> dict[str, Any]:
    h = r.digest
    metadata = dict(r.inputs.get("metadata") or {})
    metadata.setdefault("name", f"{r.name}-{h[:8]}")
    metadata.setdefault("uid", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}")
    if namespaced:
        metadata.setdefault("namespace", "default")
    return metadata


@RESOURCES.fallback("kubernetes:")
def kubernetes_object(r: FakeResource) -> dict[str, Any]:
    """A built-in object (id: its name), or a custom resource (see the module doc)."""
    kind = r.type.rsplit(":", 1)[-1]
    if is_custom_resource(r.type):
        metadata = _metadata(r, namespaced=False)
        metadata.setdefault("generation", 1)
        return {"metadata": metadata, "id": metadata["name"], "status": {}}
    metadata = _metadata(r, namespaced=kind not in CLUSTER_SCOPED_KINDS)
    return {"metadata": metadata, "id": metadata["name"]}


@RESOURCES.register("kubernetes:core/v1:Namespace")
def namespace(r: FakeResource) -> dict[str, Any]:
    """A namespace, ``Active``."""
    out = kubernetes_object(r)
    out["status"] = {"phase": "Active"}
    return out


@RESOURCES.register("kubernetes:helm.sh/v3:Release")
def helm_release(r: FakeResource) -> dict[str, Any]:
    """A Helm release after its first install: the status Helm would report."""
    h = r.digest
    release = r.inputs.get("name") or f"{r.name}-{h[:8]}"
    ns = r.inputs.get("namespace") or "default"
    chart = str(r.inputs.get("chart") or "")
    metadata = _metadata(r, namespaced=False)
    return {
        "metadata": metadata,
        "id": metadata["name"],
        "name": release,
        "namespace": ns,
        "status": {
            "name": release,
            "namespace": ns,
            # A chart given as a URL or repo/chart reference reports its bare name.
            "chart": chart.rstrip("/").rsplit("/", 1)[-1],
            "version": str(r.inputs.get("version") or ""),
            "status": "deployed",
            "revision": 1,
        },
    }
