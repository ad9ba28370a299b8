"""One vpce-guard sweep unit in a fresh process, as the side-by-side benchmark runs it against a moto server.

`python -m benchmarks.sweep_once ACCOUNT REGION` with AWS_ENDPOINT_URL and LEDGER_TABLE set; prints JSON:
the endpoints the policy rule flagged, the calls made, and the time inside the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from botocore import handlers

from devkit.api_calls import count_api_calls
from devkit.lambda_context import LocalLambdaContext
from devkit.paging import aws_paging

PROCESS_START = time.perf_counter()
_first_ledger_call: list[float] = []
#: Operation → [first start, last end], seconds since process start (calls may overlap).
_spans: dict[str, list[float]] = {}


def _mark_ledger_call(**_: Any) -> None:
    """Detection is over when the ledger is first touched (the account-region's digest, the state items a sweep
    compares, then its writes): everything was read and evaluated by then."""
    if not _first_ledger_call:
        _first_ledger_call.append(time.perf_counter())


def _span_start(model: Any = None, **_: Any) -> None:
    now = time.perf_counter() - PROCESS_START
    _spans.setdefault(model.name, [now, now])


def _span_end(model: Any = None, **_: Any) -> None:
    _spans[model.name][1] = time.perf_counter() - PROCESS_START


for _op in ("GetItem", "BatchGetItem", "BatchWriteItem", "TransactWriteItems"):
    handlers.BUILTIN_HANDLERS.append((f"provide-client-params.dynamodb.{_op}", _mark_ledger_call))
handlers.BUILTIN_HANDLERS.append(("before-call", _span_start))
handlers.BUILTIN_HANDLERS.append(("after-call", _span_end))


def main(account: str, region: str) -> int:
    start = time.perf_counter()
    from vpce_guard import pipeline, warm
    from vpce_guard.models import Targets, Trigger

    imported = time.perf_counter()
    if os.environ.get("BENCH_PATIENT_WITH_MOTO"):  # a first sweep (benchmarks/harness.py)
        from .harness import patient_with_moto

        patient_with_moto()
    with aws_paging(), count_api_calls() as calls:
        # As the deployed worker's first invocation: its cold start's runtime (warm.py), told its function's ARN
        # by the Lambda context (the own account, no STS).
        rt = warm.runtime()().in_function(
            LocalLambdaContext(function_name="SweepWorkerFunction", account=account, region=region))
        result = pipeline.run_targets(rt, Targets(account=account, region=region, everything=True),
                                      Trigger(source="sweep"))
    done = time.perf_counter()
    flagged = sorted(o.finding.resource_id for o in result.outcomes
                     if o.finding.rule_id == "endpoint-policy-org-confined"
                     and o.status.value in ("dry_run", "non_compliant", "remediated"))
    print(json.dumps({
        "flagged": flagged, "calls": calls.by_operation(), "total_calls": calls.total,
        "seconds_by_operation": {f"{s}:{o}": round(v, 3) for (s, o), v in sorted(calls.seconds.items())},
        "evaluations": len(result.outcomes), "digest": result.digest,
        "rules": sorted({o.finding.rule_id for o in result.outcomes}),
        "import_seconds": round(imported - start, 3), "run_seconds": round(done - imported, 3),
        # From interpreter start to the first ledger call: reads and every rule evaluated (detection).
        "detection_seconds": round((_first_ledger_call or [done])[0] - PROCESS_START, 3),
        "spans": {op: [round(a, 3), round(b, 3)] for op, (a, b) in sorted(_spans.items())},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
