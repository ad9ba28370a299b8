"""The organization-scale model against what it can be checked with: the moto runs of the same calibration.

`make bench-org` calibrates on the real sweep worker, then runs this: the cost per moto request fitted on the
empty, small and medium units must predict the wall time of the 200-VPC and 1,000-endpoint units from their
calls within 25%. Timing, so never part of `make test` (marker `calibration`); it reads the results that
`make bench-org` just wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_org import CALIBRATION_TOLERANCE, calibration_check

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "org-scale.json"

pytestmark = pytest.mark.calibration


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    if not RESULTS.exists():
        pytest.fail(f"{RESULTS} is missing: run `make bench-org`")
    return calibration_check(json.loads(RESULTS.read_text())["profiles"])


@pytest.mark.parametrize("unit", ["c7n-200", "large"])
def test_the_model_predicts_a_repeat_sweep_on_moto_within_25_percent(rows: list[dict[str, object]],
                                                                     unit: str) -> None:
    (row,) = [r for r in rows if r["unit"] == unit and r["sweep"] == "repeat"]
    assert abs(float(row["ratio"]) - 1) <= CALIBRATION_TOLERANCE, row
