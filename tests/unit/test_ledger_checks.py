"""A sweep's checks items: unchanged dry_run findings keep their reasons and reach the activity index, and no
checks item outgrows DynamoDB's 400 KB item limit however long the reasons are."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from vpce_guard import ledger
from vpce_guard.models import Finding, Outcome, Status, Trigger

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _records(n: int, status: Status, reason: str) -> list[ledger.LedgerRecord]:
    outcomes = [Outcome(finding=Finding(rule_id="endpoint-policy-org-confined", resource_id=f"vpce-{i:017x}",
                                        resource_type="vpc-endpoint", status=status, reason=reason),
                        status=status, reason=reason) for i in range(n)]
    return ledger.records_for(outcomes, Trigger(source="sweep"), account="111122223333", region="eu-west-1",
                              ttl_days=30, now=NOW)


def _items(records: list[ledger.LedgerRecord]) -> list[dict]:
    return ledger.checks_items(records, account="111122223333", region="eu-west-1", trigger=Trigger(source="sweep"),
                               ttl_days=30, now=NOW)


def test_unchanged_dry_run_findings_are_listed_with_their_reasons_on_the_activity_index() -> None:
    items = _items(_records(3, Status.DRY_RUN, "policy allows everyone") + _records(2, Status.COMPLIANT, "ok"))
    [item] = items
    assert item["gsi1pk"] == "ACTIVITY#dry_run#2026-12-07"
    rows = list(ledger.would_fix_rows(item))
    assert [r["reason"] for r in rows] == ["policy allows everyone"] * 3
    assert {r["status"] for r in rows} == {"dry_run"} and all(r["account"] == "111122223333" for r in rows)


def test_a_checks_item_without_dry_run_findings_is_not_on_the_activity_index() -> None:
    [item] = _items(_records(5, Status.COMPLIANT, "ok"))
    assert "gsi1pk" not in item and "would_fix" not in item


def test_long_reasons_split_the_checks_items_under_dynamodbs_item_limit() -> None:
    reason = "x" * 2000
    records = _records(600, Status.DRY_RUN, reason)
    items = _items(records)
    assert len(items) > 1
    assert all(len(json.dumps(item, default=str)) < 400_000 for item in items)
    assert sum(item["count"] for item in items) == 600
    assert len({i["sk"] for i in items}) == len(items) and len({i["gsi1sk"] for i in items}) == len(items)
