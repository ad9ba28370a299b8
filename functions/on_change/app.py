"""On-change function: a CloudTrail event about a VPC endpoint, route table or VPC → check, fix, record.

Thin on purpose: parse and act in the shared layer (`vpce_guard.pipeline`), so the sweep, the local
runner and the tests run exactly the same code. Idempotent per EventBridge event id (a redelivered event
returns the first run's result and changes nothing).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from vpce_guard import idempotency, pipeline, telemetry, warm
from vpce_guard.telemetry import emit_outcome_metrics

logger = Logger()
tracer = telemetry.tracer()
metrics = Metrics()

runtime = warm.runtime()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=idempotency.config(), persistence_store=idempotency.persistence_store())
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = pipeline.handle_event(runtime().in_function(context), event)
    emit_outcome_metrics(metrics, result)
    return result.summary()
