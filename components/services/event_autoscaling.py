"""KEDA: pods scaled on what the service itself says (queued requests per pod), with
CPU as a floor.

The platform scales inference Deployments through KEDA ``ScaledObject``s rather than
prometheus-adapter: a ScaledObject names its PromQL query, threshold and CPU floor next
to the Deployment it scales, where prometheus-adapter needs one cluster-wide rules
ConfigMap that every service's metric must be added to (and a restart of the adapter to
read it). KEDA runs on the system pool: two operator replicas (one leader) and two
metrics API servers, each kept at one available by a PodDisruptionBudget; its CRDs come
with the chart, so ``ScaledObject``s depend on ``release``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components._k8s import ChartPin, helm_release, namespace, system_placement
from components._tokens import depends_on_of, type_token
from components._validate import Problem, raise_for

KEDA_CHART = ChartPin("https://kedacore.github.io/charts", "keda", "2.20.2")
NAMESPACE = "keda"


@dataclass(frozen=True)
class EventAutoscalingArgs:
    """Inputs of :class:`EventAutoscaling`."""

    system_pool: str = "system"
    """Pool label of the nodes KEDA runs on. Default ``system``."""
    replicas: int = 2
    """Operator, metrics server and webhook replicas, 1 to 3. Default 2."""
    service_monitor: bool = True
    """Let Prometheus scrape KEDA's own metrics (needs the operator CRDs). Default True."""
    chart: ChartPin = KEDA_CHART
    """The KEDA chart. Default ``KEDA_CHART``."""


def validate_event_autoscaling_args(args: EventAutoscalingArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    if not 1 <= args.replicas <= 3:
        return [Problem("replicas", "must be from 1 to 3", args.replicas)]
    return []


def keda_values(args: EventAutoscalingArgs) -> dict[str, object]:
    """The chart's values: replicas, their PDBs, the system pool, metrics scraped."""
    pdb = {"minAvailable": 1} if args.replicas > 1 else {}
    monitor = {"enabled": True, "serviceMonitor": {"enabled": args.service_monitor}}
    return {
        "crds": {"install": True},
        "operator": {"replicaCount": args.replicas},
        "metricsServer": {"replicaCount": args.replicas},
        "webhooks": {"replicaCount": args.replicas},
        "podDisruptionBudget": {"operator": pdb, "metricServer": pdb, "webhooks": pdb},
        "prometheus": {"operator": monitor, "metricServer": monitor},
        **system_placement(args.system_pool),
    }


class EventAutoscaling(pulumi.ComponentResource):
    """KEDA in namespace ``keda``. ``opts.providers`` must carry the cluster's
    Kubernetes provider; the release waits for what ``opts.depends_on`` names.
    ``release`` is what ``ScaledObject``s must depend on."""

    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: EventAutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("EventAutoscalingArgs", validate_event_autoscaling_args(args))
        super().__init__(type_token("EventAutoscaling"), name, None, opts)
        ns = namespace(NAMESPACE, parent=self)
        self.release = helm_release(
            f"{name}-keda",
            pin=args.chart,
            namespace=ns.metadata.name,
            release_name="keda",
            values=keda_values(args),
            parent=self,
            depends_on=[ns, *depends_on_of(opts)],
        )
        self.register_outputs({})
