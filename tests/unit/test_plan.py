"""Planning decisions per mode (pure)."""

from __future__ import annotations

from vpce_guard.config import Mode
from vpce_guard.models import Action, Finding, Status
from vpce_guard.plan import Decision, make_plan

FIX = Action(kind="add_route_tables", resource_id="vpce-1", params={"route_table_ids": ["rtb-b"]})


def _f(status: Status, actions: tuple[Action, ...] = (), **details: str) -> Finding:
    return Finding(rule_id="r", resource_id="vpce-1", resource_type="vpc-endpoint", status=status, reason="x",
                   actions=actions, details=details)


def test_enforce_applies_fixable_findings() -> None:
    [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _: Mode.ENFORCE)
    assert step.decision is Decision.APPLY


def test_dry_run_never_applies() -> None:
    [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _: Mode.DRY_RUN)
    assert step.decision is Decision.DRY_RUN


def test_off_produces_no_step() -> None:
    assert make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _: Mode.OFF) == []


def test_unfixable_is_recorded_as_such() -> None:
    [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,), unfixable="too long")], lambda _: Mode.ENFORCE)
    assert step.decision is Decision.UNFIXABLE and step.note == "too long"


def test_compliant_findings_are_only_recorded() -> None:
    [step] = make_plan([_f(Status.COMPLIANT)], lambda _: Mode.ENFORCE)
    assert step.decision is Decision.RECORD
