"""SLA report: each model's availability, p95 latency and error rate against the SLOs.

``python -m infra.sla_report --prometheus URL [--window 30d] [--json] [--stack dev|prod]
[--model NAME ...]`` asks Prometheus' HTTP API (``/api/v1/query``, one instant query
per SLI at the current time) for, per model over the window:

- availability: share of requests not answered with a 5xx (4xx are the client's);
- p95 latency: ``histogram_quantile(0.95, ...)`` of the window's bucket increases;
- error rate: share of requests answered with a 5xx.

Targets come from the stack file (``mlplatform:sloAvailabilityPercent``,
``mlplatform:sloLatencyP95Ms``, ``mlplatform:sloErrorRatePercent``), each falling back
to ``SloTargets()``'s default when absent (or when no ``--stack`` is given).

Exit status: 0 every target met; 1 a target breached; 2 usage error, unreadable
stack config, unreachable Prometheus or no data in the window (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass

from components.services.observability_rules import SloTargets
from infra import prometheus


class ReportError(Exception):
    """A problem that ends the report with exit status 2 (the message is the one line)."""


@dataclass(frozen=True)
class ModelSla:
    """One model's SLIs over the window, and the targets it breached."""

    availability_percent: float
    latency_p95_ms: float | None
    error_rate_percent: float
    error_budget_remaining_percent: float
    breached: list[str]


def load_targets(stack: str | None) -> SloTargets:
    """Return the stack's SLO targets, read and checked by ``infra.config`` like every
    other setting (``Pulumi.yaml``'s defaults fill what the stack leaves out); without a
    stack, ``SloTargets()`` (the same defaults).

    Raises ``ReportError`` for an unknown stack, an unreadable stack file or an invalid
    configuration (one line naming each bad key).
    """
    if stack is None:
        return SloTargets()
    from infra import stack_args
    from infra.config import ConfigError, stack_settings
    from infra.offline.stack_file import PlanInputError

    try:
        settings = stack_settings(stack)
    except (PlanInputError, ConfigError) as exc:
        raise ReportError(str(exc)) from None
    return stack_args.slo_targets(settings)


def query(base_url: str, promql: str) -> dict[str, float]:
    """Run an instant query; return {model: value} of its vector result.

    Raises ``ReportError`` naming the URL when Prometheus cannot be reached or answers
    with an error.
    """
    try:
        samples = prometheus.instant(base_url, promql)
    except prometheus.PrometheusError as exc:
        raise ReportError(str(exc)) from None
    return {labels.get("model", ""): value for labels, value in samples}


def _selector(models: list[str], extra: str = "") -> str:
    matchers = [extra] if extra else []
    if models:
        # Regex-escaped, then escaped again for PromQL's double-quoted string literal.
        pattern = "|".join(re.escape(m) for m in models).replace("\\", "\\\\")
        matchers.append(f'model=~"{pattern}"')
    return "{" + ", ".join(matchers) + "}"


def measure(base_url: str, window: str, models: list[str]) -> dict[str, dict[str, float]]:
    """Return {model: {"total", "errors", "p95_s"}} over ``window`` (errors 0 if none)."""
    sel, err_sel = _selector(models), _selector(models, 'code=~"5.."')
    total = query(base_url, f"sum by (model) (increase(serving_requests_total{sel}[{window}]))")
    errors = query(
        base_url, f"sum by (model) (increase(serving_requests_total{err_sel}[{window}]))"
    )
    p95 = query(
        base_url,
        "histogram_quantile(0.95, sum by (model, le) "
        f"(increase(serving_request_duration_seconds_bucket{sel}[{window}])))",
    )
    out: dict[str, dict[str, float]] = {}
    for model, count in total.items():
        if count > 0:
            out[model] = {"total": count, "errors": errors.get(model, 0.0)}
            if model in p95:
                out[model]["p95_s"] = p95[model]
    return out


def evaluate(raw: dict[str, float], targets: SloTargets) -> ModelSla:
    """Turn one model's counts into SLIs and the list of breached targets."""
    error_ratio = raw["errors"] / raw["total"]
    availability = 100.0 * (1.0 - error_ratio)
    latency = raw["p95_s"] * 1000.0 if "p95_s" in raw else None
    budget = targets.error_budget
    breached: list[str] = []
    if availability < targets.availability_percent:
        breached.append("availability")
    if latency is None or latency > targets.latency_p95_ms:
        breached.append("latency_p95")  # no latency data cannot show the target is met
    if 100.0 * error_ratio > targets.error_rate_percent:
        breached.append("error_rate")
    return ModelSla(
        availability_percent=round(availability, 4),
        latency_p95_ms=None if latency is None else round(latency, 2),
        error_rate_percent=round(100.0 * error_ratio, 4),
        error_budget_remaining_percent=round(100.0 * (1.0 - error_ratio / budget), 2),
        breached=breached,
    )


def _table(window: str, targets: SloTargets, models: dict[str, ModelSla]) -> str:
    lines = [
        f"SLA over {window}: availability >= {targets.availability_percent:g} %, "
        f"p95 <= {targets.latency_p95_ms} ms, 5xx <= {targets.error_rate_percent:g} %",
        f"{'model':<24} {'avail %':>9} {'p95 ms':>9} {'5xx %':>8} {'budget left %':>14}  status",
    ]
    for name, sla in sorted(models.items()):
        p95 = "-" if sla.latency_p95_ms is None else f"{sla.latency_p95_ms:.1f}"
        status = "BREACHED: " + ", ".join(sla.breached) if sla.breached else "ok"
        lines.append(
            f"{name:<24} {sla.availability_percent:>9.3f} {p95:>9} "
            f"{sla.error_rate_percent:>8.3f} {sla.error_budget_remaining_percent:>14.1f}  {status}"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.sla_report", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--window", default="30d", help="Prometheus duration (default 30d)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--stack", help="read the SLO targets from Pulumi.<stack>.yaml")
    parser.add_argument(
        "--model", action="append", default=[], help="report only this model (repeatable)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the report; return the exit status (0 met, 1 breached, 2 error)."""
    args = _parser().parse_args(argv)  # exits 2 on usage errors
    try:
        prometheus.check_window(args.window)
        prometheus.check_url(args.prometheus)
        targets = load_targets(args.stack)
        raw = measure(args.prometheus, args.window, args.model)
        if not raw:
            scope = f" for model(s) {', '.join(args.model)}" if args.model else ""
            raise ReportError(
                f"no requests recorded by Prometheus at {args.prometheus}{scope} "
                f"in the last {args.window}"
            )
    except (ReportError, prometheus.PrometheusError) as exc:
        print(f"sla_report: {exc}", file=sys.stderr)
        return 2
    models = {name: evaluate(counts, targets) for name, counts in raw.items()}
    if args.json:
        document = {
            "window": args.window,
            "targets": asdict(targets),
            "models": {name: asdict(sla) for name, sla in sorted(models.items())},
        }
        print(json.dumps(document, indent=2))
    else:
        print(_table(args.window, targets, models))
    return 1 if any(sla.breached for sla in models.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
