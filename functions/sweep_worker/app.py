"""Sweep worker (SQS batches from the sweep function): sweep each (account, region) unit through the spoke
role with the same pipeline as an event, count it in the sweep's summary, and report the messages that
failed (Powertools BatchProcessor, ReportBatchItemFailures) so only those are retried and then dead-lettered.

Thin on purpose: the unit logic lives in `vpce_guard.sweep`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vpce_guard import sweep, telemetry, warm
from vpce_guard.telemetry import emit_sweep_metrics

logger = Logger()
tracer = telemetry.tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

runtime = warm.runtime()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    worker = sweep.Worker(runtime().in_function(context), millis_left=context.get_remaining_time_in_millis)

    def record_handler(record: SQSRecord) -> None:
        finished = worker.process(record.body, receive_count=int(record.attributes.approximate_receive_count))
        if finished is not None:
            emit_sweep_metrics(metrics, finished)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
