"""Reliability on a bad day: a failing dependency, an owner editing the same endpoint, a policy Python cannot
read, an event naming a thousand endpoints, two runs racing on one resource.

The promise these pin: enforcement never silently drops, an owner's change is never lost, and every resource
gets its own verdict. Each case runs through the real handler (or the real sweep path) under moto; faults and
the owner's concurrent edit are injected with botocore event hooks (tests/support).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from devkit.seed import FULL_ACCESS_POLICY, SpineWorld, render_event, seed_vpc
from tests.support import botocore_hooks, faults
from tests.support.faults import FaultInjector
from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard import ledger as ledger_mod
from vpce_guard import pipeline
from vpce_guard.config import Settings
from vpce_guard.models import Finding, Outcome, Status, Targets, Trigger
from vpce_guard.policy import GUARD_SID

from .conftest import ACCOUNT, REGION, TABLE, Invoke

POLICY_RULE = "endpoint-policy-org-confined"
OUTSIDER = "arn:aws:iam::999999999999:role/stranger"


@pytest.fixture
def injector() -> Iterator[FaultInjector]:
    inj = FaultInjector()
    with inj.installed(), faults.no_backoff():
        yield inj


def _policy(ec2: Any, endpoint_id: str) -> str:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["PolicyDocument"]


def _history(table: Any, resource_id: str, rule: str | None = None) -> list[dict[str, Any]]:
    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#{ACCOUNT}#{REGION}#{resource_id}")
                        & Key("sk").begins_with("EVAL#"))["Items"]
    return sorted((i for i in items if rule is None or i["rule_id"] == rule), key=lambda i: i["sk"])


def _state(table: Any, resource_id: str, rule: str) -> dict[str, Any] | None:
    return table.get_item(Key={"pk": f"RES#{ACCOUNT}#{REGION}#{resource_id}", "sk": f"STATE#{rule}"}).get("Item")


def _fresh(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "id": str(uuid.uuid4())}


def _insider(org_id: str, action: str, resource: str = "arn:aws:s3:::bucket/key") -> RequestContext:
    return RequestContext.iam(f"arn:aws:iam::{ACCOUNT}:role/app", action, resource, org_id=org_id)


def _outsider(action: str, resource: str = "arn:aws:s3:::bucket/key") -> RequestContext:
    return RequestContext.iam(OUTSIDER, action, resource)


# ------------------------------------------------------------------------------ 1. no silent fail-open
def test_mode_overrides_unreadable_on_every_try_fails_the_invocation_instead_of_running_dry(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    """SSM answers 500 on every try: the run must not turn enforce into a successful dry_run."""
    endpoint = world.ids["s3_endpoint"]
    injector.add(faults.server_error("ssm.GetParameter", times=None))
    event = render_event("modify-vpc-endpoint.json", world.mapping())

    with pytest.raises(pipeline.RetryLater, match="mode overrides"):
        invoke(event)

    assert json.loads(_policy(ec2, endpoint)) == json.loads(FULL_ACCESS_POLICY), "nothing was guessed at"
    intake = ledger_table.query(KeyConditionExpression=Key("pk").eq(f"EVENT#{ACCOUNT}#{REGION}"))["Items"]
    assert [i["status"] for i in intake] == ["failed"]
    assert "mode overrides" in intake[0]["reason"]
    assert not _history(ledger_table, endpoint, POLICY_RULE), "no dry_run verdict was recorded"

    injector.faults.clear()  # SSM recovers; Lambda's retry delivers the same event again
    result = invoke(event)
    assert {r["status"] for r in result["results"] if r["resource_id"] == endpoint
            and r["rule_id"] == POLICY_RULE} == {"remediated"}
    assert GUARD_SID in _policy(ec2, endpoint)


def test_a_warm_function_keeps_the_last_overrides_it_read_while_ssm_fails(
        warm: Any, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    """Once read, the operator's overrides stay in force through an SSM outage (neither lowered nor raised)."""
    endpoint = world.ids["s3_endpoint"]
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/vpce-guard/mode-overrides", Type="String", Value=json.dumps({"gateway-endpoint-route-tables": "off"}))
    handler = warm(MODE_OVERRIDES_MAX_AGE="0")
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    first = handler(_fresh(event))
    assert not [r for r in first["results"] if r["rule_id"] == "gateway-endpoint-route-tables"]

    injector.add(faults.server_error("ssm.GetParameter", times=None))
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PolicyDocument=FULL_ACCESS_POLICY)
    second = handler(_fresh(event))

    statuses = {(r["rule_id"], r["status"]) for r in second["results"] if r["resource_id"] == endpoint}
    assert (POLICY_RULE, "compliant") in statuses or (POLICY_RULE, "remediated") in statuses
    assert not [r for r in second["results"] if r["rule_id"] == "gateway-endpoint-route-tables"], \
        "the operator's `off` still holds"
    assert injector.count("ssm.GetParameter") >= 1, "the parameter was asked for again and failed"


# ------------------------------------------------------------------------------ 2. the owner's edit survives
def _owner_edits_after_first_read(monkeypatch: pytest.MonkeyPatch, endpoint: str, document: str) -> list[int]:
    """The owner writes `document` right after vpce-guard's first DescribeVpcEndpoints answers."""
    done: list[int] = []

    def edit(**_: Any) -> None:
        if done:
            return
        done.append(1)
        boto3.client("ec2", region_name=REGION).modify_vpc_endpoint(VpcEndpointId=endpoint, PolicyDocument=document)

    botocore_hooks.install(monkeypatch, "after-call.ec2.DescribeVpcEndpoints", edit)
    return done


def test_an_owner_edit_between_the_read_and_the_write_survives_and_the_ledger_names_what_was_replaced(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, org_id: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = world.ids["s3_endpoint"]
    owner_doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Sid": "NoWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}]})
    edited = _owner_edits_after_first_read(monkeypatch, endpoint, owner_doc)

    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    assert edited, "the owner's edit happened between vpce-guard's read and its write"
    final = json.loads(_policy(ec2, endpoint))
    assert "NoWrites" in [s.get("Sid") for s in final["Statement"]], "the owner's Deny is still there"
    assert not evaluate(final, _insider(org_id, "s3:PutObject")), "insiders still cannot write"
    assert not evaluate(final, _outsider("s3:GetObject")), "outsiders are denied"
    assert evaluate(final, _insider(org_id, "s3:GetObject"))
    [rec] = [r for r in _history(ledger_table, endpoint, POLICY_RULE) if r["status"] == "remediated"]
    assert json.loads(rec["before"]["policy_document"]) == json.loads(owner_doc), "before = what was replaced"
    assert [r["status"] for r in result["results"] if r["rule_id"] == POLICY_RULE] == ["remediated"]


def test_an_owner_who_confines_the_policy_meanwhile_keeps_exactly_their_document(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, org_id: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's scenario: an org-only Allow for s3:GetObject plus a Deny on s3:PutObject, written right
    after vpce-guard read the open policy. Nothing of vpce-guard's may replace it."""
    endpoint = world.ids["s3_endpoint"]
    owner_doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}},
        {"Sid": "NoWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}]})
    _owner_edits_after_first_read(monkeypatch, endpoint, owner_doc)

    invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    assert json.loads(_policy(ec2, endpoint)) == json.loads(owner_doc)
    final = json.loads(_policy(ec2, endpoint))
    assert not evaluate(final, _insider(org_id, "s3:PutObject"))
    assert not evaluate(final, _outsider("s3:GetObject"))
    statuses = [r["status"] for r in _history(ledger_table, endpoint, POLICY_RULE)]
    assert "remediated" not in statuses
    assert statuses[-1] == "compliant"
    assert _state(ledger_table, endpoint, POLICY_RULE)["status"] == "compliant"


# ------------------------------------------------------------------------------ 3. one unreadable policy
HUGE_NUMBER_POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*",'
                      '"Resource":"*","Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":'
                      + "9" * 4301 + "}}}]}")
DEEP_POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*",'
               '"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":'
               + "[" * 1000 + '"o-aaaaaaaaaa"' + "]" * 1000 + "}}}]}")


def _unreadable_world(ec2: Any, document: str) -> tuple[SpineWorld, str]:
    """The seeded VPC (its S3 endpoint open, with the default policy) plus a DynamoDB gateway endpoint whose
    policy Python's json cannot read."""
    world = seed_vpc(ec2, REGION, associate_all=True, dns_hostnames=True)
    bad = ec2.create_vpc_endpoint(VpcId=world.ids["vpc"], ServiceName=f"com.amazonaws.{REGION}.dynamodb",
                                  VpcEndpointType="Gateway", RouteTableIds=[world.ids["rt1"]],
                                  PolicyDocument=document)["VpcEndpoint"]["VpcEndpointId"]
    return world, bad


@pytest.mark.parametrize("document", [HUGE_NUMBER_POLICY, DEEP_POLICY], ids=["4301-digit number", "deep nesting"])
def test_an_unreadable_policy_fails_alone_and_its_open_neighbour_is_fixed_by_an_event(
        invoke: Invoke, ec2: Any, ledger_table: Any, document: str) -> None:
    world, bad = _unreadable_world(ec2, document)

    result = invoke(render_event("modify-vpc-attribute.json", world.mapping()))

    verdicts = {(r["resource_id"], r["rule_id"]): r["status"] for r in result["results"]}
    assert verdicts[(bad, POLICY_RULE)] == "failed"
    assert verdicts[(world.ids["s3_endpoint"], POLICY_RULE)] == "remediated"
    assert GUARD_SID in _policy(ec2, world.ids["s3_endpoint"])
    assert _policy(ec2, bad) == document, "the unreadable policy is left as it is"
    [rec] = _history(ledger_table, bad, POLICY_RULE)
    assert rec["status"] == "failed" and "cannot be read" in rec["reason"]


@pytest.mark.parametrize("document", [HUGE_NUMBER_POLICY, DEEP_POLICY], ids=["4301-digit number", "deep nesting"])
def test_an_unreadable_policy_fails_alone_and_its_open_neighbour_is_fixed_by_a_sweep(
        ec2: Any, ledger_table: Any, org_id: str, document: str) -> None:
    world, bad = _unreadable_world(ec2, document)
    rt = pipeline.Runtime(Settings(ledger_table=TABLE))

    result = pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True),
                                  Trigger(source="sweep"))

    assert result.disposition == "act"
    verdicts = {(o.resource_id or o.finding.resource_id, o.finding.rule_id): o.status for o in result.outcomes}
    assert verdicts[(bad, POLICY_RULE)] is Status.FAILED
    assert verdicts[(world.ids["s3_endpoint"], POLICY_RULE)] is Status.REMEDIATED
    assert GUARD_SID in _policy(ec2, world.ids["s3_endpoint"])
    assert _state(ledger_table, bad, POLICY_RULE)["status"] == "failed"


# ------------------------------------------------------------------------------ 4. bounded cost per event
def _delete_event_naming(ids: list[str], unsuccessful: list[str]) -> dict[str, Any]:
    event = render_event("delete-vpc-endpoints.json", {})
    request = event["detail"]["requestParameters"]["DeleteVpcEndpointsRequest"]
    request["VpcEndpointId"] = [{"tag": n, "content": i} for n, i in enumerate(ids, start=1)]
    event["detail"]["responseElements"]["DeleteVpcEndpointsResponse"]["unsuccessful"] = {"item": [
        {"error": {"code": "InvalidVpcEndpoint.NotFound", "message": f"The VpcEndpoint Id '{i}' does not exist"},
         "resourceId": i} for i in unsuccessful]}
    return event


def test_an_event_naming_a_thousand_unknown_endpoints_costs_a_few_calls_and_leaves_nothing_forever(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    ghosts = [f"vpce-{n:017x}" for n in range(1, 1001)]

    result = invoke(_delete_event_naming(ghosts, unsuccessful=ghosts))

    ec2_calls = [op for op in injector.operations() if op.startswith("ec2.")]
    assert len(ec2_calls) <= 10, ec2_calls[:20]
    items = ledger_table.scan()["Items"]
    assert len(items) <= 5, f"{len(items)} ledger items for one event"
    assert all("expires_at" in i for i in items if i.get("record_type") != "state"), "history expires"
    assert not [i for i in items if str(i["sk"]).startswith("STATE#")], "no state item for what never existed"
    assert result["disposition"] in ("act", "rejected", "skipped")


def test_an_event_naming_unknown_endpoints_aws_did_not_report_is_looked_up_in_one_call(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    """Ids the event's response does not list as unsuccessful are looked up: a few calls, not one per id."""
    ghosts = [f"vpce-{n:017x}" for n in range(1, 21)]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[world.ids["ssm_endpoint"]])  # the one real deletion

    invoke(_delete_event_naming([*ghosts, world.ids["ssm_endpoint"]], unsuccessful=[]))

    assert injector.count("ec2.DescribeVpcEndpoints") <= 3
    items = ledger_table.scan()["Items"]
    assert not [i for i in items if str(i["sk"]).startswith("STATE#") and i["resource_id"] in ghosts]


# ------------------------------------------------------------------------------ 5. ordered state
def _record(status: Status, observed: datetime, reason: str) -> ledger_mod.LedgerRecord:
    finding = Finding(rule_id=POLICY_RULE, resource_id="vpce-0123456789abcdef0", resource_type="vpc-endpoint",
                      status=status, reason=reason)
    [rec] = ledger_mod.records_for([Outcome(finding=finding, status=status, reason=reason)], Trigger(source="sweep"),
                                   account=ACCOUNT, region=REGION, ttl_days=7, now=observed + timedelta(seconds=30),
                                   observed=observed)
    return rec


def test_an_older_observation_never_replaces_a_newer_state(ledger_table: Any) -> None:
    book = ledger_mod.Ledger(ledger_table)
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    newer = _record(Status.DRY_RUN, t0 + timedelta(seconds=5), "policy allows principals outside the organization")
    older = _record(Status.COMPLIANT, t0, "every Allow is confined to the allowed organizations")

    book.write([newer])
    book.write([older])  # a run that read earlier finishes later

    state = _state(ledger_table, "vpce-0123456789abcdef0", POLICY_RULE)
    assert state["status"] == "dry_run"
    statuses = sorted(r["status"] for r in _history(ledger_table, "vpce-0123456789abcdef0"))
    assert statuses == ["compliant", "dry_run"], "both evaluations stay in the history"


def test_a_newer_state_written_between_the_read_and_the_write_is_kept_by_the_condition(ledger_table: Any) -> None:
    """The race itself: this run read no state item (or an old one), another run stored a newer observation
    before this write; the conditional put refuses to replace it, and the history keeps both."""
    book = ledger_mod.Ledger(ledger_table)
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    book.write([_record(Status.DRY_RUN, t0 + timedelta(seconds=5), "open")])
    older = _record(Status.COMPLIANT, t0, "confined")

    report = book.write([older], previous={older.state_key: {}})  # what this run had read: nothing

    assert report.superseded == [older.state_key] and not report.changes
    assert _state(ledger_table, "vpce-0123456789abcdef0", POLICY_RULE)["status"] == "dry_run"
    assert len(_history(ledger_table, "vpce-0123456789abcdef0")) == 2


def test_a_write_of_more_than_a_transaction_sends_history_in_batches_and_state_in_transactions(
        ledger_table: Any) -> None:
    book = ledger_mod.Ledger(ledger_table)
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    records = []
    for n in range(120):
        finding = Finding(rule_id=POLICY_RULE, resource_id=f"vpce-{n:017x}", resource_type="vpc-endpoint",
                          status=Status.COMPLIANT, reason="confined")
        records += ledger_mod.records_for([Outcome(finding=finding, status=Status.COMPLIANT, reason="confined")],
                                          Trigger(source="event"), account=ACCOUNT, region=REGION, ttl_days=7,
                                          now=t0, observed=t0)

    report = book.write(records)

    assert report.items == 240
    assert len(report.changes) == 120 and {c.previous for c in report.changes} == {None}
    items = ledger_table.scan()["Items"]
    assert sum(1 for i in items if i["sk"].startswith("STATE#")) == 120


def test_an_older_sweep_observation_never_replaces_a_newer_state(ledger_table: Any) -> None:
    book = ledger_mod.Ledger(ledger_table)
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    book.write([_record(Status.DRY_RUN, t0 + timedelta(seconds=5), "open")])

    book.write_sweep([_record(Status.COMPLIANT, t0, "confined")], account=ACCOUNT, region=REGION,
                     trigger=Trigger(source="sweep"), ttl_days=7, now=t0 + timedelta(seconds=40))

    assert _state(ledger_table, "vpce-0123456789abcdef0", POLICY_RULE)["status"] == "dry_run"


# ------------------------------------------------------------------------------ 6. the smaller ones
def test_a_lookalike_of_the_spoke_role_is_acted_on_and_raises_the_alarm_metric(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A role named like the spoke role, at another path of another account, was trusted by name before."""
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    event["detail"]["userIdentity"] = {
        "type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/vpce-guard-spoke/vpce-guard",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "vpce-guard-spoke",
                                             "arn": "arn:aws:iam::123456789012:role/shadow/vpce-guard-spoke"}}}

    result = invoke(event, SPOKE_ROLE_NAME="vpce-guard-spoke")

    assert result["disposition"] == "act"
    assert GUARD_SID in _policy(ec2, world.ids["s3_endpoint"])
    assert '"own_role_lookalike"' in capsys.readouterr().out


def test_the_real_spoke_session_is_ignored_without_an_alarm(
        invoke: Invoke, ec2: Any, world: SpineWorld, capsys: pytest.CaptureFixture[str]) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    event["detail"]["userIdentity"] = {
        "type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/vpce-guard-spoke/vpce-guard",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "vpce-guard-spoke",
                                             "arn": "arn:aws:iam::123456789012:role/vpce-guard-spoke"}}}

    result = invoke(event, SPOKE_ROLE_NAME="vpce-guard-spoke")

    assert result["disposition"] == "skipped"
    assert GUARD_SID not in _policy(ec2, world.ids["s3_endpoint"])
    assert "own_role_lookalike" not in capsys.readouterr().out


def test_an_unexpected_error_still_leaves_a_ledger_record_and_fails_for_a_retry(
        invoke: Invoke, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: Any) -> None:
        raise RuntimeError("something nobody expected")

    botocore_hooks.install(monkeypatch, "before-call.ec2.DescribeRouteTables", broken)

    with pytest.raises(RuntimeError, match="nobody expected"):
        invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    intake = ledger_table.query(KeyConditionExpression=Key("pk").eq(f"EVENT#{ACCOUNT}#{REGION}"))["Items"]
    assert [i["status"] for i in intake] == ["failed"]
    assert "RuntimeError: something nobody expected" in intake[0]["reason"]
