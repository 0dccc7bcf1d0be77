"""GPUs pods can use and operators can see: the NVIDIA device plugin and DCGM exporter.

Both run only on GPU nodes (the node contract's ``nvidia.com/gpu.present=true`` label, a
toleration for the ``nvidia.com/gpu`` taint). The device plugin advertises
``nvidia.com/gpu`` to the kubelet; without it every GPU pod stays Pending. Bottlerocket's
NVIDIA variants run the device plugin on the host, so the chart's DaemonSet keeps off
nodes labelled ``mlplatform.io/os=bottlerocket``. The DCGM exporter publishes GPU metrics
(``DCGM_FI_DEV_GPU_UTIL``, ``DCGM_FI_DEV_FB_USED``...); its ServiceMonitor is created only
when the Prometheus Operator's CRDs exist (``service_monitor``, set by the program once
observability is installed), because the chart does not check for them.

Both charts mount host paths (the kubelet's device-plugin and pod-resources sockets) and
the exporter adds ``SYS_ADMIN`` for profiling metrics, so their namespace is
``privileged``, with that reason recorded on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components._k8s import (
    GPU_PRESENT_LABEL,
    GPU_TAINT,
    OS_LABEL,
    ChartPin,
    helm_release,
    namespace,
)
from components._tokens import depends_on_of, type_token

DEVICE_PLUGIN_CHART = ChartPin(
    "https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.20.0"
)
DCGM_EXPORTER_CHART = ChartPin(
    "https://nvidia.github.io/dcgm-exporter/helm-charts", "dcgm-exporter", "4.8.2"
)
NAMESPACE = "nvidia"


@dataclass(frozen=True)
class GpuSupportArgs:
    """Inputs of :class:`GpuSupport`."""

    service_monitor: bool = False
    """Create the DCGM exporter's ServiceMonitor (needs the Prometheus Operator CRDs).
    Default False."""
    device_plugin_chart: ChartPin = DEVICE_PLUGIN_CHART
    """The device plugin chart. Default ``DEVICE_PLUGIN_CHART``."""
    dcgm_exporter_chart: ChartPin = DCGM_EXPORTER_CHART
    """The DCGM exporter chart. Default ``DCGM_EXPORTER_CHART``."""


def gpu_node_affinity() -> dict[str, object]:
    """Required node affinity: GPU nodes that do not run the plugin on the host."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]},
                            {"key": OS_LABEL, "operator": "NotIn", "values": ["bottlerocket"]},
                        ]
                    }
                ]
            }
        }
    }


class GpuSupport(pulumi.ComponentResource):
    """The NVIDIA device plugin and DCGM exporter on the GPU nodes.

    ``opts.providers`` must carry the cluster's Kubernetes provider; the exporter waits
    for what ``opts.depends_on`` names.
    """

    device_plugin: k8s.helm.v3.Release
    dcgm_exporter: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: GpuSupportArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("GpuSupport"), name, None, opts)
        after = depends_on_of(opts)
        ns = namespace(
            NAMESPACE,
            parent=self,
            pod_security="privileged",
            reason="the NVIDIA device plugin and DCGM exporter mount the kubelet's host "
            "sockets; the exporter needs SYS_ADMIN for profiling metrics",
        )
        on_gpus = {
            "nodeSelector": {GPU_PRESENT_LABEL: "true"},
            "tolerations": [GPU_TAINT.toleration()],
        }
        self.device_plugin = helm_release(
            f"{name}-device-plugin",
            pin=args.device_plugin_chart,
            namespace=ns.metadata.name,
            release_name="nvidia-device-plugin",
            values={**on_gpus, "affinity": gpu_node_affinity(), "gfd": {"enabled": False}},
            parent=self,
        )
        self.dcgm_exporter = helm_release(
            f"{name}-dcgm-exporter",
            pin=args.dcgm_exporter_chart,
            namespace=ns.metadata.name,
            release_name="dcgm-exporter",
            values={**on_gpus, "serviceMonitor": {"enabled": args.service_monitor}},
            parent=self,
            # A ServiceMonitor needs the Prometheus Operator's CRDs: wait for what the
            # program names (the operator's release).
            depends_on=after,
        )
        self.register_outputs({})
