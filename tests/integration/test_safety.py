"""Safe to leave running, under moto, through the real handlers as template.yaml wires them: per-rule dry run,
exemptions and their expiry, idempotency, loop protection, flap protection, throttling, failures, rollback."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from devkit import template
from devkit.seed import FULL_ACCESS_POLICY, SpineWorld, confined_policy, render_event
from tests.support.botocore_hooks import CallCounter, FailTimes, ec2_error, install, json_error
from vpce_guard import admin
from vpce_guard.exemptions import Exemption, ExemptionRegistry, Scope
from vpce_guard.ledger import Ledger

from .conftest import ACCOUNT, REGION, TABLE, TABLES, Invoke

POLICY_RULE = "endpoint-policy-org-confined"
ROUTE_RULE = "gateway-endpoint-route-tables"
GUARD_SID = "VpceGuardDenyOutsideOrg"
ROOT = Path(__file__).resolve().parents[2]


def _policy(ec2: Any, endpoint_id: str) -> str:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["PolicyDocument"]


def _route_tables(ec2: Any, endpoint_id: str) -> set[str]:
    return set(ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["RouteTableIds"])


def _history(table: Any, resource_id: str) -> list[dict[str, Any]]:
    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#{ACCOUNT}#{REGION}#{resource_id}")
                        & Key("sk").begins_with("EVAL#"))["Items"]
    return sorted(items, key=lambda i: i["sk"])


def _status(result: dict[str, Any], rule_id: str, resource_id: str) -> str:
    [status] = [r["status"] for r in result["results"] if r["rule_id"] == rule_id and r["resource_id"] == resource_id]
    return status


def _event(world: SpineWorld) -> dict[str, Any]:
    return render_event("modify-vpc-endpoint.json", world.mapping())


def _fresh(event: dict[str, Any]) -> dict[str, Any]:
    """Another delivery of the same kind of change: a new EventBridge event id."""
    return {**event, "id": str(uuid.uuid4())}


def _admin(*argv: str) -> None:
    assert admin.main(["--exemptions-table", TABLES["ExemptionsTable"], "--ledger-table", TABLE, *argv]) == 0


# ------------------------------------------------------------------------------------------------ modes
def test_a_rule_in_dry_run_changes_nothing_and_records_the_would_be_change(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/vpce-guard/mode-overrides", Type="String", Value=json.dumps({POLICY_RULE: "dry_run"}))
    policy_before, tables_before = _policy(ec2, endpoint), _route_tables(ec2, endpoint)

    result = invoke(_event(world))

    assert _status(result, POLICY_RULE, endpoint) == "dry_run"
    assert _policy(ec2, endpoint) == policy_before, "the dry-run rule changed nothing"
    assert _status(result, ROUTE_RULE, endpoint) == "remediated", "the other rule is still enforced"
    assert _route_tables(ec2, endpoint) > tables_before
    [rec] = [r for r in _history(ledger_table, endpoint) if r["rule_id"] == POLICY_RULE]
    assert rec["status"] == "dry_run"
    assert rec["before"]["policy_document"] == policy_before
    would_be = json.loads(rec["after"]["policy_document"])
    assert GUARD_SID in [s.get("Sid") for s in would_be["Statement"]]
    assert rec["actions"][0]["kind"] == "set_endpoint_policy"


# ------------------------------------------------------------------------------------------------ exemptions
def test_an_exempt_endpoint_is_left_alone_and_fixed_once_its_exemption_expires(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    _admin("exemptions", "add", "--scope", "resource", "--target", endpoint, "--account", ACCOUNT,
           "--reason", "vendor appliance needs the default policy (CHG-1234)", "--owner", "team-payments",
           "--days", "7")
    policy_before, tables_before = _policy(ec2, endpoint), _route_tables(ec2, endpoint)
    event = _event(world)

    result = invoke(event)

    assert {_status(result, POLICY_RULE, endpoint), _status(result, ROUTE_RULE, endpoint)} == {"exempt"}
    assert (_policy(ec2, endpoint), _route_tables(ec2, endpoint)) == (policy_before, tables_before)
    recs = _history(ledger_table, endpoint)
    assert {r["status"] for r in recs} == {"exempt"}
    policy_rec = next(r for r in recs if r["rule_id"] == POLICY_RULE)
    assert policy_rec["details"]["exemption"]["owner"] == "team-payments"
    assert "CHG-1234" in policy_rec["reason"]
    assert GUARD_SID in policy_rec["after"]["policy_document"], "the record says what a fix would do"
    assert {i["resource_id"] for i in Ledger(ledger_table).current("exempt")} == {endpoint}

    # Time passes: the entry is still in the table (DynamoDB's TTL removes it only later) but its expiry is
    # behind us, so it stops applying by itself.
    registry = ExemptionRegistry(boto3.resource("dynamodb", region_name=REGION).Table(TABLES["ExemptionsTable"]))
    [entry] = registry.list(ACCOUNT)
    registry.put(entry.model_copy(update={"expires_at": int(datetime.now(UTC).timestamp()) - 1}))

    result = invoke(_fresh(event))

    assert {_status(result, POLICY_RULE, endpoint), _status(result, ROUTE_RULE, endpoint)} == {"remediated"}
    assert GUARD_SID in _policy(ec2, endpoint)


def test_an_ou_exemption_for_one_rule_covers_the_accounts_below_it(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    org = boto3.client("organizations", region_name=REGION)
    root = org.list_roots()["Roots"][0]["Id"]
    parent = org.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    child = org.create_organizational_unit(ParentId=parent, Name="payments")["OrganizationalUnit"]["Id"]
    org.move_account(AccountId=ACCOUNT, SourceParentId=root, DestinationParentId=child)
    _admin("exemptions", "add", "--scope", "ou", "--target", parent, "--rule", POLICY_RULE,
           "--reason", "legacy workloads migrate in Q1", "--owner", "platform", "--days", "30")

    result = invoke(_event(world))

    endpoint = world.ids["s3_endpoint"]
    assert _status(result, POLICY_RULE, endpoint) == "exempt"
    assert GUARD_SID not in _policy(ec2, endpoint)
    assert _status(result, ROUTE_RULE, endpoint) == "remediated", "the exemption names one rule only"


def test_a_tag_requests_an_exemption_only_where_the_registry_allows_it(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    ec2.create_tags(Resources=[endpoint], Tags=[{"Key": "vpce-guard:exempt", "Value": POLICY_RULE}])
    event = _event(world)
    assert _status(invoke(event), POLICY_RULE, endpoint) == "remediated", "a tag alone exempts nothing"

    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PolicyDocument=FULL_ACCESS_POLICY)
    _admin("exemptions", "add", "--scope", "account", "--target", ACCOUNT, "--tag-request",
           "--reason", "sandbox account: owners may opt out by tag", "--owner", "cloud-platform", "--days", "90")
    assert _status(invoke(_fresh(event)), POLICY_RULE, endpoint) == "exempt"
    assert GUARD_SID not in _policy(ec2, endpoint)


# ------------------------------------------------------------------------------------------------ idempotency
def test_the_same_event_delivered_twice_makes_one_change_and_one_record(
        invoke: Invoke, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CallCounter().install(monkeypatch)
    event = _event(world)

    first = invoke(event)
    calls_after_first = dict(counter.calls)
    items_after_first = ledger_table.scan()["Items"]
    second = invoke(copy.deepcopy(event))

    assert second == first, "a redelivery gets the first run's result"
    assert calls_after_first["ec2.ModifyVpcEndpoint"] == 2, "one fix per rule"
    assert {k: v for k, v in counter.calls.items() if k.startswith("ec2.")} == {
        k: v for k, v in calls_after_first.items() if k.startswith("ec2.")}, "the redelivery read and wrote nothing"
    assert len(ledger_table.scan()["Items"]) == len(items_after_first)
    recs = _history(ledger_table, world.ids["s3_endpoint"])
    assert sorted(r["rule_id"] for r in recs) == [POLICY_RULE, ROUTE_RULE], "one record per rule"


# ------------------------------------------------------------------------------------------------ loops
SPOKE_ROLE = template.parameter_values(template.load())["SpokeRoleName"]
SPOKE_IDENTITY = {
    "type": "AssumedRole", "principalId": "AROAEXAMPLESPOKE:vpce-guard",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{SPOKE_ROLE}/vpce-guard", "accountId": ACCOUNT,
    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLESPOKE", "accountId": ACCOUNT,
                                         "arn": f"arn:aws:iam::{ACCOUNT}:role/{SPOKE_ROLE}",
                                         "userName": SPOKE_ROLE}},
}
HUB_FUNCTION_IDENTITY = {
    "type": "AssumedRole", "principalId": "AROAEXAMPLEHUB:vpce-guard-RollbackFunction",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/vpce-guard-RollbackFunctionRole-1A2B3C/vpce-guard-Rollback",
    "accountId": ACCOUNT,
    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEHUB", "accountId": ACCOUNT,
                                         "arn": f"arn:aws:iam::{ACCOUNT}:role/vpce-guard/"
                                                "vpce-guard-RollbackFunctionRole-1A2B3C",
                                         "userName": "vpce-guard-RollbackFunctionRole-1A2B3C"}},
}


@pytest.mark.parametrize("identity", [SPOKE_IDENTITY, HUB_FUNCTION_IDENTITY], ids=["spoke-role", "hub-role-path"])
def test_an_event_caused_by_vpce_guards_own_role_is_ignored(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, identity: dict[str, Any]) -> None:
    endpoint = world.ids["s3_endpoint"]
    event = _event(world)
    event["detail"]["userIdentity"] = identity
    policy_before = _policy(ec2, endpoint)

    result = invoke(event)

    assert result["disposition"] == "skipped"
    assert "vpce-guard" in result["reason"] and "loop" in result["reason"]
    assert _policy(ec2, endpoint) == policy_before
    [item] = ledger_table.scan()["Items"]
    assert item["status"] == "skipped" and item["record_type"] == "intake"
    assert item["trigger"]["actor_arn"] == identity["arn"]


# ------------------------------------------------------------------------------------------------ flapping
def test_a_resource_flipped_back_four_times_is_flapping_after_the_third_fix(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    event = _event(world)
    statuses = []
    for _ in range(4):
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PolicyDocument=FULL_ACCESS_POLICY)  # someone undoes it
        statuses.append(_status(invoke(_fresh(event)), POLICY_RULE, endpoint))

    assert statuses == ["remediated", "remediated", "remediated", "flapping"]
    assert GUARD_SID not in _policy(ec2, endpoint), "the fourth flip was left as it is"
    assert _status(invoke(_fresh(event)), POLICY_RULE, endpoint) == "flapping", "and it is not touched again"
    assert GUARD_SID not in _policy(ec2, endpoint)
    flapping_now = {i["resource_id"]: i for i in Ledger(ledger_table).current("flapping")}
    assert flapping_now[endpoint]["rule_id"] == POLICY_RULE
    last = [r for r in _history(ledger_table, endpoint) if r["rule_id"] == POLICY_RULE][-1]
    assert last["status"] == "flapping" and last["details"]["flapping"]["fixes_in_window"] == 3

    # An operator clears it: the next evaluation fixes it again.
    _admin("flapping", "clear", "--account", ACCOUNT, "--region", REGION, "--resource-id", endpoint,
           "--rule", POLICY_RULE, "--reason", "owner fixed their pipeline")
    assert _status(invoke(_fresh(event)), POLICY_RULE, endpoint) == "remediated"
    assert GUARD_SID in _policy(ec2, endpoint)


# ------------------------------------------------------------------------------------------------ failures
def test_throttled_calls_are_retried_and_succeed(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ec2_throttle = FailTimes(1, lambda r: ec2_error(r, "RequestLimitExceeded", "Request limit exceeded.", 503))
    ddb_throttle = FailTimes(1, lambda r: json_error(r, "ThrottlingException", "Rate of requests exceeds the limit"))
    install(monkeypatch, "before-send.ec2.ModifyVpcEndpoint", ec2_throttle)
    install(monkeypatch, "before-send.dynamodb.TransactWriteItems", ddb_throttle)

    result = invoke(_event(world))

    endpoint = world.ids["s3_endpoint"]
    assert {_status(result, POLICY_RULE, endpoint), _status(result, ROUTE_RULE, endpoint)} == {"remediated"}
    assert ec2_throttle.left == 0 and ec2_throttle.attempts == 3, "2 fixes, the first one retried once"
    assert ddb_throttle.left == 0 and ddb_throttle.attempts == 3, "2 ledger writes (intents, outcomes), the first one retried once"
    assert GUARD_SID in _policy(ec2, endpoint)
    assert {r["status"] for r in _history(ledger_table, endpoint)} == {"remediated"}


def test_a_fix_aws_refuses_is_recorded_failed_with_the_error(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, "before-send.ec2.ModifyVpcEndpoint", FailTimes(
        99, lambda r: ec2_error(r, "UnauthorizedOperation", "You are not authorized to perform this operation.", 403)))
    endpoint = world.ids["s3_endpoint"]
    policy_before = _policy(ec2, endpoint)

    result = invoke(_event(world))

    assert {_status(result, POLICY_RULE, endpoint), _status(result, ROUTE_RULE, endpoint)} == {"failed"}
    assert _policy(ec2, endpoint) == policy_before
    recs = _history(ledger_table, endpoint)
    assert len(recs) == 2, "the final records replaced the write-ahead ones"
    assert all("UnauthorizedOperation" in r["error"] for r in recs)


def test_a_fix_interrupted_after_its_write_is_still_in_the_ledger(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    crashes = {"left": 1}

    def function_dies(**_: Any) -> None:  # after AWS applied the write, before anything else happens
        if crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("Task timed out after 60.00 seconds")

    install(monkeypatch, "after-call.ec2.ModifyVpcEndpoint", function_dies)
    endpoint = world.ids["s3_endpoint"]
    policy_before = _policy(ec2, endpoint)
    event = _event(world)

    with pytest.raises(RuntimeError):
        invoke(event)

    # Both fixes were recorded as started; the function died right after the first write reached AWS.
    recs = {r["rule_id"]: r for r in _history(ledger_table, endpoint)}
    assert {r["status"] for r in recs.values()} == {"pending"}
    applied = _policy(ec2, endpoint)
    if GUARD_SID in applied:  # the policy fix was the one that went through (rule order is not fixed)
        first, second = POLICY_RULE, ROUTE_RULE
        assert recs[POLICY_RULE]["before"]["policy_document"] == policy_before
        assert json.loads(recs[POLICY_RULE]["after"]["policy_document"]) == json.loads(applied)
    else:
        first, second = ROUTE_RULE, POLICY_RULE
        assert set(recs[ROUTE_RULE]["after"]["route_table_ids"]) == _route_tables(ec2, endpoint)

    # Lambda retries the same event (the failed run stored no idempotency result): it records what AWS shows.
    result = invoke(event)
    assert (_status(result, first, endpoint), _status(result, second, endpoint)) == ("compliant", "remediated")
    assert [r["status"] for r in _history(ledger_table, endpoint) if r["rule_id"] == first] == [
        "pending", "compliant"]


# ------------------------------------------------------------------------------------------------ rollback
def _rollback_event(endpoint: str, record_sk: str) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / "rollback" / "rollback.json").read_text())
    return {**event, "account": ACCOUNT, "region": REGION, "resource_id": endpoint, "record_sk": record_sk}


def test_rollback_restores_the_exact_before_policy_and_refuses_when_it_changed_since(
        invoke: Invoke, ec2: Any, world: SpineWorld, org_id: str, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    original = _policy(ec2, endpoint)
    event = _event(world)
    invoke(event)
    [fix] = [r for r in _history(ledger_table, endpoint) if r["rule_id"] == POLICY_RULE]

    out = invoke(_rollback_event(endpoint, fix["sk"]), function="RollbackFunction")

    assert out["status"] == "restored", out
    assert _policy(ec2, endpoint) == original, "exactly the recorded before-policy"
    assert "will fix it again" in out["warning"]
    rb = next(r for r in _history(ledger_table, endpoint) if r["record_type"] == "rollback")
    assert rb["status"] == "remediated" and rb["details"]["rolls_back"] == fix["sk"]
    assert rb["after"]["policy_document"] == original
    state = ledger_table.get_item(Key={"pk": f"RES#{ACCOUNT}#{REGION}#{endpoint}", "sk": f"STATE#{POLICY_RULE}"})
    assert state["Item"]["status"] == "non_compliant", "the state says the finding is open again, at once"
    assert state["Item"]["last_evaluation"] == rb["sk"]

    # Fixed again (the sweep or the next change), then someone edits the policy: a rollback of that fix
    # would destroy their edit, so it is refused and nothing is written.
    invoke(_fresh(event))
    refix = [r for r in _history(ledger_table, endpoint) if r["rule_id"] == POLICY_RULE and
             r["record_type"] == "evaluation" and r["status"] == "remediated"][-1]
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PolicyDocument=confined_policy(org_id))
    edited = _policy(ec2, endpoint)

    out = invoke(_rollback_event(endpoint, refix["sk"]), function="RollbackFunction")

    assert out["status"] == "refused" and "changed since" in out["reason"]
    assert _policy(ec2, endpoint) == edited
    refusal = [r for r in _history(ledger_table, endpoint) if r["record_type"] == "rollback"][-1]
    assert refusal["status"] == "skipped" and refusal["reason"].startswith("refused:")


def test_rollback_of_a_route_table_fix_removes_only_what_the_fix_added(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    tables_before = _route_tables(ec2, endpoint)
    invoke(_event(world))
    [fix] = [r for r in _history(ledger_table, endpoint) if r["rule_id"] == ROUTE_RULE]
    assert _route_tables(ec2, endpoint) > tables_before

    out = invoke(_rollback_event(endpoint, fix["sk"]), function="RollbackFunction")

    assert out["status"] == "restored", out
    assert _route_tables(ec2, endpoint) == tables_before


def test_an_exemption_lasts_at_most_a_year_and_must_be_in_the_future(aws_env: None, ledger_table: Any,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    base = ["exemptions", "add", "--scope", "account", "--target", ACCOUNT, "--reason", "x" * 5, "--owner", "me"]
    for when, says in ((["--days", "400"], "at most 366 days"),
                       (["--expires", (datetime.now(UTC) - timedelta(days=1)).isoformat()], "in the future")):
        assert admin.main(["--exemptions-table", TABLES["ExemptionsTable"], *base, *when]) == 2, "a usage error"
        [line] = capsys.readouterr().err.splitlines()
        assert says in line
    _admin(*base, "--days", "30")
    registry = ExemptionRegistry(boto3.resource("dynamodb", region_name=REGION).Table(TABLES["ExemptionsTable"]))
    [entry] = registry.list()
    assert entry.scope is Scope.ACCOUNT and entry.created_by and entry.active(datetime.now(UTC))
    _admin("exemptions", "expire", "--scope", "account", "--target", ACCOUNT)
    [ended] = registry.list()
    assert isinstance(ended, Exemption) and not ended.active(datetime.now(UTC))


def test_the_idempotency_store_shares_the_process_botocore_loader_with_the_ledger(
        ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """So the DynamoDB model the store's client parses at import is not parsed again for the ledger."""
    from vpce_guard import idempotency, pipeline
    from vpce_guard.config import Settings

    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    store = idempotency.persistence_store()
    rt = pipeline.Runtime(Settings(ledger_table=ledger_table.name))
    assert store.client._loader is rt.ledger.table.meta.client._loader
