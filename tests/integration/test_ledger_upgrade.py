"""`vpce-guard ledger upgrade`: open findings recorded before the open-by-place index existed (vpce-guard 0.1.0
wrote state items without `open_place`) join it, so that a sweep closes those it no longer sees; closed states
stay out of it; running it again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit.seed import SpineWorld, render_event
from tests.support.printed import printed_json
from vpce_guard import admin
from vpce_guard.ledger import Ledger
from vpce_guard.models import Trigger

from .conftest import ACCOUNT, REGION, TABLE, TABLES, Invoke


def _as_written_by_0_1_0(table: Any) -> list[dict[str, Any]]:
    """Every state item without the open-by-place keys, as vpce-guard 0.1.0 wrote them."""
    states = [i for i in table.scan()["Items"] if i.get("record_type") == "state"]
    for item in states:
        table.update_item(Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="REMOVE open_place, open_key")
    return states


def _upgrade(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert admin.main(["ledger", "upgrade", "--region", REGION, "--ledger-table", TABLE,
                       "--exemptions-table", TABLES["ExemptionsTable"]]) == 0
    return printed_json(capsys)


def test_open_findings_of_an_older_ledger_join_the_open_index_once_and_a_sweep_then_closes_them(
        invoke: Invoke, world: SpineWorld, ledger_table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    states = _as_written_by_0_1_0(ledger_table)
    open_states = [s for s in states if s["status"] == "dry_run"]
    assert open_states and len(open_states) < len(states), "the event left open and closed findings"
    ledger = Ledger(ledger_table)
    assert list(ledger.open_in(ACCOUNT, REGION)) == [], "what a sweep could not close before the upgrade"

    first = _upgrade(capsys)
    assert (first["open_states"], first["indexed"], first["changed_meanwhile"]) == (len(open_states),) * 2 + (0,)
    indexed = {(i["pk"], i["sk"]) for i in ledger.open_in(ACCOUNT, REGION)}
    assert indexed == {(s["pk"], s["sk"]) for s in open_states}, "the open ones only"

    again = _upgrade(capsys)
    assert (again["open_states"], again["indexed"]) == (len(open_states), 0)

    # The resources went while their events were lost: the sweep of the account-region closes the findings.
    rules = sorted({s["rule_id"] for s in open_states})
    ledger.close_unseen(account=ACCOUNT, region=REGION, seen=set(), rules=rules,
                        before=datetime.now(UTC) + timedelta(seconds=1), trigger=Trigger(source="sweep"),
                        ttl_days=30)
    assert list(ledger.open_in(ACCOUNT, REGION)) == []
    assert {ledger_table.get_item(Key={"pk": s["pk"], "sk": s["sk"]})["Item"]["status"] for s in open_states} == {
        "not_applicable"}


def test_a_state_that_changed_since_it_was_read_is_left_to_the_run_that_changed_it(
        invoke: Invoke, world: SpineWorld, ledger_table: Any) -> None:
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    [state] = [s for s in _as_written_by_0_1_0(ledger_table) if s["status"] == "dry_run"][:1]
    ledger = Ledger(ledger_table)
    read = ledger.current

    def closed_meanwhile(status: str) -> Any:
        for item in read(status):
            if (item["pk"], item["sk"]) == (state["pk"], state["sk"]):
                ledger_table.update_item(Key={"pk": state["pk"], "sk": state["sk"]},
                                         UpdateExpression="SET #s = :c", ExpressionAttributeNames={"#s": "status"},
                                         ExpressionAttributeValues={":c": "compliant"})
            yield item

    ledger.current = closed_meanwhile  # type: ignore[method-assign]
    counts = ledger.index_open_states()
    assert counts["changed_meanwhile"] == 1
    assert "open_place" not in ledger_table.get_item(Key={"pk": state["pk"], "sk": state["sk"]})["Item"]
