"""Powertools Idempotency for event-driven handlers: one EventBridge event id, one run.

EventBridge delivers at least once, and Lambda retries failed asynchronous invocations: the same event can
arrive twice. The fixes are idempotent anyway, but a second run would write a second set of ledger records
(and, for a fix someone undid in between, a second fix). So the handler's result is stored in DynamoDB
(`IDEMPOTENCY_TABLE`) under the event's `id`; a redelivery gets the stored result back and does nothing.
A run that fails stores nothing, so the retry runs for real.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from .aws import RETRY_CONFIG, new_session
from .config import ConfigError

#: Longer than any redelivery: EventBridge retries up to MaximumEventAgeInSeconds (1 h here) and Lambda
#: keeps asynchronous events up to 6 h.
EXPIRES_AFTER_SECONDS = 24 * 3600


def config() -> IdempotencyConfig:
    """Keyed on the EventBridge envelope's `id`. An input without one (not an EventBridge event) runs
    without idempotency rather than failing: the pipeline records and rejects it either way."""
    return IdempotencyConfig(event_key_jmespath="id", raise_on_no_idempotency_key=False,
                             expires_after_seconds=EXPIRES_AFTER_SECONDS)


def persistence_store() -> DynamoDBPersistenceLayer:
    """The idempotency table's store. Its client comes from a session on the process's shared botocore
    loader (aws.new_session), so the DynamoDB model it parses at import is not parsed again for the ledger
    on the first event."""
    table = os.environ.get("IDEMPOTENCY_TABLE", "").strip()
    if not table:
        raise ConfigError("invalid vpce-guard configuration: IDEMPOTENCY_TABLE: not set")
    return DynamoDBPersistenceLayer(table_name=table, boto_config=RETRY_CONFIG, boto3_session=new_session())
