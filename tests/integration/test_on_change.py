"""The spine, end to end under moto: a CloudTrail event → rules → fixes → ledger, through the real handler."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devkit.seed import PLACEHOLDERS, SpineWorld, event_files, render_event
from tests.support.iam_eval import RequestContext, evaluate

from .conftest import REGION, TABLE, Invoke

ORG_OUTSIDER = "o-outsider000"


def _endpoint(ec2: Any, endpoint_id: str) -> dict[str, Any]:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


def _history(table: Any, resource_id: str) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#123456789012#{REGION}#{resource_id}")
                        & Key("sk").begins_with("EVAL#"))["Items"]
    return sorted(items, key=lambda i: i["sk"])


def _ctx(org: str | None, action: str = "s3:GetObject") -> RequestContext:
    return RequestContext(
        principal_arn="arn:aws:iam::111122223333:role/app", principal_account="111122223333",
        principal_org_id=org, principal_is_aws_service=False, service_principal=None,
        action=action, resource="arn:aws:s3:::bucket/key",
    )


def test_modify_vpc_endpoint_confines_default_policy_and_restores_route_table(
        invoke: Invoke, ec2: Any, world: SpineWorld, org_id: str, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    before = json.loads(_endpoint(ec2, endpoint)["PolicyDocument"])
    assert evaluate(before, _ctx(ORG_OUTSIDER)), "seeded policy must start open"

    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    after_ep = _endpoint(ec2, endpoint)
    after = json.loads(after_ep["PolicyDocument"])
    assert evaluate(after, _ctx(org_id)), "a principal of the organization is still allowed"
    assert not evaluate(after, _ctx(ORG_OUTSIDER)), "a principal of another organization is denied"
    assert not evaluate(after, _ctx(None)), "an anonymous principal is denied"
    assert before["Statement"][0] in after["Statement"], "existing statements are kept as they were"
    assert set(after_ep["RouteTableIds"]) == {world.ids["rt1"], world.ids["rt2"], world.ids["main_rt"]}

    statuses = {(r["rule_id"], r["resource_id"]): r["status"] for r in result["results"]}
    assert statuses[("endpoint-policy-org-confined", endpoint)] == "remediated"
    assert statuses[("gateway-endpoint-route-tables", endpoint)] == "remediated"

    records = {r["rule_id"]: r for r in _history(ledger_table, endpoint)}
    policy_rec = records["endpoint-policy-org-confined"]
    assert policy_rec["status"] == "remediated"
    assert json.loads(policy_rec["before"]["policy_document"]) == before
    assert json.loads(policy_rec["after"]["policy_document"]) == after
    assert policy_rec["trigger"]["event_name"] == "ModifyVpcEndpoint"
    assert policy_rec["trigger"]["actor_arn"].startswith("arn:aws:sts::")
    assert policy_rec["expires_at"] > 0
    rt_rec = records["gateway-endpoint-route-tables"]
    assert rt_rec["before"]["route_table_ids"] == [world.ids["rt1"]]
    assert set(rt_rec["after"]["route_table_ids"]) == {world.ids["rt1"], world.ids["rt2"], world.ids["main_rt"]}


def test_replaying_the_same_event_changes_nothing_more(invoke: Invoke, ec2: Any, world: SpineWorld) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    invoke(event)
    first = _endpoint(ec2, world.ids["s3_endpoint"])
    # A new delivery of the same change (a new event id: the same id is answered by idempotency, see
    # tests/integration/test_safety.py) re-evaluates and finds nothing left to fix.
    second_result = invoke({**event, "id": event["id"][:-4] + "beef"})
    second = _endpoint(ec2, world.ids["s3_endpoint"])
    assert json.loads(first["PolicyDocument"]) == json.loads(second["PolicyDocument"])
    assert sorted(first["RouteTableIds"]) == sorted(second["RouteTableIds"])
    assert {r["status"] for r in second_result["results"] if r["resource_id"] == world.ids["s3_endpoint"]} == {
        "compliant"}


def test_dry_run_changes_nothing_and_records_the_would_be_change(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    before = _endpoint(ec2, endpoint)
    result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    after = _endpoint(ec2, endpoint)
    assert json.loads(after["PolicyDocument"]) == json.loads(before["PolicyDocument"])
    assert after["RouteTableIds"] == before["RouteTableIds"]
    assert {r["status"] for r in result["results"] if r["resource_id"] == endpoint} == {"dry_run"}
    rec = {r["rule_id"]: r for r in _history(ledger_table, endpoint)}["endpoint-policy-org-confined"]
    assert rec["status"] == "dry_run"
    assert "GUARD" not in rec["before"]["policy_document"]
    assert "VpceGuardDenyOutsideOrg" in rec["after"]["policy_document"]


def test_allowed_org_ids_from_configuration_are_used_without_lookup(
        invoke: Invoke, ec2: Any, world: SpineWorld) -> None:
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()), AllowedOrgIds="o-configured01")
    doc = json.loads(_endpoint(ec2, world.ids["s3_endpoint"])["PolicyDocument"])
    assert evaluate(doc, _ctx("o-configured01"))
    assert not evaluate(doc, _ctx(ORG_OUTSIDER))


def test_create_route_table_event_finds_the_gateway_endpoints_of_its_vpc(
        invoke: Invoke, ec2: Any, world: SpineWorld) -> None:
    new_rt = ec2.create_route_table(VpcId=world.ids["vpc"])["RouteTable"]["RouteTableId"]
    event = render_event("create-route-table.json", {**world.mapping(), PLACEHOLDERS["rt1"]: new_rt})
    invoke(event)
    assert new_rt in _endpoint(ec2, world.ids["s3_endpoint"])["RouteTableIds"]


def test_route_table_tagged_exclude_stays_out(invoke: Invoke, ec2: Any, world: SpineWorld) -> None:
    ec2.create_tags(Resources=[world.ids["rt2"]], Tags=[{"Key": "vpce-guard:exclude", "Value": "true"}])
    invoke(render_event("associate-route-table.json", world.mapping()))
    assert world.ids["rt2"] not in _endpoint(ec2, world.ids["s3_endpoint"])["RouteTableIds"]


def test_failed_api_call_event_is_recorded_as_skipped_and_changes_nothing(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    event["detail"]["errorCode"] = "UnauthorizedOperation"
    before = _endpoint(ec2, world.ids["s3_endpoint"])
    result = invoke(event)
    assert result["disposition"] == "skipped"
    assert _endpoint(ec2, world.ids["s3_endpoint"]) == before
    items = ledger_table.scan()["Items"]
    assert [i["status"] for i in items] == ["skipped"]


@pytest.mark.parametrize("bad", [None, {}, {"detail": "x"}, [], "garbage", {"detail-type": 7, "detail": {}}])
def test_unreadable_event_gets_one_rejection_record_and_no_crash(invoke: Invoke, ledger_table: Any, bad: Any) -> None:
    result = invoke(bad)
    assert result["disposition"] in {"rejected", "skipped"}
    items = ledger_table.scan()["Items"]
    assert len(items) == 1 and items[0]["status"] in {"rejected", "skipped"}


@pytest.mark.parametrize("name", event_files())
def test_every_event_file_runs_through_the_handler(invoke: Invoke, world: SpineWorld, ledger_table: Any,
                                                    name: str) -> None:
    result = invoke(render_event(name, world.mapping()))
    assert result["disposition"] == "act", result
    assert not [r for r in result["results"] if r["status"] == "failed"], result
    assert result["ledger_items"] >= 1
    assert ledger_table.scan()["Count"] >= 1


def test_current_non_compliant_is_one_query_without_scan(invoke: Invoke, world: SpineWorld, ledger_table: Any) -> None:
    from vpce_guard.ledger import Ledger

    event = render_event("modify-vpc-endpoint.json", world.mapping())
    invoke(event, Mode="dry_run")
    open_items = list(Ledger(ledger_table).current("dry_run"))
    assert {i["resource_id"] for i in open_items} >= {world.ids["s3_endpoint"]}
    invoke({**event, "id": event["id"][:-4] + "beef"})  # a new event (the same id would be a redelivery)
    assert not [i for i in Ledger(ledger_table).current("dry_run") if i["resource_id"] == world.ids["s3_endpoint"]]
    assert {i["resource_id"] for i in Ledger(ledger_table).current("remediated")} >= {world.ids["s3_endpoint"]}


def test_ledger_table_matches_template(ledger_table: Any) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    ttl = client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    backups = client.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
