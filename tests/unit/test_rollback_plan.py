"""Rollback planning (pure): the inverse of a recorded fix, or a refusal when the resource moved on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vpce_guard.models import Action, Endpoint
from vpce_guard.rollback import Refusal, RollbackRequest, plan_rollback

EP = "vpce-0a1b2c3d4e5f60001"
OPEN = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})
FIXED = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                                  {"Sid": "VpceGuardDenyOutsideOrg", "Effect": "Deny", "Principal": "*",
                                   "Action": "*", "Resource": "*"}]})


def record(*actions: Action, status: str = "remediated", kind: str = "evaluation") -> dict[str, Any]:
    return {"record_type": kind, "status": status, "rule_id": "r",
            "actions": [a.model_dump(mode="json") for a in actions]}


POLICY_FIX = Action(kind="set_endpoint_policy", resource_id=EP, params={"policy_document": FIXED},
                    before={"policy_document": OPEN}, after={"policy_document": FIXED})
RT_FIX = Action(kind="add_route_tables", resource_id=EP, params={"route_table_ids": ["rtb-2", "rtb-3"]},
                before={"route_table_ids": ["rtb-1"]}, after={"route_table_ids": ["rtb-1", "rtb-2", "rtb-3"]})


def endpoint(policy: str | None = FIXED, tables: tuple[str, ...] = ("rtb-3", "rtb-1", "rtb-2")) -> Endpoint:
    return Endpoint(id=EP, vpc_id="vpc-1", type="Gateway", service_name="com.amazonaws.us-east-1.s3",
                    state="available", policy_document=policy, route_table_ids=tables)


def test_inverse_restores_the_exact_before_policy_and_removes_only_what_the_fix_added() -> None:
    # whitespace differences in the current policy are not a change
    current = endpoint(policy=json.dumps(json.loads(FIXED), indent=2))
    pol, rts = plan_rollback(record(POLICY_FIX, RT_FIX), current, EP)
    assert pol.kind == "set_endpoint_policy" and pol.params["policy_document"] == OPEN
    assert rts.kind == "remove_route_tables" and rts.params["route_table_ids"] == ["rtb-2", "rtb-3"]
    assert rts.after == {"route_table_ids": ["rtb-1"]}


@pytest.mark.parametrize(("rec", "current", "why"), [
    (None, endpoint(), "no such ledger record"),
    (record(POLICY_FIX, status="dry_run"), endpoint(), "not remediated"),
    (record(POLICY_FIX, kind="rollback"), endpoint(), "rollback record"),
    (record(), endpoint(), "no actions"),
    (record(POLICY_FIX), None, "no longer exists"),
    (record(POLICY_FIX), endpoint(policy=OPEN), "policy changed since"),
    (record(RT_FIX), endpoint(tables=("rtb-1", "rtb-2")), "route tables changed since"),
    (record(Action(kind="set_endpoint_policy", resource_id=EP, params={"policy_document": FIXED},
                   after={"policy_document": FIXED})), endpoint(), "no before-policy"),
    (record(Action(kind="enable_vpc_attribute", resource_id=EP)), endpoint(), "not supported"),
])
def test_refusals(rec: dict[str, Any] | None, current: Endpoint | None, why: str) -> None:
    with pytest.raises(Refusal, match=why):
        plan_rollback(rec, current, EP)


def test_requests_are_validated() -> None:
    ok = {"account": "123456789012", "region": "us-east-1", "resource_id": EP, "record_sk": "EVAL#x"}
    assert RollbackRequest.model_validate(ok).resource_id == EP
    for bad in ({**ok, "account": "12"}, {**ok, "record_sk": "STATE#r"}, {**ok, "resource_id": "x"},
                {**ok, "extra": 1}):
        with pytest.raises(ValueError):
            RollbackRequest.model_validate(bad)
