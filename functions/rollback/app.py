"""Rollback function: restore a resource to the before-state of one recorded remediation.

Invoked by an operator (console, CLI, `sam local invoke RollbackFunction -e events/rollback/rollback.json`)
with {"account", "region", "resource_id", "record_sk"} (optional "requested_by", "reason"). Refuses, and
records why, when the resource changed since the remediation. The logic is `vpce_guard.rollback`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from vpce_guard import rollback, telemetry, warm

logger = Logger()
tracer = telemetry.tracer()

runtime = warm.runtime()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = rollback.RollbackRequest.model_validate(event)
    except ValidationError as exc:
        # Nothing to record against: the request does not name a resource we could file it under.
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False))
        return {"status": rollback.REFUSED, "reason": f"invalid rollback request: {problems}"}
    return rollback.run(runtime().in_function(context), request).summary()
