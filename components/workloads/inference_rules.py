"""The alerts of one inference service, beside the platform-wide SLO rules.

The SLO rules (``components/services/observability_rules.py``) judge every model by its
answers; these judge a service's capacity: a release pinned at its autoscaler's maximum
(more load would queue, then be refused with 429) and a release with fewer ready pods
than its floor (a rollout stuck on a startup probe, or pods that cannot be placed).
And one judges its inputs: a model whose requests have drifted from its training data
(``serving_drift_detected``, the service's five-test consensus) for half an hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Alert name -> runbook file under ``docs/runbooks/``.
SERVICE_RUNBOOKS: dict[str, str] = {
    "InferenceServiceAtMaxReplicas": "inference-capacity.md",
    "InferenceServiceBelowMinReplicas": "inference-capacity.md",
    "ModelDriftDetected": "model-drift.md",
}
#: How long a feature must stay drifted before anyone is told (checks run each minute).
DRIFT_FOR = "30m"


def service_rule_groups(
    service: str,
    *,
    namespace: str,
    deployments: Sequence[str],
    max_replicas: int,
    runbook_base_url: str,
) -> list[dict[str, Any]]:
    """The PrometheusRule ``spec.groups`` of ``service`` whose releases run as
    ``deployments`` in ``namespace`` (KEDA names each release's HPA ``keda-hpa-<name>``)."""
    base = runbook_base_url.rstrip("/")
    names = "|".join(deployments)
    hpas = "|".join(f"keda-hpa-{d}" for d in deployments)
    at_max = (
        f'kube_horizontalpodautoscaler_status_current_replicas{{namespace="{namespace}", '
        f'horizontalpodautoscaler=~"{hpas}"}} >= {max_replicas}'
    )
    below_min = (
        f'kube_deployment_status_replicas_available{{namespace="{namespace}", '
        f'deployment=~"{names}"}}\n< on (namespace, deployment)\n'
        f'kube_deployment_spec_replicas{{namespace="{namespace}", deployment=~"{names}"}}'
    )
    pods = "|".join(f"{d}-.*" for d in deployments)
    drifted = (
        "max by (namespace, model, feature) (serving_drift_detected"
        f'{{namespace="{namespace}", pod=~"{pods}"}}) == 1'
    )

    def alert(name: str, expr: str, for_: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": "warning", "service": service},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{base}/{SERVICE_RUNBOOKS[name]}",
            },
        }

    return [
        {
            "name": f"mlplatform-inference-{service}",
            "rules": [
                alert(
                    "InferenceServiceAtMaxReplicas",
                    at_max,
                    "15m",
                    f"Inference service {service} has run at its maximum of {max_replicas} "
                    "pods for 15 minutes",
                    "The autoscaler cannot add pods: more load queues, then is refused with "
                    "429. Raise replicas.max or the batching limits.",
                ),
                alert(
                    "InferenceServiceBelowMinReplicas",
                    below_min,
                    "10m",
                    f"Inference service {service} has fewer ready pods than it asks for",
                    "Pods of {{ $labels.deployment }} have not become available for 10 "
                    "minutes: a rollout is stuck or pods cannot be placed.",
                ),
                alert(
                    "ModelDriftDetected",
                    drifted,
                    DRIFT_FOR,
                    f"Model {{{{ $labels.model }}}} of {service} sees drifted "
                    "{{ $labels.feature }}",
                    "The requests' {{ $labels.feature }} has differed from the model's "
                    f"training data for {DRIFT_FOR} (three or more of the five drift tests "
                    "agree). GET /v2/models/{{ $labels.model }}/drift has the figures.",
                ),
            ],
        }
    ]
