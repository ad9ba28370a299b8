"""Counting sweep units at scale: counter shards, and transactions that meet another on the same item.

Every unit is counted by a DynamoDB transaction; DynamoDB cancels a transaction that meets another one on
the same item (TransactionConflict). With one summary item a thousand-account sweep's workers cancel each
other (benchmarks/orgsim), so counters live on COUNTS#<nn> shards, and a cancelled count is sent again.
moto never cancels for conflicts, so that answer comes from botocore's Stubber.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from vpce_guard import sweep

from .conftest import REGION

ACCOUNTS = [f"{100000000000 + i}" for i in range(26)]
REGIONS = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "ca-central-1", "eu-north-1", "us-west-2",
           "eu-central-1", "ap-northeast-1", "us-east-2"]


def _plan(accounts: list[str], regions: list[str]) -> sweep.SweepPlan:
    now = sweep._now()
    return sweep.SweepPlan(sweep_id=sweep.new_sweep_id(now), started_at="2026-12-06T00:00:00.000Z",
                           accounts=accounts, regions=regions)


def test_a_large_sweep_counts_on_several_shards_and_completes_once(ledger_table: Any) -> None:
    plan = _plan(ACCOUNTS, REGIONS)  # 260 units: two shards
    records = sweep.SweepRecords(ledger_table, 30)
    records.start(plan)
    units = plan.units()
    assert {u.counter_shards for u in units} == {2}
    assert {u.counter_shard for u in units} == {0, 1}
    completed = []
    for i, unit in enumerate(units):
        result = sweep.UnitResult(unit=unit, endpoints_seen=2, findings={("rule-a", "compliant"): 2},
                                  failure_kind="read_failed" if i % 100 == 0 else None, reason="x")
        assert records.record_unit(result)
        done = records.finish_if_done(plan.sweep_id)
        if done is not None:
            completed.append((i, done))
    assert [i for i, _ in completed] == [len(units) - 1]
    summary = completed[0][1]
    assert (summary.status, summary.units_done, summary.units_failed) == ("complete", 260, 3)
    assert summary.endpoints_seen == 520 and summary.findings_by_rule == {"rule-a": {"compliant": 520}}
    assert summary.failures_by_kind == {"read_failed": 3} and len(summary.failures) == 3
    again = records.get(plan.sweep_id)
    assert again is not None and again.units_done == 260 and again.status == "complete"
    assert not records.record_unit(sweep.UnitResult(unit=units[5]))  # a redelivery is not counted twice


def test_a_count_cancelled_by_a_concurrent_one_is_sent_again(ledger_table: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(ACCOUNTS[:1], [REGION])
    records = sweep.SweepRecords(ledger_table, 30)
    records.start(plan)
    (unit,) = plan.units()
    client = ledger_table.meta.client
    pauses: list[float] = []
    monkeypatch.setattr(sweep.time, "sleep", pauses.append)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                                  service_message="Transaction cancelled",
                                  modeled_fields={"CancellationReasons": [{"Code": "None"},
                                                                         {"Code": "TransactionConflict"}]})
        stub.add_response("transact_write_items", {})
        assert records.record_unit(sweep.UnitResult(unit=unit, endpoints_seen=1))
        stub.assert_no_pending_responses()
    assert len(pauses) == 2 and all(0 <= p <= 0.1 for p in pauses)


def test_a_count_that_keeps_conflicting_fails_the_delivery(ledger_table: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(ACCOUNTS[:1], [REGION])
    records = sweep.SweepRecords(ledger_table, 30)
    records.start(plan)
    (unit,) = plan.units()
    monkeypatch.setattr(sweep.time, "sleep", lambda _s: None)
    with Stubber(ledger_table.meta.client) as stub:
        for _ in range(sweep.COUNT_CONFLICT_ROUNDS + 1):
            stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                                  service_message="Transaction cancelled",
                                  modeled_fields={"CancellationReasons": [{"Code": "None"},
                                                                         {"Code": "TransactionConflict"}]})
        with pytest.raises(Exception, match="TransactionCanceled"):
            records.record_unit(sweep.UnitResult(unit=unit))


def test_a_unit_queued_before_counter_shards_counts_on_the_first(ledger_table: Any) -> None:
    plan = _plan(ACCOUNTS[:2], [REGION])
    records = sweep.SweepRecords(ledger_table, 30)
    records.start(plan)
    body = plan.units()[0].model_dump_json(exclude={"counter_shards"})
    unit = sweep.SweepUnit.model_validate_json(body)
    assert unit.counter_shard == 0
    assert records.record_unit(sweep.UnitResult(unit=unit))
    summary = records.get(plan.sweep_id)
    assert summary is not None and summary.units_done == 1
