"""`make rehearsal` as a test: the real hub and spoke templates deployed into LocalStack, the seeded drift fixed
by the deployed functions, one sweep drained by the deployed worker, everything torn down. Takes minutes, so it
carries the `rehearsal` marker and is not part of `make test` (`pytest -m rehearsal -rs` runs it).

Skipped, with the reason printed, when no Docker engine can start here, or LocalStack's or SAM CLI's virtualenv
is missing.
"""

from __future__ import annotations

import pytest

from devkit.rehearsal import localstack, run, stacks

pytestmark = pytest.mark.rehearsal


def test_deployed_functions_fix_the_drift_and_leave_nothing_running() -> None:
    for need, how in ((localstack.PYTHON, "make rehearsal (builds .venv-localstack)"), (stacks.SAM, "make sam-venv")):
        if not need.exists():
            pytest.skip(f"{need} is missing: {how}")
    report = run.Report()
    try:
        run.rehearse(report)
    except run.CannotRun as exc:
        pytest.skip(f"the rehearsal cannot run here: {exc}")
    finally:
        run.print_summary(report)
    failed = [(name, detail) for name, ok, detail in report.checks if not ok]
    assert not failed, failed
    assert report.passed, [s for s in report.steps if not s.ok] or report.workarounds
    assert any(t.startswith("LocalStack: stopped") for t in report.teardown)
