"""Metrics every handler emits, in one place so the dashboard and alarms can rely on their names."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from .pipeline import RunResult


def emit_outcome_metrics(metrics: Metrics, result: RunResult) -> None:
    """One count per status (e.g. `remediated`, `failed`) plus one per event disposition."""
    for status, n in Counter(o.status.value for o in result.outcomes).items():
        metrics.add_metric(name=status, unit=MetricUnit.Count, value=n)
    if result.disposition != "act":
        metrics.add_metric(name=f"event_{result.disposition}", unit=MetricUnit.Count, value=1)
