"""Loaded by Cloud Custodian's interpreter in the side-by-side benchmark (PYTHONPATH): the same call counter
and AWS paging model as vpce-guard's run, so both tools are measured under the same rules.

Writes the counts to $VPCE_GUARD_BENCH_CALLS at exit. Only botocore is needed (devkit.api_calls and
devkit.paging import nothing else).
"""

import atexit
import json
import os
import sys

sys.path.insert(0, os.environ["VPCE_GUARD_BENCH_ROOT"])
from devkit.api_calls import count_api_calls
from devkit.paging import aws_paging

_paging = aws_paging()
_paging.__enter__()
_counting = count_api_calls()
_calls = _counting.__enter__()


@atexit.register
def _write() -> None:
    with open(os.environ["VPCE_GUARD_BENCH_CALLS"], "w") as fh:
        json.dump(_calls.by_operation(), fh)
