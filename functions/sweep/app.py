"""Sweep function (on a schedule): list the organization's active accounts and the governed regions, write
the sweep's summary record and queue one (account, region) unit per SQS message for the sweep worker.

Thin on purpose: the planning and queueing live in `vpce_guard.sweep`, shared with the in-process
`run_sweep` that the demo, benchmarks and tests use.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from vpce_guard import sweep, telemetry, warm
from vpce_guard.telemetry import emit_sweep_started

logger = Logger()
tracer = telemetry.tracer()
metrics = Metrics()

runtime = warm.runtime()
sweep_settings = warm.Warm(sweep.SweepSettings.from_env)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan = sweep.start_sweep(runtime().in_function(context), sweep_settings())
    emit_sweep_started(metrics, plan)
    return plan.brief()
