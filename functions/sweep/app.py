"""Sweep function (on a schedule): list the organization's active accounts and the governed regions, write
the sweep's summary record and queue one (account, region) unit per SQS message for the sweep worker.

Thin on purpose: the planning and queueing live in `vpce_guard.sweep`, shared with the in-process
`run_sweep` that the demo, benchmarks and tests use.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from vpce_guard import pipeline, sweep, telemetry
from vpce_guard.config import settings
from vpce_guard.telemetry import emit_sweep_started

logger = Logger()
tracer = telemetry.tracer()
metrics = Metrics()

_runtime: pipeline.Runtime | None = None
_sweep_settings: sweep.SweepSettings | None = None


def runtime(context: LambdaContext | None = None) -> tuple[pipeline.Runtime, sweep.SweepSettings]:
    """Built once per cold start; the own account comes from the function's ARN (no sts:GetCallerIdentity)."""
    global _runtime, _sweep_settings
    if _runtime is None or _sweep_settings is None:
        _runtime = pipeline.Runtime(settings())
        _sweep_settings = sweep.SweepSettings.from_env()
    if context is not None:
        _runtime.factory.adopt_function_arn(context.invoked_function_arn)
    return _runtime, _sweep_settings


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt, sweep_settings = runtime(context)
    plan = sweep.start_sweep(rt, sweep_settings)
    emit_sweep_started(metrics, plan)
    return plan.brief()
