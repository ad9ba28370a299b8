"""Planning: decide, as data, what happens to each finding (record it, fix it, or say what a fix would do).

Pure: no AWS calls. The decision depends on the rule's mode and on whether the finding carries a safe fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from .config import Mode
from .models import Finding, Status


class Decision(StrEnum):
    RECORD = "record"  # nothing to do: record the finding as it is
    APPLY = "apply"  # perform the finding's actions
    DRY_RUN = "dry_run"  # record what the actions would do
    UNFIXABLE = "unfixable"  # non-compliant but no safe fix: record as failed with the reason


@dataclass(frozen=True)
class Step:
    finding: Finding
    decision: Decision
    note: str = ""


def make_plan(findings: Iterable[Finding], mode_for: Callable[[str], Mode]) -> list[Step]:
    """One step per finding; rules whose mode is `off` produce no step at all."""
    steps: list[Step] = []
    for f in findings:
        mode = mode_for(f.rule_id)
        if mode is Mode.OFF:
            continue
        if f.status is not Status.NON_COMPLIANT:
            steps.append(Step(f, Decision.RECORD))
        elif f.details.get("unfixable"):
            steps.append(Step(f, Decision.UNFIXABLE, str(f.details["unfixable"])))
        elif not f.actions:
            steps.append(Step(f, Decision.RECORD, "detect only: no automatic fix for this rule"))
        elif mode is Mode.DRY_RUN:
            steps.append(Step(f, Decision.DRY_RUN, "dry_run mode: nothing was changed"))
        else:
            steps.append(Step(f, Decision.APPLY))
    return steps
