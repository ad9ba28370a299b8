"""Planning: decide, as data, what happens to each finding (record it, fix it, or say what a fix would do).

Pure: no AWS calls. The decision depends on the rule's mode, on whether the finding carries a safe fix, and
on the safety state the pipeline looked up beforehand and passes in as data (`Guards`): exemptions from the
registry and flapping (resource, rule) pairs counted from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .config import Mode
from .models import Finding, Status


class Decision(StrEnum):
    RECORD = "record"  # nothing to do: record the finding as it is
    APPLY = "apply"  # perform the finding's actions
    DRY_RUN = "dry_run"  # record what the actions would do
    UNFIXABLE = "unfixable"  # non-compliant but no safe fix: record as failed with the reason
    EXEMPT = "exempt"  # an exemption covers it: record what a fix would do, change nothing
    FLAPPING = "flapping"  # fixed too often lately: record, change nothing, alarm


@dataclass(frozen=True)
class Guard:
    """Why a guard holds for one (rule, resource): a one-line note and facts for the ledger record."""

    note: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Guards:
    """Safety state, keyed by (rule_id, resource_id)."""

    exempt: Mapping[tuple[str, str], Guard] = field(default_factory=dict)
    flapping: Mapping[tuple[str, str], Guard] = field(default_factory=dict)


NO_GUARDS = Guards()


@dataclass(frozen=True)
class Step:
    finding: Finding
    decision: Decision
    note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


def make_plan(findings: Iterable[Finding], mode_for: Callable[[str], Mode], guards: Guards = NO_GUARDS) -> list[Step]:
    """One step per finding; rules whose mode is `off` produce no step at all.

    Order of precedence for a non-compliant finding: an exemption (the owner's agreed exception, even when
    no safe fix exists), then no safe fix, then detect-only, then dry run, then flapping, then fix.
    """
    steps: list[Step] = []
    for f in findings:
        mode = mode_for(f.rule_id)
        key = (f.rule_id, f.resource_id)
        if mode is Mode.OFF:
            continue
        if f.status is not Status.NON_COMPLIANT:
            steps.append(Step(f, Decision.RECORD))
        elif key in guards.exempt:
            steps.append(Step(f, Decision.EXEMPT, guards.exempt[key].note, guards.exempt[key].details))
        elif f.details.get("unfixable"):
            steps.append(Step(f, Decision.UNFIXABLE, str(f.details["unfixable"])))
        elif not f.actions:
            steps.append(Step(f, Decision.RECORD, "detect only: no automatic fix for this rule"))
        elif mode is Mode.DRY_RUN:
            steps.append(Step(f, Decision.DRY_RUN, "dry_run mode: nothing was changed"))
        elif key in guards.flapping:
            steps.append(Step(f, Decision.FLAPPING, guards.flapping[key].note, guards.flapping[key].details))
        else:
            steps.append(Step(f, Decision.APPLY))
    return steps
