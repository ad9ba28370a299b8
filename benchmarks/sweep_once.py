"""One vpce-guard sweep unit in a fresh process, as the side-by-side benchmark runs it against a moto server.

`python -m benchmarks.sweep_once ACCOUNT REGION` with AWS_ENDPOINT_URL and LEDGER_TABLE set; prints JSON:
the endpoints the policy rule flagged, the calls made, and the time inside the process.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from botocore import handlers

from devkit.api_calls import count_api_calls
from devkit.paging import aws_paging

PROCESS_START = time.perf_counter()
_first_ledger_write: list[float] = []


def _mark_ledger_write(**_: Any) -> None:
    """Detection is over when the first ledger write starts: everything was read and evaluated by then."""
    if not _first_ledger_write:
        _first_ledger_write.append(time.perf_counter())


handlers.BUILTIN_HANDLERS.append(("provide-client-params.dynamodb.BatchWriteItem", _mark_ledger_write))


def main(account: str, region: str) -> int:
    start = time.perf_counter()
    from vpce_guard import pipeline
    from vpce_guard.config import Settings
    from vpce_guard.models import Targets, Trigger

    imported = time.perf_counter()
    with aws_paging(), count_api_calls() as calls:
        rt = pipeline.Runtime(Settings.from_env())
        result = pipeline.run_targets(rt, Targets(account=account, region=region, everything=True),
                                      Trigger(source="sweep"))
    done = time.perf_counter()
    flagged = sorted(o.finding.resource_id for o in result.outcomes
                     if o.finding.rule_id == "endpoint-policy-org-confined"
                     and o.status.value in ("dry_run", "non_compliant", "remediated"))
    print(json.dumps({
        "flagged": flagged, "calls": calls.by_operation(), "total_calls": calls.total,
        "seconds_by_operation": {f"{s}:{o}": round(v, 3) for (s, o), v in sorted(calls.seconds.items())},
        "evaluations": len(result.outcomes), "rules": sorted({o.finding.rule_id for o in result.outcomes}),
        "import_seconds": round(imported - start, 3), "run_seconds": round(done - imported, 3),
        # From interpreter start to the first ledger write: reads and every rule evaluated (detection).
        "detection_seconds": round((_first_ledger_write or [done])[0] - PROCESS_START, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
