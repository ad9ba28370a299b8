"""Planning decisions per mode (pure)."""

from __future__ import annotations

from vpce_guard.config import Mode
from vpce_guard.models import Action, Finding, Status
from vpce_guard.plan import Decision, Guard, Guards, make_plan

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


GUARDED = Guards(exempt={("r", "vpce-1"): Guard("exempt until 2027: vendor appliance", {"exemption": {"x": 1}})},
                 flapping={("r", "vpce-1"): Guard("flapping: fixed 3 times")})


def test_an_exemption_beats_every_mode_that_would_act_and_carries_its_details() -> None:
    for mode in (Mode.ENFORCE, Mode.DRY_RUN):
        [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _, m=mode: m, GUARDED)
        assert step.decision is Decision.EXEMPT and "vendor appliance" in step.note
        assert step.details == {"exemption": {"x": 1}}


def test_an_exempt_finding_without_a_safe_fix_is_exempt_not_failed() -> None:
    [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,), unfixable="too long")], lambda _: Mode.ENFORCE, GUARDED)
    assert step.decision is Decision.EXEMPT


def test_flapping_stops_a_fix_but_dry_run_still_says_dry_run() -> None:
    only_flapping = Guards(flapping=GUARDED.flapping)
    [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _: Mode.ENFORCE, only_flapping)
    assert step.decision is Decision.FLAPPING
    [step] = make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _: Mode.DRY_RUN, only_flapping)
    assert step.decision is Decision.DRY_RUN


def test_guards_do_not_touch_compliant_findings_or_rules_that_are_off() -> None:
    [step] = make_plan([_f(Status.COMPLIANT)], lambda _: Mode.ENFORCE, GUARDED)
    assert step.decision is Decision.RECORD
    assert make_plan([_f(Status.NON_COMPLIANT, (FIX,))], lambda _: Mode.OFF, GUARDED) == []
