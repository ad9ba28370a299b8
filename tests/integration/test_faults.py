"""Fault injection: throttling, 5xx and stale credentials on chosen calls, through the real handler.

Every scenario ends in one of two states, and the ledger says which: the fix applied and recorded
(`remediated`), or not applied and recorded `failed` (with the invocation failed, so that Lambda retries
it, when the failure is transient). No record is lost and a retry never applies a fix twice.

Faults are injected with botocore event hooks (tests/support/faults.py); moto does everything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from devkit.seed import SpineWorld, render_event, seed_vpc
from tests.support import faults
from tests.support.faults import Call, FaultInjector
from tests.support.logs import captured_logs
from vpce_guard.pipeline import RetryLater
from vpce_guard.policy import GUARD_SID

from .conftest import ACCOUNT, REGION, Invoke, WarmHandler

POLICY_RULE = "endpoint-policy-org-confined"
ROUTES_RULE = "gateway-endpoint-route-tables"
#: vpce_guard.aws.RETRY_CONFIG says retries={"max_attempts": 8}; botocore reads that key as the number of
#: *retries* (total_max_attempts = max_attempts + 1), so a call is tried 9 times.
SDK_ATTEMPTS = 9


@pytest.fixture
def injector() -> Iterator[FaultInjector]:
    inj = FaultInjector()
    with inj.installed(), faults.no_backoff():
        yield inj


def _endpoint(ec2: Any, endpoint_id: str) -> dict[str, Any]:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


def _guards(ec2: Any, endpoint_id: str) -> int:
    statements = json.loads(_endpoint(ec2, endpoint_id)["PolicyDocument"])["Statement"]
    return sum(1 for s in statements if str(s.get("Sid", "")).startswith(GUARD_SID))


def _history(table: Any, resource_id: str, account: str = ACCOUNT) -> list[dict[str, Any]]:
    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#{account}#{REGION}#{resource_id}")
                        & Key("sk").begins_with("EVAL#"))["Items"]
    return sorted(items, key=lambda i: i["sk"])


def _statuses(table: Any, resource_id: str, rule: str, account: str = ACCOUNT) -> list[str]:
    return [i["status"] for i in _history(table, resource_id, account) if i["rule_id"] == rule]


def _state(table: Any, resource_id: str, rule: str, account: str = ACCOUNT) -> str:
    item = table.get_item(Key={"pk": f"RES#{account}#{REGION}#{resource_id}", "sk": f"STATE#{rule}"})["Item"]
    return str(item["status"])


def _endpoint_statuses(results: list[dict[str, Any]], world: SpineWorld) -> set[str]:
    """Statuses of the S3 endpoint's rules (the VPC-level network rules also report, on the VPC)."""
    return {r["status"] for r in results if r["resource_id"] == world.ids["s3_endpoint"]}


def _writes(inj: FaultInjector) -> int:
    return inj.count("ec2.ModifyVpcEndpoint")


def _is_policy_write(call: Call) -> bool:
    return "PolicyDocument" in call.params


def _assert_fixed_once(ec2: Any, world: SpineWorld) -> None:
    endpoint = _endpoint(ec2, world.ids["s3_endpoint"])
    assert _guards(ec2, world.ids["s3_endpoint"]) == 1, endpoint["PolicyDocument"]
    assert sorted(endpoint["RouteTableIds"]) == sorted({world.ids["rt1"], world.ids["rt2"], world.ids["main_rt"]})


# ------------------------------------------------------------------------------------- absorbed by the SDK
def test_throttled_reads_are_retried_by_the_sdk_and_the_fix_lands(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    injector.add(faults.throttle("ec2.DescribeVpcEndpoints", times=3, stage="send"))
    injector.add(faults.throttle("ec2.DescribeRouteTables", times=2, stage="send"))

    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    assert _endpoint_statuses(result["results"], world) == {"remediated"}
    assert injector.count("ec2.DescribeVpcEndpoints", "send") > injector.count("ec2.DescribeVpcEndpoints")
    _assert_fixed_once(ec2, world)
    assert _statuses(ledger_table, world.ids["s3_endpoint"], POLICY_RULE) == ["remediated"]


def test_server_errors_on_the_ledger_write_are_retried_by_the_sdk(
        invoke: Invoke, injector: FaultInjector, world: SpineWorld, ledger_table: Any) -> None:
    fault = injector.add(faults.server_error("dynamodb.TransactWriteItems", times=2, stage="send", skip=1))

    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    assert fault.fired == 2
    assert _endpoint_statuses(result["results"], world) == {"remediated"}
    assert _statuses(ledger_table, world.ids["s3_endpoint"], POLICY_RULE) == ["remediated"]
    assert _state(ledger_table, world.ids["s3_endpoint"], ROUTES_RULE) == "remediated"


# ------------------------------------------------------------------------------------- not applied, retried
def test_reads_still_throttled_after_the_sdk_retries_record_failed_and_fail_the_invocation(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    before = _endpoint(ec2, world.ids["s3_endpoint"])
    injector.add(faults.throttle("ec2.DescribeVpcEndpoints", times=1))

    with captured_logs() as logs, pytest.raises(RetryLater, match="RequestLimitExceeded"):
        invoke(event)

    assert _endpoint(ec2, world.ids["s3_endpoint"]) == before, "nothing may change when the read failed"
    assert _writes(injector) == 0
    intake = ledger_table.query(KeyConditionExpression=Key("pk").eq(f"EVENT#{ACCOUNT}#{REGION}"))["Items"]
    assert [(i["status"], "RequestLimitExceeded" in i["reason"]) for i in intake] == [("failed", True)]
    assert any(r.levelname == "ERROR" and "could not read configuration" in r.getMessage() for r in logs)

    # Lambda retries the invocation with the same event.
    result = invoke(event)
    assert _endpoint_statuses(result["results"], world) == {"remediated"}
    _assert_fixed_once(ec2, world)


def test_a_fix_that_fails_with_a_server_error_is_recorded_failed_and_the_retry_applies_it_once(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    endpoint = world.ids["s3_endpoint"]
    injector.add(faults.server_error("ec2.ModifyVpcEndpoint", times=1, when=_is_policy_write))

    with pytest.raises(RetryLater, match="InternalError"):
        invoke(event)

    assert _guards(ec2, endpoint) == 0, "the failed write was not applied"
    assert _statuses(ledger_table, endpoint, POLICY_RULE) == ["failed"]
    failed = next(i for i in _history(ledger_table, endpoint) if i["rule_id"] == POLICY_RULE)
    assert "InternalError" in failed["error"]
    assert json.loads(failed["before"]["policy_document"]) == json.loads(_endpoint(ec2, endpoint)["PolicyDocument"])
    assert _statuses(ledger_table, endpoint, ROUTES_RULE) == ["remediated"], "the other fix went through"
    assert _state(ledger_table, endpoint, POLICY_RULE) == "failed"

    writes_before_retry = _writes(injector)
    result = invoke(event)

    assert _writes(injector) - writes_before_retry == 1, "the retry fixes only what is still wrong"
    assert {(r["rule_id"], r["status"]) for r in result["results"] if r["resource_id"] == endpoint} == {
        (POLICY_RULE, "remediated"), (ROUTES_RULE, "compliant")}
    _assert_fixed_once(ec2, world)
    assert _statuses(ledger_table, endpoint, POLICY_RULE) == ["failed", "remediated"]
    assert _state(ledger_table, endpoint, POLICY_RULE) == "remediated"


def test_a_permanent_error_on_the_fix_is_recorded_failed_without_failing_the_invocation(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    injector.add(faults.Fault("ec2.ModifyVpcEndpoint", "UnauthorizedOperation", status=403, times=None,
                              when=_is_policy_write))

    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    statuses = {r["rule_id"]: r for r in result["results"]}
    assert statuses[POLICY_RULE]["status"] == "failed" and "UnauthorizedOperation" in statuses[POLICY_RULE]["error"]
    assert _guards(ec2, world.ids["s3_endpoint"]) == 0
    assert _statuses(ledger_table, world.ids["s3_endpoint"], POLICY_RULE) == ["failed"]


# ------------------------------------------------------------------------------------- applied, answer lost
def test_a_fix_applied_but_answered_with_server_errors_is_recorded_as_what_aws_shows(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    """Every attempt reaches AWS and is applied, every answer is a 500: the SDK gives up, AWS shows the fix."""
    fault = injector.add(faults.server_error("ec2.ModifyVpcEndpoint", times=None, stage="send",
                                             when=_is_policy_write))

    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    assert fault.fired == SDK_ATTEMPTS, "the SDK retried the write as often as RETRY_CONFIG allows"
    policy_result = {r["rule_id"]: r for r in result["results"]}[POLICY_RULE]
    assert policy_result["status"] == "remediated", policy_result
    assert "answered with an error" in policy_result["reason"]
    _assert_fixed_once(ec2, world)  # nine identical writes, one guard statement
    assert _statuses(ledger_table, world.ids["s3_endpoint"], POLICY_RULE) == ["remediated"]


# ------------------------------------------------------------------------------------- the ledger fails
def test_a_ledger_write_failing_after_the_fix_leaves_a_pending_record_and_the_retry_records_the_state(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    endpoint = world.ids["s3_endpoint"]
    # The first ledger write (the intent records) goes through; the one after the fixes fails for good.
    injector.add(faults.throttle("dynamodb.TransactWriteItems", skip=1, times=1))

    with captured_logs() as logs, pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        invoke(event)

    _assert_fixed_once(ec2, world)
    pending = {i["rule_id"]: i for i in _history(ledger_table, endpoint)}
    assert {rule: i["status"] for rule, i in pending.items()} == {POLICY_RULE: "pending", ROUTES_RULE: "pending"}
    assert GUARD_SID in pending[POLICY_RULE]["after"]["policy_document"], "the intended change is on record"
    assert pending[POLICY_RULE]["trigger"]["event_id"] == event["id"]
    assert _state(ledger_table, endpoint, POLICY_RULE) == "pending"
    failure = [r for r in logs if r.getMessage() == "ledger write failed"]
    assert failure and {rec["status"] for rec in failure[0].records  # type: ignore[attr-defined]
                        if rec["resource_id"] == endpoint} == {"remediated"}

    writes = _writes(injector)
    result = invoke(event)  # Lambda's retry

    assert _writes(injector) == writes, "no fix is applied twice"
    assert _endpoint_statuses(result["results"], world) == {"compliant"}
    _assert_fixed_once(ec2, world)
    assert _statuses(ledger_table, endpoint, POLICY_RULE) == ["pending", "compliant"]
    assert _state(ledger_table, endpoint, POLICY_RULE) == "compliant"


def test_a_ledger_write_failing_before_the_fix_changes_nothing(
        invoke: Invoke, injector: FaultInjector, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    before = _endpoint(ec2, world.ids["s3_endpoint"])
    injector.add(faults.server_error("dynamodb.TransactWriteItems", times=1))

    with pytest.raises(ClientError, match="InternalServerError"):
        invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    assert _writes(injector) == 0
    assert _endpoint(ec2, world.ids["s3_endpoint"]) == before
    # Nothing was evaluated into the ledger; the invocation still leaves its one record of the failure.
    [record] = ledger_table.scan()["Items"]
    assert (record["record_type"], record["status"]) == ("intake", "failed")
    assert "InternalServerError" in record["reason"]


# ------------------------------------------------------------------------------------- stale credentials
SPOKE = "111111111111"


@dataclass
class Spoke:
    world: SpineWorld
    ec2: Any


@pytest.fixture
def spoke(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Spoke:
    """The spine's world in a member account, reached (as the hub reaches it) through an assumed role."""
    monkeypatch.setenv("SPOKE_ROLE_NAME", "vpce-guard-spoke")
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{SPOKE}:role/vpce-guard-spoke", RoleSessionName="seed")["Credentials"]
    spoke_ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                             aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    return Spoke(seed_vpc(spoke_ec2, REGION), spoke_ec2)


def test_an_expired_spoke_session_is_replaced_and_the_fix_lands(
        invoke: Invoke, injector: FaultInjector, spoke: Spoke, ledger_table: Any) -> None:
    stale: dict[str, str] = {}

    def signed_with_the_first_spoke_session(call: Call) -> bool:
        if call.access_key in (None, "testing"):
            return False  # the hub's own credentials
        stale.setdefault("key", call.access_key)
        return call.access_key == stale["key"]

    injector.add(faults.expired_token("ec2.*", times=None, when=signed_with_the_first_spoke_session))

    result = invoke(render_event("modify-vpc-endpoint.json", spoke.world.mapping(), account=SPOKE))

    assert injector.count("sts.AssumeRole") == 2, "the stale session was dropped and the role assumed again"
    assert _endpoint_statuses(result["results"], spoke.world) == {"remediated"}
    assert _guards(spoke.ec2, spoke.world.ids["s3_endpoint"]) == 1
    assert _statuses(ledger_table, spoke.world.ids["s3_endpoint"], POLICY_RULE, SPOKE) == ["remediated"]


def test_a_session_expiring_during_the_fix_is_recorded_and_the_retry_in_the_same_container_assumes_anew(
        warm: Callable[..., WarmHandler], injector: FaultInjector, spoke: Spoke, ledger_table: Any) -> None:
    warm_handler = warm(SPOKE_ROLE_NAME="vpce-guard-spoke")
    event = render_event("modify-vpc-endpoint.json", spoke.world.mapping(), account=SPOKE)
    injector.add(faults.expired_token("ec2.ModifyVpcEndpoint", times=1, when=_is_policy_write))

    with pytest.raises(RetryLater, match="ExpiredToken"):
        warm_handler(event)
    assert _statuses(ledger_table, spoke.world.ids["s3_endpoint"], POLICY_RULE, SPOKE) == ["failed"]
    assert injector.count("sts.AssumeRole") == 1

    result = warm_handler(event)

    assert injector.count("sts.AssumeRole") == 2, "the retry did not reuse the session that was rejected"
    assert {(r["rule_id"], r["status"]) for r in result["results"]
            if r["resource_id"] == spoke.world.ids["s3_endpoint"]} == {(POLICY_RULE, "remediated"), (ROUTES_RULE, "compliant")}
    assert _guards(spoke.ec2, spoke.world.ids["s3_endpoint"]) == 1
    assert _statuses(ledger_table, spoke.world.ids["s3_endpoint"], POLICY_RULE, SPOKE) == ["failed", "remediated"]
