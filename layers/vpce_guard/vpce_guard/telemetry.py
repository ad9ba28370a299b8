"""Metrics every handler emits, in one place so the dashboard and alarms can rely on their names.

Two sets, both in the namespace of POWERTOOLS_METRICS_NAMESPACE (VpceGuard) with dimension `service`:

* one count per status (`remediated`, `failed`, `flapping`, …), dimensions [service]: what the alarms watch;
* the same counts per rule, dimensions [rule_id, service]: what the dashboard's "by rule and status"
  widgets search for. EMF allows one dimension set per metric blob, so these go out as single metrics.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from .pipeline import RunResult
    from .sweep import SweepPlan, SweepSummary

#: The per-rule dimension (template.yaml's dashboard searches for it).
RULE_DIMENSION = "rule_id"

F = TypeVar("F", bound=Callable[..., Any])


class Untraced:
    """Stands in for Powertools' Tracer when tracing is off: the same decorators, doing nothing.

    Why not `Tracer(disabled=True)`: Powertools' Tracer imports the X-Ray SDK (and wrapt) even when disabled,
    about 25 ms of every cold start of every function (benchmarks, case 4)."""

    def capture_lambda_handler(self, handler: F) -> F:
        return handler

    def capture_method(self, method: F) -> F:
        return method


def tracer() -> Any:
    """A Powertools Tracer when tracing is on (the `Tracing` parameter: POWERTOOLS_TRACE_DISABLED=false),
    else an `Untraced`."""
    if resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_TRACE_DISABLED", "false")):
        return Untraced()
    from aws_lambda_powertools import Tracer

    return Tracer()


def emit_outcome_metrics(metrics: Metrics, result: RunResult) -> None:
    """One count per status (e.g. `remediated`, `failed`) plus one per event disposition, and per rule."""
    for status, n in Counter(o.status.value for o in result.outcomes).items():
        metrics.add_metric(name=status, unit=MetricUnit.Count, value=n)
    if result.disposition != "act":
        metrics.add_metric(name=f"event_{result.disposition}", unit=MetricUnit.Count, value=1)
    if result.published is not None and result.published.failures:  # recorded in the ledger too (publish.py)
        metrics.add_metric(name="publish_failed", unit=MetricUnit.Count, value=len(result.published.failures))
    if is_metrics_disabled():  # single_metric prints whatever POWERTOOLS_METRICS_DISABLED says; Metrics does not
        return
    by_rule = Counter((o.finding.rule_id, o.status.value) for o in result.outcomes)
    for (rule_id, status), n in sorted(by_rule.items()):
        with single_metric(name=status, unit=MetricUnit.Count, value=n, namespace=metrics.namespace) as metric:
            metric.add_dimension(name=RULE_DIMENSION, value=rule_id)


#: Metrics that mean "a person should look" (template.yaml alarms on each), emitted where they happen.
MODE_OVERRIDES_INVALID = "mode_overrides_invalid"
OWN_ROLE_LOOKALIKE = "own_role_lookalike"
ALERTS = (MODE_OVERRIDES_INVALID, OWN_ROLE_LOOKALIKE)


def emit_alert(name: str, value: float = 1) -> None:
    """One alert count, flushed at once (any function, any code path; dimension `service` like the others)."""
    if name not in ALERTS:
        raise ValueError(f"unknown alert metric {name!r}")
    if is_metrics_disabled():
        return
    namespace = os.getenv("POWERTOOLS_METRICS_NAMESPACE", "VpceGuard")
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=namespace) as metric:
        metric.add_dimension(name="service", value=os.getenv("POWERTOOLS_SERVICE_NAME", "vpce-guard"))


def emit_sweep_started(metrics: Metrics, plan: SweepPlan) -> None:
    """How much a sweep took on: accounts, units queued, accounts left out."""
    metrics.add_metric(name="sweep_accounts", unit=MetricUnit.Count, value=len(plan.accounts))
    metrics.add_metric(name="sweep_units_queued", unit=MetricUnit.Count, value=len(plan.accounts) * len(plan.regions))
    metrics.add_metric(name="sweep_accounts_skipped", unit=MetricUnit.Count, value=len(plan.skipped_accounts))


def emit_sweep_metrics(metrics: Metrics, summary: SweepSummary) -> None:
    """Once per completed sweep: one count per status (`sweep_remediated`, `sweep_non_compliant`, …, zero
    included so dashboards and alarms see a value every sweep), failed units, endpoints seen."""
    from .models import Status

    for status in Status:
        metrics.add_metric(name=f"sweep_{status.value}", unit=MetricUnit.Count,
                           value=summary.statuses.get(status.value, 0))
    metrics.add_metric(name="sweep_units_failed", unit=MetricUnit.Count, value=summary.units_failed)
    metrics.add_metric(name="sweep_endpoints_seen", unit=MetricUnit.Count, value=summary.endpoints_seen)
