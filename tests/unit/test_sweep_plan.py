"""Sweep planning at the edges: the organization's account list (every page; suspended, closed and
skip-listed accounts left out with the reason), the functions' sweep settings and the queue messages."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from vpce_guard.config import ConfigError
from vpce_guard.sweep import SweepPlan, SweepSettings, SweepUnit, list_accounts


def _account(account_id: str, state: str) -> dict[str, str]:
    return {"Id": account_id, "Arn": f"arn:aws:organizations::111111111111:account/o-abcdefghij/{account_id}",
            "Email": f"{account_id}@example.com", "Name": account_id, "Status": state, "State": state}


def test_list_accounts_reads_every_page_and_says_why_an_account_is_left_out() -> None:
    client = boto3.client("organizations", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_accounts", {
            "Accounts": [_account("111111111111", "ACTIVE"), _account("222222222222", "SUSPENDED")],
            "NextToken": "page-2"}, {})
        stub.add_response("list_accounts", {
            "Accounts": [_account("333333333333", "ACTIVE"), _account("444444444444", "ACTIVE"),
                         _account("555555555555", "PENDING_CLOSURE")]}, {"NextToken": "page-2"})
        active, skipped = list_accounts(client, skip={"444444444444"})
        stub.assert_no_pending_responses()
    assert active == ["111111111111", "333333333333"]
    assert skipped == [
        {"account": "222222222222", "reason": "account is suspended"},
        {"account": "444444444444", "reason": "in the skip list (SWEEP_SKIP_ACCOUNTS)"},
        {"account": "555555555555", "reason": "account is pending_closure"},
    ]


def test_settings_come_from_the_functions_environment() -> None:
    s = SweepSettings.from_env({"SWEEP_QUEUE_URL": "https://sqs/q", "SWEEP_REGIONS": "eu-west-1, us-east-1,eu-west-1",
                                "SWEEP_SKIP_ACCOUNTS": "111111111111"})
    assert s.regions == ("eu-west-1", "us-east-1") and s.skip_accounts == frozenset({"111111111111"})
    assert SweepSettings.from_env({}).regions == ()
    with pytest.raises(ConfigError, match="SWEEP_REGIONS"):
        SweepSettings.from_env({"SWEEP_REGIONS": "us-east-1,not a region"})
    with pytest.raises(ConfigError, match="SWEEP_SKIP_ACCOUNTS"):
        SweepSettings.from_env({"SWEEP_SKIP_ACCOUNTS": "12345"})


def test_units_are_account_major_and_messages_are_validated() -> None:
    plan = SweepPlan(sweep_id="20261129T000000Z-0123abcd", started_at="2026-11-29T00:00:00.000Z",
                     accounts=["111111111111", "222222222222"], regions=["us-east-1", "eu-west-1"])
    assert [(u.account, u.region) for u in plan.units()] == [
        ("111111111111", "us-east-1"), ("111111111111", "eu-west-1"),
        ("222222222222", "us-east-1"), ("222222222222", "eu-west-1")]
    unit = plan.units()[0]
    assert SweepUnit.model_validate_json(unit.model_dump_json()) == unit
    for bad in ({"account": "1"}, {"region": "us-east-1; rm"}, {"sweep_id": "../x"}, {"extra": "x"}):
        with pytest.raises(ValidationError):
            SweepUnit.model_validate({**unit.model_dump(), **bad})
