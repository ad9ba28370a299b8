"""CreateSettleSeconds: after a Create* call the on-change function gives the creator time to finish
configuring the resource (Terraform attaches route tables and sets the policy in later calls), waiting only
what is left of the period when the event arrives. The wait is recorded, not slept, here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit.seed import SpineWorld, render_event
from vpce_guard import pipeline
from vpce_guard.models import Trigger

from .conftest import Invoke

NOW = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


def _trigger(name: str, made: datetime | None) -> Trigger:
    return Trigger(event_name=name, event_time=made.isoformat().replace("+00:00", "Z") if made else None)


@pytest.mark.parametrize(("name", "age", "settle", "wait"), [
    ("CreateVpcEndpoint", 2, 20, 18.0),   # what is left of the period
    ("CreateRouteTable", 0, 20, 20.0),
    ("CreateRoute", 45, 20, 0.0),         # delivered after the period: at once
    ("ModifyVpcEndpoint", 0, 20, 0.0),    # a change to what exists: never waits
    ("CreateVpcEndpoint", 0, 0, 0.0),     # off (the default)
    ("CreateVpcEndpoint", -5, 20, 20.0),  # a clock ahead of ours: never more than the period
])
def test_a_create_call_waits_what_is_left_of_the_settle_period(name: str, age: int, settle: int, wait: float) -> None:
    assert pipeline.settle_wait(_trigger(name, NOW - timedelta(seconds=age)), settle, NOW) == wait


def test_an_event_without_a_readable_time_waits_the_whole_period() -> None:
    assert pipeline.settle_wait(_trigger("CreateVpcEndpoint", None), 10, NOW) == 10.0


def test_the_handler_waits_before_it_reads_and_then_fixes_what_it_finds(
        invoke: Invoke, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(pipeline.Runtime, "sleep", lambda _rt, seconds: waits.append(seconds))
    event = render_event("create-vpc-endpoint.json", world.mapping())
    event["detail"]["eventTime"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    result = invoke(event, CreateSettleSeconds="15")
    assert len(waits) == 1 and 10 < waits[0] <= 15, waits
    assert "remediated" in {r["status"] for r in result["results"]}
    # A change to an existing endpoint does not wait, whatever the setting.
    invoke({**render_event("modify-vpc-endpoint.json", world.mapping()), "id": "0e2f9a3c-0000-4000-8000-0000000000aa"},
           CreateSettleSeconds="15")
    assert len(waits) == 1
