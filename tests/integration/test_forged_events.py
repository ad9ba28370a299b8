"""Forged events: what a member-account administrator can put on the hub bus cannot steer the hub.

EventBridge sets the envelope's `account` to the account an event came from; everything in `detail` is
whatever the sender wrote. So an event may only concern its own account, and what the function writes
comes from what it reads from AWS, never from the event. (SECURITY.md, "Who can trigger what".)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from devkit.seed import FULL_ACCESS_POLICY, SpineWorld, render_event, seed_vpc
from tests.support.faults import FaultInjector
from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard.policy import GUARD_SID

from .conftest import REGION, Invoke

ATTACKER, VICTIM = "111111111111", "222222222222"
ROLE = "vpce-guard-spoke"


@dataclass
class Member:
    account: str
    world: SpineWorld
    ec2: Any

    def endpoint(self) -> dict[str, Any]:
        return self.ec2.describe_vpc_endpoints(VpcEndpointIds=[self.world.ids["s3_endpoint"]])["VpcEndpoints"][0]


def _member(account: str) -> Member:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="seed")["Credentials"]
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    return Member(account, seed_vpc(ec2, REGION), ec2)


@pytest.fixture
def members(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> tuple[Member, Member]:
    monkeypatch.setenv("SPOKE_ROLE_NAME", ROLE)
    return _member(ATTACKER), _member(VICTIM)


@pytest.fixture
def recorder() -> Any:
    rec = FaultInjector()
    with rec.installed():
        yield rec


def _assumed_accounts(recorder: FaultInjector) -> set[str]:
    return {c.params.get("RoleArn", "").split(":")[4] for c in recorder.calls
            if c.name == "sts.AssumeRole" and c.stage == "call"}


def test_an_event_from_one_account_claiming_another_is_rejected_and_never_reaches_it(
        invoke: Invoke, members: tuple[Member, Member], recorder: FaultInjector, ledger_table: Any) -> None:
    victim = members[1]
    before = victim.endpoint()
    # The attacker writes the victim's account and endpoint into `detail`; EventBridge stamps its own account.
    event = render_event("modify-vpc-endpoint.json", victim.world.mapping(), account=VICTIM)
    event["account"] = ATTACKER

    result = invoke(event)

    assert result["disposition"] == "rejected" and "is not the account the event came from" in result["reason"]
    assert VICTIM not in _assumed_accounts(recorder), "the hub never assumed a role in the victim's account"
    assert victim.endpoint() == before
    filed = ledger_table.query(KeyConditionExpression=Key("pk").eq(f"EVENT#{ATTACKER}#{REGION}"))["Items"]
    assert [i["status"] for i in filed] == ["rejected"], "the rejection is filed under the sender"
    assert not ledger_table.query(KeyConditionExpression=Key("pk").eq(f"EVENT#{VICTIM}#{REGION}"))["Items"]


def test_ids_of_another_account_are_looked_up_only_in_the_senders_account(
        invoke: Invoke, members: tuple[Member, Member], recorder: FaultInjector) -> None:
    victim = members[1]
    before = victim.endpoint()

    result = invoke(render_event("modify-vpc-endpoint.json", victim.world.mapping(), account=ATTACKER))

    assert _assumed_accounts(recorder) == {ATTACKER}
    assert {(r["rule_id"], r["status"]) for r in result["results"]} == {("resource-exists", "skipped")}
    assert victim.endpoint() == before


def test_what_is_written_comes_from_aws_not_from_the_event(
        invoke: Invoke, members: tuple[Member, Member], org_id: str) -> None:
    attacker = members[0]
    actual = json.loads(attacker.endpoint()["PolicyDocument"])
    event = render_event("modify-vpc-endpoint.json", attacker.world.mapping(), account=ATTACKER)
    # The event claims a harmless policy was set, and carries text an unwary fix might copy.
    claimed = {"Version": "2012-10-17", "Statement": [{"Sid": "InjectedByEvent", "Effect": "Allow",
                                                       "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                                                       "Action": "*", "Resource": "*"}]}
    request = event["detail"]["requestParameters"]
    target = request.get("ModifyVpcEndpointRequest", request)
    target["PolicyDocument"] = json.dumps(claimed)

    invoke(event)

    written = json.loads(attacker.endpoint()["PolicyDocument"])
    assert actual == json.loads(FULL_ACCESS_POLICY), "precondition: the endpoint really is open"
    assert written["Statement"][:-1] == actual["Statement"], "the fix is computed from the policy AWS holds"
    assert written["Statement"][-1]["Sid"] == GUARD_SID and written["Statement"][-1]["Effect"] == "Deny"
    outsider = RequestContext.iam("arn:aws:iam::999999999999:root", "s3:GetObject", "arn:aws:s3:::corp/x",
                                  "o-outsider000", resource_org_id=org_id)
    assert evaluate(actual, outsider) and not evaluate(written, outsider)
    assert "InjectedByEvent" not in json.dumps(written)
    assert sum(1 for s in written["Statement"] if s.get("Sid") == GUARD_SID) == 1
