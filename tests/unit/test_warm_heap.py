"""A cold start freezes what it imported (warm.settle_heap), once per process, so later full collections skip it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import gc
from vpce_guard import warm
assert gc.get_freeze_count() == 0
first = warm.runtime()
rt = first()
frozen = gc.get_freeze_count()
assert frozen > 10_000, frozen  # botocore's, pydantic's and the rules' objects
assert first() is rt
warm.Warm.reset_all()
second = warm.runtime()()
assert second is not rt
assert gc.get_freeze_count() == frozen, "only the first cold start of a process freezes"
print("ok")
"""


def test_the_first_cold_start_freezes_its_imports_once() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "vpce_guard"), "LEDGER_TABLE": "ledger",
           "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
