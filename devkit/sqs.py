"""Drive an SQS-triggered handler the way Lambda's event source mapping does, against moto's SQS.

Lambda's SQS event source receives up to BatchSize messages, invokes the function with them, deletes the
ones that succeeded and, with ReportBatchItemFailures, leaves the ones named in `batchItemFailures` (all of
them if the invocation raised) to become visible again; SQS moves a message to the dead-letter queue once
it has been received maxReceiveCount times. `drain` does the same, with the visibility of failed messages
reset at once instead of after the visibility timeout, so retries happen without waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devkit import template

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda builds from received SQS messages."""
    region = queue_arn.split(":")[3]
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": {k: str(v) for k, v in (m.get("Attributes") or {}).items()},
        "messageAttributes": {},
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


@dataclass
class DrainReport:
    invocations: int = 0
    processed: int = 0
    #: messageIds reported as failed, once per failed delivery
    failed_deliveries: list[str] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)


def drain(sqs: Any, queue_url: str, handler: Handler, *, batch_size: int, max_invocations: int = 1000) -> DrainReport:
    """Invoke `handler` with batches until the queue is empty (failed messages retried, then dead-lettered)."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    report = DrainReport()
    while report.invocations < max_invocations:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=batch_size,
                                       AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return report
        report.invocations += 1
        try:
            response = handler(lambda_event(messages, queue_arn)) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # the whole batch failed, as Lambda treats a raising invocation
            response = {"error": "invocation raised"}
            failed = {m["MessageId"] for m in messages}
        report.responses.append(response)
        for m in messages:
            if m["MessageId"] in failed:
                report.failed_deliveries.append(m["MessageId"])
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=0)
            else:
                report.processed += 1
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    raise RuntimeError(f"queue not drained after {max_invocations} invocations")


def create_sweep_queues(sqs: Any, *, name: str = "vpce-guard-sweep") -> tuple[str, str]:
    """SweepQueue and SweepDeadLetterQueue as template.yaml declares them (redrive policy, visibility)."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    props = template.resource_properties("SweepQueue", resources={"SweepDeadLetterQueue.Arn": dlq_arn})
    attrs = {"RedrivePolicy": json.dumps(props["RedrivePolicy"]),
             "VisibilityTimeout": str(props["VisibilityTimeout"]),
             "MessageRetentionPeriod": str(props["MessageRetentionPeriod"])}
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"], dlq_url
