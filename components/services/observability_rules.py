"""The inference service's SLOs as Prometheus rules: recording rules, burn-rate alerts.

``slo_rule_groups(targets, runbook_base_url=...)`` returns the ``spec.groups`` of a
PrometheusRule (plain dicts, the CRD's camelCase keys); ``rules_yaml(groups)`` renders
the same groups as a Prometheus rule file for ``promtool check rules`` / ``test rules``.

The SLIs come from ``serving/metrics.py``: ``serving_requests_total{model,endpoint,code}``
counts answered requests by HTTP status code and ``serving_request_duration_seconds``
is their latency. A request is *successful* unless its code is a server error (5xx,
``code=~"5.."``): 4xx answers (400 bad input, 404 unknown model, 413, 429 queue full,
499 client gone) are the client's errors or deliberate back-pressure and do not burn
the availability budget. 503 (draining, not ready) and 504 (deadline exceeded) do.
Queue saturation has its own alert on the 429 ratio.

Availability alerts follow the multi-window, multi-burn-rate scheme of the Google SRE
workbook ("Alerting on SLOs", table 5-8): page when 2 % of the budget burns in 1 h
(14.4x over 1 h and 5 m) or 5 % in 6 h (6x over 6 h and 30 m); open a ticket when 10 %
burns in 3 d (1x over 3 d and 6 h). The factors are derived from ``window_days``, so a
30-day window gives the workbook's numbers exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from components._validate import Problem, raise_for

#: Windows the SLIs are recorded over (the burn-rate alerts read six of them).
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: Latency quantiles recorded per model.
LATENCY_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
#: Share of requests refused with 429 (queue full) over 5 m that means saturation.
QUEUE_REJECT_RATIO = 0.01
#: Share of a GPU's framebuffer in use that means "near full".
GPU_MEMORY_RATIO = 0.9
#: Namespace of the inference pods when none is given.
DEFAULT_NAMESPACE = "inference"

_SERVER_ERROR = 'code=~"5.."'

#: Alert name -> runbook file under ``docs/runbooks/`` (the alert's ``runbook_url``).
RUNBOOKS: dict[str, str] = {
    "InferenceErrorBudgetBurnFast": "error-budget-burn.md",
    "InferenceErrorBudgetBurnSlow": "error-budget-burn.md",
    "InferenceErrorBudgetBurnTicket": "error-budget-burn.md",
    "InferenceHighErrorRate": "error-budget-burn.md",
    "InferenceHighLatencyP95": "high-latency.md",
    "InferenceQueueSaturated": "queue-saturation.md",
    "InferencePodNotReady": "pod-not-ready.md",
    "InferenceGpuMemoryNearFull": "gpu-saturation.md",
}


@dataclass(frozen=True)
class SloTargets:
    """Service level objectives of every served model."""

    availability_percent: float = 99.9
    """Share of requests answered without a server error (5xx); default 99.9."""
    latency_p95_ms: int = 100
    """95th percentile of request latency, in milliseconds; default 100."""
    error_rate_percent: float = 0.1
    """Share of requests answered with a 5xx that raises an alert; default 0.1."""
    window_days: int = 30
    """The SLO period the error budget is spent over; default 30 days."""

    @property
    def error_budget(self) -> float:
        """The allowed failure ratio (0.001 for 99.9 %)."""
        return 1.0 - self.availability_percent / 100.0


@dataclass(frozen=True)
class BurnRateAlert:
    """One row of the workbook's table: budget share spent within a long window."""

    alert: str
    budget_share: float
    long_window: str
    long_hours: float
    short_window: str
    for_: str
    severity: str

    def factor(self, window_days: int) -> float:
        """Burn rate that spends ``budget_share`` of the budget within the long window."""
        return round(self.budget_share * window_days * 24 / self.long_hours, 4)


BURN_RATE_ALERTS = (
    BurnRateAlert("InferenceErrorBudgetBurnFast", 0.02, "1h", 1, "5m", "2m", "critical"),
    BurnRateAlert("InferenceErrorBudgetBurnSlow", 0.05, "6h", 6, "30m", "15m", "critical"),
    BurnRateAlert("InferenceErrorBudgetBurnTicket", 0.10, "3d", 72, "6h", "1h", "warning"),
)


def success_ratio_record(window: str) -> str:
    """Name of the recorded success ratio over ``window`` (``model:...:ratio_rate5m``)."""
    return f"model:serving_requests_success:ratio_rate{window}"


def latency_record(quantile: str, window: str = "5m") -> str:
    """Name of the recorded latency quantile (``p95``) in seconds over ``window``."""
    return f"model:serving_request_duration_seconds:{quantile}_{window}"


def _success_ratio_expr(window: str) -> str:
    # "or 0 * total": a model whose every request failed still has a ratio (0), so the
    # burn-rate alert fires instead of the series vanishing.
    total = f"sum by (model) (rate(serving_requests_total[{window}]))"
    ok = f'sum by (model) (rate(serving_requests_total{{code!~"5.."}}[{window}]))'
    return f"({ok} or 0 * {total})\n/\n{total}"


def _recording_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for window in SLI_WINDOWS:
        rules.append(
            {
                "record": f"model:serving_requests:rate{window}",
                "expr": f"sum by (model) (rate(serving_requests_total[{window}]))",
            }
        )
        rules.append({"record": success_ratio_record(window), "expr": _success_ratio_expr(window)})
    for name, q in LATENCY_QUANTILES.items():
        rules.append(
            {
                "record": latency_record(name),
                "expr": f"histogram_quantile({q}, sum by (model, le) "
                "(rate(serving_request_duration_seconds_bucket[5m])))",
            }
        )
    return rules


def _alert(
    name: str,
    expr: str,
    *,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    runbook_base_url: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_base_url.rstrip("/") + "/" + RUNBOOKS[name],
        },
    }


def _slo_alerts(targets: SloTargets, base: str) -> list[dict[str, Any]]:
    budget = targets.error_budget
    alerts: list[dict[str, Any]] = []
    for row in BURN_RATE_ALERTS:
        factor = row.factor(targets.window_days)
        threshold = f"({factor:g} * {budget:.6g})"
        expr = (
            f"(1 - {success_ratio_record(row.long_window)}) > {threshold}\n"
            f"and\n(1 - {success_ratio_record(row.short_window)}) > {threshold}"
        )
        alerts.append(
            _alert(
                row.alert,
                expr,
                for_=row.for_,
                severity=row.severity,
                summary=f"Model {{{{ $labels.model }}}} burns its error budget {factor:g}x "
                "too fast",
                description=(
                    f"Over {row.long_window} and {row.short_window} more than "
                    f"{factor:g} x {budget * 100:.3g} % of requests to model "
                    f"{{{{ $labels.model }}}} failed with a 5xx: at this rate "
                    f"{row.budget_share * 100:g} % of the {targets.window_days}-day error "
                    f"budget ({targets.availability_percent:g} % availability) is gone "
                    f"within {row.long_window}."
                ),
                runbook_base_url=base,
            )
        )
    latency_s = targets.latency_p95_ms / 1000.0
    alerts.append(
        _alert(
            "InferenceHighLatencyP95",
            f"{latency_record('p95')} > {latency_s:g}",
            for_="10m",
            severity="warning",
            summary=f"Model {{{{ $labels.model }}}} p95 latency above {targets.latency_p95_ms} ms",
            description=(
                "The 95th percentile of request latency of model {{ $labels.model }} "
                f"has been above the {targets.latency_p95_ms} ms objective for 10 minutes."
            ),
            runbook_base_url=base,
        )
    )
    error_ratio = targets.error_rate_percent / 100.0
    alerts.append(
        _alert(
            "InferenceHighErrorRate",
            f"(1 - {success_ratio_record('5m')}) > {error_ratio:g}",
            for_="5m",
            severity="warning",
            summary=f"Model {{{{ $labels.model }}}} 5xx ratio above "
            f"{targets.error_rate_percent:g} %",
            description=(
                "More than "
                f"{targets.error_rate_percent:g} % of requests to model {{{{ $labels.model }}}} "
                "were answered with a server error (5xx) over 5 minutes."
            ),
            runbook_base_url=base,
        )
    )
    return alerts


def _capacity_alerts(namespace: str, base: str) -> list[dict[str, Any]]:
    rejected = "sum by (model) (rate(serving_rejected_total[5m]))"
    total = "sum by (model) (rate(serving_requests_total[5m]))"
    return [
        _alert(
            "InferenceQueueSaturated",
            f"{rejected}\n/\n{total} > {QUEUE_REJECT_RATIO:g}",
            for_="5m",
            severity="warning",
            summary="Model {{ $labels.model }} refuses requests: batch queue full (429)",
            description=(
                f"More than {QUEUE_REJECT_RATIO * 100:g} % of requests to model "
                "{{ $labels.model }} were refused with 429 because its batch queue was "
                "full, for 5 minutes."
            ),
            runbook_base_url=base,
        ),
        _alert(
            "InferencePodNotReady",
            f'max by (namespace, pod) (kube_pod_status_ready{{namespace="{namespace}", '
            'condition="false"}) == 1',
            for_="10m",
            severity="warning",
            summary="Pod {{ $labels.namespace }}/{{ $labels.pod }} not ready",
            description=(
                "Pod {{ $labels.pod }} in namespace {{ $labels.namespace }} has not been "
                "ready for 10 minutes: it receives no traffic."
            ),
            runbook_base_url=base,
        ),
        _alert(
            "InferenceGpuMemoryNearFull",
            "DCGM_FI_DEV_FB_USED\n/\n(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > "
            f"{GPU_MEMORY_RATIO:g}",
            for_="10m",
            severity="warning",
            summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }} memory "
            f"above {GPU_MEMORY_RATIO * 100:g} %",
            description=(
                "GPU {{ $labels.gpu }} on node {{ $labels.Hostname }} has used more than "
                f"{GPU_MEMORY_RATIO * 100:g} % of its framebuffer memory for 10 minutes: "
                "the next model load or larger batch can fail with out-of-memory."
            ),
            runbook_base_url=base,
        ),
    ]


def slo_problems(targets: SloTargets) -> list[Problem]:
    """Every problem with ``targets`` (empty when they make an SLO), fields named
    ``slo.<field>``."""
    problems: list[Problem] = []
    for name, value in (
        ("availability_percent", targets.availability_percent),
        ("error_rate_percent", targets.error_rate_percent),
    ):
        if not 0 < value < 100:
            problems.append(Problem(f"slo.{name}", "must be between 0 and 100 (exclusive)", value))
    for name, value in (
        ("latency_p95_ms", targets.latency_p95_ms),
        ("window_days", targets.window_days),
    ):
        if value <= 0:
            problems.append(Problem(f"slo.{name}", "must be positive", value))
    return problems


def slo_rule_groups(
    targets: SloTargets, *, runbook_base_url: str, namespace: str = DEFAULT_NAMESPACE
) -> list[dict[str, Any]]:
    """Return the PrometheusRule ``spec.groups`` for the inference service.

    Three groups: ``mlplatform-serving-sli`` (recording rules per model: request rate
    and success ratio over ``SLI_WINDOWS``, latency p50/p95/p99 over 5 m),
    ``mlplatform-serving-slo`` (burn-rate, latency and error-rate alerts) and
    ``mlplatform-serving-capacity`` (429 saturation, pods of ``namespace`` not ready,
    GPU memory). Every alert has ``labels.severity`` (critical pages, warning opens a
    ticket) and ``summary``, ``description`` and ``runbook_url`` annotations, the URL
    being ``runbook_base_url`` + ``/`` + its ``RUNBOOKS`` file.

    Raises :class:`~components._validate.ValidationError` (a ``ValueError``) for targets
    that make no SLO (see :func:`slo_problems`).
    """
    raise_for("SloTargets", slo_problems(targets))
    return [
        {"name": "mlplatform-serving-sli", "rules": _recording_rules()},
        {"name": "mlplatform-serving-slo", "rules": _slo_alerts(targets, runbook_base_url)},
        {
            "name": "mlplatform-serving-capacity",
            "rules": _capacity_alerts(namespace, runbook_base_url),
        },
    ]


class _RuleDumper(yaml.SafeDumper):
    """Writes multi-line expressions as ``|`` blocks, as people write rule files."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RuleDumper.add_representer(str, _str_presenter)


def rules_yaml(groups: list[dict[str, Any]]) -> str:
    """Render ``groups`` as a Prometheus rule file (``groups:`` at the top level)."""
    return yaml.dump({"groups": groups}, Dumper=_RuleDumper, sort_keys=False, width=100)
