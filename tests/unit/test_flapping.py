"""Flap counting from ledger items (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vpce_guard.flapping import FlapPolicy, assess
from vpce_guard.ledger import stamp

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RULE = "endpoint-policy-org-confined"
POLICY = FlapPolicy(max_fixes=3, window=timedelta(hours=1))


def item(minutes_ago: float, status: str = "remediated", rule: str = RULE, kind: str = "evaluation") -> dict[str, Any]:
    return {"time": stamp(NOW - timedelta(minutes=minutes_ago)), "status": status, "rule_id": rule,
            "record_type": kind}


def state(items: list[dict[str, Any]], now: datetime = NOW):  # type: ignore[no-untyped-def]
    return assess(items, rule_id=RULE, resource_id="vpce-1", policy=POLICY, now=now)


def test_below_the_limit_is_not_flapping() -> None:
    s = state([item(50), item(10)])
    assert (s.fixes, s.flapping, s.resumes_at) == (2, False, None)


def test_the_limit_within_the_window_is_flapping_until_the_oldest_fix_leaves_it() -> None:
    s = state([item(50), item(30), item(10)])
    assert s.flapping and s.fixes == 3
    assert s.resumes_at == NOW - timedelta(minutes=50) + POLICY.window
    later = state([item(50), item(30), item(10)], now=NOW + timedelta(minutes=11))
    assert not later.flapping and later.fixes == 2


def test_only_fixes_of_this_rule_count() -> None:
    s = state([item(40), item(30, status="dry_run"), item(20, status="failed"), item(10, rule="other"),
               item(5, kind="rollback"), item(1)])
    assert s.fixes == 2 and not s.flapping


def test_an_operator_reset_starts_the_count_again() -> None:
    s = state([item(50), item(40), item(30), item(20, status="skipped", kind="flap_reset"), item(10)])
    assert s.fixes == 1 and not s.flapping and s.cleared_at == NOW - timedelta(minutes=20)


def test_fixes_outside_the_window_do_not_count() -> None:
    assert state([item(90), item(70), item(61)]).fixes == 0
