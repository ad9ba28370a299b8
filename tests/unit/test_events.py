"""events.parse_event on the realistic fixtures in events/ and on the shapes CloudTrail really produces."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vpce_guard import events
from vpce_guard.models import Targets, Trigger

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
INVALID_DIR = EVENTS_DIR / "invalid"

ACCOUNT = "123456789012"
REGION = "us-east-1"
VPC = "vpc-0a1b2c3d4e5f60001"
VPCE_S3 = "vpce-0a1b2c3d4e5f60001"
VPCE_SSM = "vpce-0a1b2c3d4e5f60002"
RTB1 = "rtb-0a1b2c3d4e5f60001"
RTB2 = "rtb-0a1b2c3d4e5f60002"
SUBNET = "subnet-0a1b2c3d4e5f60001"
ASSOC = "rtbassoc-0a1b2c3d4e5f60001"
ASSOC_NEW = "rtbassoc-0a1b2c3d4e5f60002"
SG = "sg-0a1b2c3d4e5f60001"
ACTOR = "arn:aws:sts::123456789012:assumed-role/NetworkAdmin/alice"

#: Every file in events/ must have an entry here (a new fixture without one fails the suite).
EXPECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "create-vpc-endpoint.json": {"endpoint_ids": (VPCE_S3,), "vpc_ids": (VPC,)},
    "modify-vpc-endpoint.json": {"endpoint_ids": (VPCE_S3,)},
    "delete-vpc-endpoints.json": {"endpoint_ids": (VPCE_SSM,)},
    "create-route-table.json": {"route_table_ids": (RTB2,), "vpc_ids": (VPC,)},
    "associate-route-table.json": {"route_table_ids": (RTB2,), "subnet_ids": (SUBNET,)},
    "replace-route-table-association.json": {
        "route_table_ids": (RTB1,),
        "association_ids": (ASSOC, ASSOC_NEW),
    },
    "disassociate-route-table.json": {"association_ids": (ASSOC,)},
    "create-route.json": {"route_table_ids": (RTB1,)},
    "replace-route.json": {"route_table_ids": (RTB1,)},
    "delete-route.json": {"route_table_ids": (RTB1,)},
    "modify-vpc-attribute.json": {"vpc_ids": (VPC,)},
    "authorize-security-group-ingress.json": {"security_group_ids": (SG,)},
    "revoke-security-group-ingress.json": {"security_group_ids": (SG,)},
    "modify-security-group-rules.json": {"security_group_ids": (SG,)},
}

#: Every file in events/invalid/ must have an entry here: (disposition, start of the reason).
EXPECTED_INVALID: dict[str, tuple[str, str]] = {
    "unauthorized-modify-vpc-endpoint.json": ("skipped", "call failed: Client.UnauthorizedOperation: "),
    "missing-detail.json": ("rejected", "cannot read event: detail: Field required"),
    "unknown-event-name.json": (
        "skipped",
        "unsupported event name 'CreateVpcEndpointConnectionNotification'",
    ),
    "garbage-ids.json": ("rejected", "invalid endpoint id "),
}

FIXTURES = sorted(path.name for path in EVENTS_DIR.glob("*.json"))
INVALID_FIXTURES = sorted(path.name for path in INVALID_DIR.glob("*.json"))


def load(name: str, folder: Path = EVENTS_DIR) -> dict[str, Any]:
    return json.loads((folder / name).read_text())


def parse(event: Any) -> events.ParsedEvent:
    return events.parse_event(event)


def acted(event: Any) -> Targets:
    result = parse(event)
    assert result.disposition == "act", result.reason
    assert result.targets is not None
    return result.targets


# ------------------------------------------------------------------------------------------ fixtures
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_acts_with_expected_targets(name: str) -> None:
    assert name in EXPECTED, f"events/{name} has no expectation in tests/unit/test_events.py::EXPECTED"
    event = load(name)
    result = parse(event)

    assert result.disposition == "act", result.reason
    assert result.reason == ""
    assert result.targets == Targets(account=ACCOUNT, region=REGION, **EXPECTED[name])
    assert result.raw_account == ACCOUNT
    assert result.raw_region == REGION
    assert result.trigger == Trigger(
        source="event",
        event_id=event["id"],
        event_name=event["detail"]["eventName"],
        actor_arn=ACTOR,
        event_time=event["detail"]["eventTime"],
        issuer_arn="arn:aws:iam::123456789012:role/NetworkAdmin",
    )


def test_every_expectation_has_a_fixture() -> None:
    assert set(EXPECTED) == set(FIXTURES)
    assert set(EXPECTED_INVALID) == set(INVALID_FIXTURES)


def test_fixtures_cover_every_supported_event_once() -> None:
    names = [load(name)["detail"]["eventName"] for name in FIXTURES]
    assert sorted(names) == sorted(events.SUPPORTED_EVENTS)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_is_a_full_eventbridge_envelope(name: str) -> None:
    event = load(name)
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["source"] == "aws.ec2"
    assert event["detail-type"] == "AWS API Call via CloudTrail"
    detail = event["detail"]
    assert detail["eventSource"] == "ec2.amazonaws.com"
    assert detail["eventVersion"] in {"1.09", "1.10"}
    assert detail["readOnly"] is False
    assert detail["managementEvent"] is True
    assert detail["eventType"] == "AwsApiCall"
    assert detail["recipientAccountId"] == event["account"] == ACCOUNT
    assert detail["userIdentity"]["arn"] == ACTOR
    assert "errorCode" not in detail
    # The models accept the fixture as it is (the envelope has the fields of Powertools' EventBridgeModel).
    model = events.CloudTrailEvent.model_validate(event)
    assert model.detail.event_name == detail["eventName"]


def test_modify_vpc_endpoint_fixture_resets_to_full_access_and_drops_a_route_table() -> None:
    request = load("modify-vpc-endpoint.json")["detail"]["requestParameters"]["ModifyVpcEndpointRequest"]
    assert json.loads(request["PolicyDocument"]) == {
        "Version": "2008-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
    }
    assert events.flatten_items(request["RemoveRouteTableId"]) == [RTB2]


def test_modify_vpc_attribute_fixture_turns_dns_hostnames_off() -> None:
    request = load("modify-vpc-attribute.json")["detail"]["requestParameters"]
    assert request == {"vpcId": VPC, "enableDnsHostnames": {"value": False}}


@pytest.mark.parametrize("name", INVALID_FIXTURES)
def test_invalid_fixture_gets_its_disposition(name: str) -> None:
    assert name in EXPECTED_INVALID, f"events/invalid/{name} has no expectation in EXPECTED_INVALID"
    disposition, reason = EXPECTED_INVALID[name]
    result = parse(load(name, INVALID_DIR))
    assert result.disposition == disposition
    assert result.reason.startswith(reason), result.reason
    assert result.targets is None
    assert result.raw_account == ACCOUNT
    assert result.raw_region == REGION
    assert len(result.reason) <= events.MAX_REASON


def test_rejected_event_still_names_itself() -> None:
    event = load("garbage-ids.json", INVALID_DIR)
    trigger = parse(event).trigger
    assert trigger.event_id == event["id"]
    assert trigger.event_name == "ModifyVpcEndpoint"
    assert trigger.actor_arn == ACTOR


# ------------------------------------------------------------------------------------------ flattening
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ({}, []),
        ([], []),
        ("vpce-1", ["vpce-1"]),
        (7, [7]),
        ({"tag": 1, "content": "rtb-1"}, ["rtb-1"]),
        ([{"tag": 1, "content": "rtb-1"}, {"tag": 2, "content": "rtb-2"}], ["rtb-1", "rtb-2"]),
        ({"item": ["rtb-1", "rtb-2"]}, ["rtb-1", "rtb-2"]),
        ({"item": "rtb-1"}, ["rtb-1"]),
        ({"item": {"groupId": "sg-1"}}, [{"groupId": "sg-1"}]),
        ({"items": [{"groupId": "sg-1"}, {"groupId": "sg-2"}]}, [{"groupId": "sg-1"}, {"groupId": "sg-2"}]),
        ({"items": []}, []),
        (["a", ["b", {"item": ["c", {"tag": 3, "content": "d"}]}]], ["a", "b", "c", "d"]),
        ([None, "", {}, "a"], ["a"]),
        # A struct that happens to carry `tag` (TagSpecification) is a struct, not a wrapper.
        ({"tag": 1, "ResourceType": "vpc-endpoint"}, [{"tag": 1, "ResourceType": "vpc-endpoint"}]),
    ],
)
def test_flatten_items_forms(value: Any, expected: list[Any]) -> None:
    assert events.flatten_items(value) == expected


def test_flatten_items_limit_and_depth() -> None:
    assert events.flatten_items(list(range(10)), limit=3) == [0, 1, 2]
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        events.flatten_items(deep)


# ------------------------------------------------------------------------------------------ envelope
def with_detail(name: str, **changes: Any) -> dict[str, Any]:
    event = load(name)
    for key, value in changes.items():
        if value is _DROP:
            event["detail"].pop(key, None)
        else:
            event["detail"][key] = value
    return event


_DROP = object()


def test_account_and_region_must_agree_between_envelope_and_record() -> None:
    event = load("modify-vpc-endpoint.json")
    event["account"] = "111122223333"  # the envelope's view of the sender
    event["region"] = "eu-central-2"  # forwarding keeps the region the call was made in
    event["detail"]["recipientAccountId"] = "111122223333"
    event["detail"]["awsRegion"] = "eu-central-2"
    targets = acted(event)
    assert (targets.account, targets.region) == ("111122223333", "eu-central-2")

    event["region"] = "eu-west-1"
    result = parse(event)
    assert result.disposition == "rejected"
    assert "is not the region the event came from" in result.reason


@pytest.mark.parametrize("envelope", ["", "not-an-account"])
def test_an_event_without_a_well_formed_envelope_account_is_rejected(envelope: str) -> None:
    """The envelope's account is what EventBridge vouches for; without it, `detail` cannot be checked."""
    event = load("modify-vpc-endpoint.json")
    event["account"] = envelope
    result = parse(event)
    assert result.disposition == "rejected" and result.targets is None
    assert "envelope account" in result.reason


def test_an_event_claiming_another_account_than_the_one_it_came_from_is_rejected() -> None:
    """EventBridge sets the envelope's account to the sender's; `detail` is whatever the sender wrote."""
    event = load("modify-vpc-endpoint.json")
    event["account"] = "210987654321"
    event["detail"]["recipientAccountId"] = "111122223333"
    result = parse(event)
    assert result.disposition == "rejected" and result.targets is None
    assert "is not the account the event came from" in result.reason
    assert result.raw_account == "210987654321", "the rejection is filed under the sender's account"


def test_account_and_region_fall_back_to_envelope() -> None:
    event = with_detail("modify-vpc-endpoint.json", recipientAccountId=_DROP, awsRegion=None)
    event["account"] = "210987654321"
    event["region"] = "us-gov-west-1"
    result = parse(event)
    assert result.targets is not None
    assert (result.targets.account, result.targets.region) == ("210987654321", "us-gov-west-1")
    assert (result.raw_account, result.raw_region) == ("210987654321", "us-gov-west-1")


@pytest.mark.parametrize(
    ("field", "value"),
    [("recipientAccountId", "12345"), ("recipientAccountId", "12345678901a"), ("awsRegion", "us-east-1; rm")],
)
def test_malformed_account_or_region_is_rejected(field: str, value: str) -> None:
    result = parse(with_detail("modify-vpc-endpoint.json", **{field: value}))
    assert result.disposition == "rejected"
    assert "invalid account id" in result.reason or "invalid region" in result.reason
    # Best effort for the ledger: the well-formed envelope value.
    assert (result.raw_account, result.raw_region) == (ACCOUNT, REGION)


def test_actor_falls_back_to_session_issuer_then_invoked_by() -> None:
    event = load("modify-vpc-endpoint.json")
    identity = event["detail"]["userIdentity"]
    del identity["arn"]
    assert parse(event).trigger.actor_arn == "arn:aws:iam::123456789012:role/NetworkAdmin"
    del identity["sessionContext"]
    identity["invokedBy"] = "cloudformation.amazonaws.com"
    assert parse(event).trigger.actor_arn == "cloudformation.amazonaws.com"
    del identity["invokedBy"]
    result = parse(event)
    assert result.trigger.actor_arn is None
    assert result.disposition == "act"


def test_event_id_falls_back_to_cloudtrail_event_id() -> None:
    event = load("modify-vpc-endpoint.json")
    del event["id"]
    result = parse(event)
    assert result.trigger.event_id == event["detail"]["eventID"]
    assert result.disposition == "rejected"  # a real EventBridge event always has an id


def test_event_time_falls_back_to_envelope_time() -> None:
    event = with_detail("modify-vpc-endpoint.json", eventTime=_DROP)
    assert parse(event).trigger.event_time == event["time"]


@pytest.mark.parametrize("value", [None, [], [1, 2], "a string", 42, 1.5, True, b"{}", ("tuple",)])
def test_non_object_input_is_rejected(value: Any) -> None:
    result = parse(value)
    assert result.disposition == "rejected"
    assert result.reason.startswith("cannot read event: expected a JSON object")
    assert result.targets is None
    assert result.trigger == Trigger(source="event")


def test_other_source_or_detail_type_is_skipped() -> None:
    event = load("modify-vpc-endpoint.json")
    event["source"] = "aws.s3"
    assert parse(event).disposition == "skipped"
    event = load("modify-vpc-endpoint.json")
    event["detail-type"] = "EC2 Instance State-change Notification"
    result = parse(event)
    assert (result.disposition, result.reason) == (
        "skipped",
        "not a CloudTrail API call (detail-type 'EC2 Instance State-change Notification')",
    )
    scheduled = {
        "version": "0",
        "id": "5b5f0a7e-8a56-4c4f-9f24-1f5b2b1f0c1d",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2025-03-11T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/vpce-guard-sweep"],
        "detail": {},
    }
    assert parse(scheduled).disposition == "skipped"


def test_other_event_source_is_skipped() -> None:
    result = parse(with_detail("modify-vpc-endpoint.json", eventSource="s3.amazonaws.com"))
    assert result.disposition == "skipped"
    assert "eventSource" in result.reason


@pytest.mark.parametrize("name", FIXTURES)
def test_failed_call_is_skipped(name: str) -> None:
    event = with_detail(
        name, errorCode="Client.DryRunOperation", errorMessage="Request would have succeeded."
    )
    result = parse(event)
    assert result.disposition == "skipped"
    assert result.reason == "call failed: Client.DryRunOperation: Request would have succeeded."
    assert result.targets is None


def test_unsupported_event_name_is_skipped() -> None:
    result = parse(with_detail("modify-vpc-endpoint.json", eventName="DescribeVpcEndpoints"))
    assert (result.disposition, result.reason) == ("skipped", "unsupported event name 'DescribeVpcEndpoints'")


def test_validation_error_reason_is_one_short_line() -> None:
    event = with_detail("modify-vpc-endpoint.json", eventName=12, requestParameters=["not", "a", "dict"])
    result = parse(event)
    assert result.disposition == "rejected"
    assert result.reason.startswith("cannot read event: ")
    assert "detail.eventName" in result.reason
    assert "detail.requestParameters" in result.reason


def test_long_multiline_error_message_is_clipped_to_one_line() -> None:
    event = with_detail("modify-vpc-endpoint.json", errorCode="Client.UnauthorizedOperation")
    event["detail"]["errorMessage"] = "denied\n" + "é" * 5000 + "\r\nend"
    reason = parse(event).reason
    assert len(reason) <= events.MAX_REASON
    assert "\n" not in reason
    assert "\r" not in reason
    assert reason.endswith("…")


# ------------------------------------------------------------------------------------------ id shapes
def endpoint_event(request: Any, response: Any = None, name: str = "ModifyVpcEndpoint") -> dict[str, Any]:
    return with_detail(
        "modify-vpc-endpoint.json", eventName=name, requestParameters=request, responseElements=response
    )


@pytest.mark.parametrize(
    "request_parameters",
    [
        {"ModifyVpcEndpointRequest": {"VpcEndpointId": VPCE_S3}},
        {"ModifyVpcEndpointRequest": {"vpcEndpointId": VPCE_S3}},
        {"modifyVpcEndpointRequest": {"VpcEndpointId": VPCE_S3}},
        {"VpcEndpointId": VPCE_S3},
        {"vpcEndpointId": VPCE_S3},
        {"vpcEndpointId": {"tag": 1, "content": VPCE_S3}},
        {"vpcEndpointId": [VPCE_S3]},
        {"vpcEndpointId": {"items": [{"vpcEndpointId": VPCE_S3}]}},
    ],
)
def test_endpoint_id_found_in_wrapped_and_flat_forms_and_both_casings(
    request_parameters: dict[str, Any],
) -> None:
    assert acted(endpoint_event(request_parameters)).endpoint_ids == (VPCE_S3,)


def test_delete_vpc_endpoints_reads_every_listed_id_once() -> None:
    request = {
        "DeleteVpcEndpointsRequest": {
            "VpcEndpointId": [
                {"tag": 1, "content": VPCE_S3},
                {"tag": 2, "content": VPCE_SSM},
                {"tag": 3, "content": VPCE_S3},
            ]
        }
    }
    assert acted(endpoint_event(request, name="DeleteVpcEndpoints")).endpoint_ids == (VPCE_S3, VPCE_SSM)


def test_ids_elsewhere_in_the_event_are_not_picked_up() -> None:
    # Route tables named in ModifyVpcEndpoint are not targets: the endpoint is (its rules check them).
    request = {"ModifyVpcEndpointRequest": {"VpcEndpointId": VPCE_S3, "AddRouteTableId": [RTB1, RTB2]}}
    targets = acted(endpoint_event(request))
    assert targets.route_table_ids == ()
    assert targets.endpoint_ids == (VPCE_S3,)


def test_create_vpc_endpoint_without_response_falls_back_to_the_vpc() -> None:
    event = with_detail("create-vpc-endpoint.json", responseElements=None)
    targets = acted(event)
    assert (targets.endpoint_ids, targets.vpc_ids) == ((), (VPC,))


def test_create_vpc_endpoint_with_neither_id_is_rejected() -> None:
    event = with_detail("create-vpc-endpoint.json", responseElements=None, requestParameters={})
    result = parse(event)
    assert (result.disposition, result.reason) == (
        "rejected",
        "no endpoint id or VPC id in CreateVpcEndpoint event",
    )


def test_create_vpc_endpoint_reads_the_real_interface_response_shape() -> None:
    # Shape of a real console CreateVpcEndpoint record: empty sets as "", single items as a dict.
    response = {
        "CreateVpcEndpointResponse": {
            "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
            "vpcEndpoint": {
                "state": "pending",
                "subnetIdSet": "",
                "routeTableIdSet": "",
                "vpcId": VPC,
                "tagSet": {"item": {"key": "Name", "value": "ssm"}},
                "vpcEndpointId": VPCE_SSM,
                "groupSet": {"item": {"groupName": "default", "groupId": SG}},
                "ownerId": 123456789012,
                "serviceName": "com.amazonaws.us-east-1.ssm",
                "vpcEndpointType": "Interface",
            },
            "requestId": "10525541-a268-4111-9b64-14cc88047573",
        }
    }
    request = {"CreateVpcEndpointRequest": {"VpcId": VPC, "ServiceName": "com.amazonaws.us-east-1.ssm"}}
    targets = acted(endpoint_event(request, response, name="CreateVpcEndpoint"))
    assert (targets.endpoint_ids, targets.vpc_ids, targets.security_group_ids) == ((VPCE_SSM,), (VPC,), ())


def test_create_route_table_without_response_falls_back_to_the_vpc() -> None:
    targets = acted(with_detail("create-route-table.json", responseElements=None))
    assert (targets.route_table_ids, targets.vpc_ids) == ((), (VPC,))


def test_authorize_by_group_name_takes_the_id_from_the_response() -> None:
    event = load("authorize-security-group-ingress.json")
    request = event["detail"]["requestParameters"]
    del request["groupId"]
    request["groupName"] = "ssm-endpoint"
    assert acted(event).security_group_ids == (SG,)


def test_referenced_groups_in_permissions_are_not_targets() -> None:
    event = load("authorize-security-group-ingress.json")
    permission = event["detail"]["requestParameters"]["ipPermissions"]["items"][0]
    permission["groups"] = {"items": [{"groupId": "sg-0a1b2c3d4e5f69999", "userId": ACCOUNT}]}
    assert acted(event).security_group_ids == (SG,)


def test_disassociate_picks_up_subnet_and_route_table_when_the_response_has_them() -> None:
    event = with_detail(
        "disassociate-route-table.json",
        responseElements={"requestId": "x", "_return": True, "subnetId": SUBNET, "routeTableId": RTB1},
    )
    targets = acted(event)
    assert (targets.association_ids, targets.subnet_ids, targets.route_table_ids) == (
        (ASSOC,),
        (SUBNET,),
        (RTB1,),
    )


@pytest.mark.parametrize(
    ("name", "request_parameters", "reason"),
    [
        (
            "modify-vpc-attribute.json",
            {"enableDnsSupport": {"value": False}},
            "no VPC id in ModifyVpcAttribute",
        ),
        ("create-route.json", {"destinationCidrBlock": "0.0.0.0/0"}, "no route table id in CreateRoute"),
        ("disassociate-route-table.json", {}, "no route table association id in DisassociateRouteTable"),
        ("modify-security-group-rules.json", None, "no security group id in ModifySecurityGroupRules"),
    ],
)
def test_missing_ids_are_rejected(name: str, request_parameters: Any, reason: str) -> None:
    result = parse(with_detail(name, requestParameters=request_parameters))
    assert result.disposition == "rejected"
    assert result.reason.startswith(reason), result.reason


@pytest.mark.parametrize(
    "bad",
    [
        "vpce-0a1b2c3d4e5f60001",  # right shape, wrong kind
        "VPC-0A1B2C3D4E5F60001",
        "vpc-0a1b2c3d4e5f6000",  # 16 digits
        "vpc-0a1b2c3d4e5f600012",  # 18 digits
        "vpc-0a1b2c3d4e5f60001\n",
        " vpc-0a1b2c3d4e5f60001",
        "vpc-0a1b2c3d4e5f6000g",
        "vpc-*",
        "",
        "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0a1b2c3d4e5f60001",
        12345678,
        {"value": "vpc-0a1b2c3d4e5f60001", "other": 1},
        ["vpc-0a1b2c3d4e5f60001", 5],
    ],
)
def test_malformed_ids_are_rejected(bad: Any) -> None:
    result = parse(with_detail("modify-vpc-attribute.json", requestParameters={"vpcId": bad}))
    if bad == "":
        # An empty value is an empty set in CloudTrail's JSON: the id is missing rather than malformed.
        assert result.reason == "no VPC id in ModifyVpcAttribute event"
    else:
        assert result.reason.startswith("invalid VPC id"), result.reason
    assert result.disposition == "rejected"


def test_legacy_eight_digit_ids_are_accepted() -> None:
    targets = acted(with_detail("modify-vpc-attribute.json", requestParameters={"vpcId": "vpc-1a2b3c4d"}))
    assert targets.vpc_ids == ("vpc-1a2b3c4d",)


def test_id_lists_are_capped() -> None:
    ids = [f"vpce-{n:017x}" for n in range(events.MAX_IDS + 1)]
    request = {
        "DeleteVpcEndpointsRequest": {"VpcEndpointId": [{"tag": n, "content": i} for n, i in enumerate(ids)]}
    }
    result = parse(endpoint_event(request, name="DeleteVpcEndpoints"))
    assert result.disposition == "rejected"
    assert result.reason == f"too many endpoint ids (more than {events.MAX_IDS})"

    request = {"DeleteVpcEndpointsRequest": {"VpcEndpointId": ids[: events.MAX_IDS]}}
    parsed = parse(endpoint_event(request, name="DeleteVpcEndpoints"))
    assert parsed.targets is not None
    assert parsed.targets.endpoint_ids == tuple(ids[: events.MAX_ACTED_IDS]), "acted on: the first of each kind"
    assert parsed.not_acted == tuple(ids[events.MAX_ACTED_IDS: events.MAX_IDS]), "the rest, named apart"


def test_ids_a_call_reports_unsuccessful_are_not_acted_on() -> None:
    ids = [f"vpce-{n:017x}" for n in range(3)]
    event = endpoint_event({"DeleteVpcEndpointsRequest": {"VpcEndpointId": ids}}, name="DeleteVpcEndpoints")
    event["detail"]["responseElements"] = {"DeleteVpcEndpointsResponse": {"unsuccessful": {"item": [
        {"error": {"code": "InvalidVpcEndpoint.NotFound", "message": "does not exist"}, "resourceId": ids[0]}]}}}
    assert acted(event).endpoint_ids == tuple(ids[1:])

    event["detail"]["responseElements"]["DeleteVpcEndpointsResponse"]["unsuccessful"]["item"] = [
        {"error": {"code": "InvalidVpcEndpoint.NotFound"}, "resourceId": i} for i in ids]
    result = parse(event)
    assert result.disposition == "skipped"
    assert "unsuccessful" in result.reason


def test_absurd_nesting_is_rejected_not_raised() -> None:
    deep: Any = VPCE_S3
    for _ in range(5000):
        deep = [deep]
    result = parse(endpoint_event({"ModifyVpcEndpointRequest": {"VpcEndpointId": deep}}))
    assert result.disposition == "rejected"


def test_huge_unicode_event_does_not_break_anything() -> None:
    event = load("modify-vpc-endpoint.json")
    event["detail"]["userAgent"] = "🚀" * 200_000
    event["detail"]["eventName"] = "Modify\u202eVpcEndpoint\x00" * 50
    result = parse(event)
    assert result.disposition == "skipped"
    assert len(result.reason) <= events.MAX_REASON
    assert result.trigger.event_name is not None
    assert len(result.trigger.event_name) <= 128


def test_parsed_event_is_frozen() -> None:
    result = parse(load("modify-vpc-endpoint.json"))
    with pytest.raises(AttributeError):
        result.disposition = "rejected"  # type: ignore[misc]


def test_fixture_loading_is_not_shared_between_tests() -> None:
    # Tests mutate loaded fixtures; make sure each load is a fresh object.
    first = load("modify-vpc-endpoint.json")
    second = copy.deepcopy(first)
    first["detail"]["eventName"] = "changed"
    assert load("modify-vpc-endpoint.json") == second
