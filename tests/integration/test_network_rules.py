"""Network rules end to end under moto: CloudTrail event → real handler → EC2 writes → ledger (issue 4).

moto accepts what AWS refuses (two VPC attributes in one call, private DNS with VPC DNS off) and does not
materialise routes for AddRouteTableIds, so these tests look at the calls vpce-guard makes (recorded with a
botocore hook on every client the handler builds) and at the endpoint's RouteTableIds, never at moto's gaps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.handlers
import pytest

from devkit.seed import PLACEHOLDERS, SpineWorld, confined_policy, render_event, seed_vpc
from tests.support.iam_eval import RequestContext, evaluate

from .conftest import ACCOUNT, REGION, Invoke

WRITES = ("Modify", "Create", "Authorize", "Revoke", "Delete", "Replace", "Associate")
Calls = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def ec2_writes(monkeypatch: pytest.MonkeyPatch) -> Callable[[], Calls]:
    """EC2 write calls (operation, parameters) made by clients created from now on, in order."""
    calls: Calls = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name.startswith(WRITES):
            calls.append((model.name, dict(params)))

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS",
                        [*botocore.handlers.BUILTIN_HANDLERS, ("before-parameter-build.ec2", record)])

    def since_last() -> Calls:
        out = list(calls)
        calls.clear()
        return out

    return since_last


def _history(table: Any, resource_id: str) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#{ACCOUNT}#{REGION}#{resource_id}")
                        & Key("sk").begins_with("EVAL#"))["Items"]
    return sorted(items, key=lambda i: i["sk"])


def _attr(ec2: Any, vpc: str, name: str) -> bool:
    return ec2.describe_vpc_attribute(VpcId=vpc, Attribute=name)[name[0].upper() + name[1:]]["Value"]


def _results(result: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [r for r in result["results"] if r["rule_id"] == rule]


def _endpoint(ec2: Any, endpoint_id: str) -> dict[str, Any]:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


# ------------------------------------------------------------------------------------------------ VPC DNS
def test_dns_hostnames_off_with_ssm_private_dns_is_fixed_with_one_record_per_change(
        invoke: Invoke, ec2: Any, org_id: str, ledger_table: Any, ec2_writes: Callable[[], Calls]) -> None:
    w = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=False)
    ec2_writes()

    result = invoke(render_event("modify-vpc-attribute.json", w.mapping()))

    assert ec2_writes() == [("ModifyVpcAttribute", {"VpcId": w.ids["vpc"], "EnableDnsHostnames": {"Value": True}})]
    assert _attr(ec2, w.ids["vpc"], "enableDnsHostnames") and _attr(ec2, w.ids["vpc"], "enableDnsSupport")
    [rec] = [r for r in _history(ledger_table, w.ids["vpc"]) if r["rule_id"] == "private-dns-vpc-dns"]
    assert rec["status"] == "remediated" and rec["trigger"]["event_name"] == "ModifyVpcAttribute"
    assert rec["before"] == {"enableDnsHostnames": False} and rec["after"] == {"enableDnsHostnames": True}
    assert w.ids["ssm_endpoint"] in rec["reason"]
    assert [r["status"] for r in _results(result, "gateway-endpoint-dns-support")] == ["compliant"]


def test_both_attributes_off_are_turned_on_support_first_one_call_and_one_record_each(
        invoke: Invoke, ec2: Any, ledger_table: Any, ec2_writes: Callable[[], Calls]) -> None:
    w = seed_vpc(ec2, REGION, with_s3=False, dns_support=False, dns_hostnames=False)
    ec2_writes()

    invoke(render_event("modify-vpc-attribute.json", w.mapping()))

    vpc = w.ids["vpc"]
    assert [c for c in ec2_writes() if c[0] == "ModifyVpcAttribute"] == [
        ("ModifyVpcAttribute", {"VpcId": vpc, "EnableDnsSupport": {"Value": True}}),
        ("ModifyVpcAttribute", {"VpcId": vpc, "EnableDnsHostnames": {"Value": True}}),
    ]
    records = [r for r in _history(ledger_table, vpc) if r["rule_id"] == "private-dns-vpc-dns"]
    assert sorted((int(r["details"]["step"]), r["status"], next(iter(r["after"]))) for r in records) == [
        (1, "remediated", "enableDnsSupport"), (2, "remediated", "enableDnsHostnames")]


def test_gateway_and_interface_endpoints_needing_dns_support_share_one_call(
        invoke: Invoke, ec2: Any, org_id: str, ledger_table: Any, ec2_writes: Callable[[], Calls]) -> None:
    w = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_support=False,
                 dns_hostnames=True)
    ec2_writes()

    invoke(render_event("modify-vpc-attribute.json", w.mapping()))

    assert ec2_writes() == [("ModifyVpcAttribute", {"VpcId": w.ids["vpc"], "EnableDnsSupport": {"Value": True}})]
    records = {r["rule_id"]: r for r in _history(ledger_table, w.ids["vpc"])}
    assert records["private-dns-vpc-dns"]["status"] == "remediated"
    assert records["gateway-endpoint-dns-support"]["status"] == "remediated"
    shared = {rule: r["details"].get("write_made_by") for rule, r in records.items() if r["rule_id"] in (
        "private-dns-vpc-dns", "gateway-endpoint-dns-support")}
    assert sorted(shared.items(), key=lambda kv: kv[1] is None) in (
        [("private-dns-vpc-dns", "gateway-endpoint-dns-support"), ("gateway-endpoint-dns-support", None)],
        [("gateway-endpoint-dns-support", "private-dns-vpc-dns"), ("private-dns-vpc-dns", None)],
    ), "one record says the call was made for the other rule's finding"


def test_failed_modify_vpc_attribute_event_is_skipped_and_changes_nothing(
        invoke: Invoke, ec2: Any, ledger_table: Any, ec2_writes: Callable[[], Calls]) -> None:
    w = seed_vpc(ec2, REGION, dns_hostnames=False)
    event = render_event("modify-vpc-attribute.json", w.mapping())
    event["detail"]["errorCode"] = "Client.InvalidParameterCombination"
    ec2_writes()
    result = invoke(event)
    assert result["disposition"] == "skipped" and "InvalidParameterCombination" in result["reason"]
    assert ec2_writes() == [] and not _attr(ec2, w.ids["vpc"], "enableDnsHostnames")
    assert [i["status"] for i in ledger_table.scan()["Items"]] == ["skipped"]


# ------------------------------------------------------------------------------------------------ routes
@pytest.fixture
def confined_world(ec2: Any, org_id: str) -> SpineWorld:
    """Policies confined and every route table associated: only what a test breaks is wrong."""
    return seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True)


def test_route_table_removed_from_the_gateway_endpoint_comes_back(
        invoke: Invoke, ec2: Any, confined_world: SpineWorld, ec2_writes: Callable[[], Calls]) -> None:
    w = confined_world
    ec2.modify_vpc_endpoint(VpcEndpointId=w.ids["s3_endpoint"], RemoveRouteTableIds=[w.ids["rt2"]])
    assert w.ids["rt2"] not in _endpoint(ec2, w.ids["s3_endpoint"])["RouteTableIds"]
    ec2_writes()

    result = invoke(render_event("modify-vpc-endpoint.json", w.mapping()))

    assert w.ids["rt2"] in _endpoint(ec2, w.ids["s3_endpoint"])["RouteTableIds"]
    assert ec2_writes() == [("ModifyVpcEndpoint", {"VpcEndpointId": w.ids["s3_endpoint"],
                                                   "AddRouteTableIds": [w.ids["rt2"]]})]
    assert [r["status"] for r in _results(result, "gateway-endpoint-route-tables")] == ["remediated"]


def test_subnet_moved_onto_a_table_the_endpoint_lacks_gets_the_table_associated(
        invoke: Invoke, ec2: Any, confined_world: SpineWorld) -> None:
    w = confined_world
    rt3 = ec2.create_route_table(VpcId=w.ids["vpc"])["RouteTable"]["RouteTableId"]
    new_assoc = ec2.replace_route_table_association(AssociationId=w.ids["assoc1"], RouteTableId=rt3)[
        "NewAssociationId"]
    event = render_event("replace-route-table-association.json",
                         {**w.mapping(), PLACEHOLDERS["rt1"]: rt3, PLACEHOLDERS["assoc2"]: new_assoc})
    invoke(event)
    assert rt3 in _endpoint(ec2, w.ids["s3_endpoint"])["RouteTableIds"]


def test_prefix_list_route_to_an_internet_gateway_is_reported_and_no_route_is_written(
        invoke: Invoke, ec2: Any, confined_world: SpineWorld, ec2_writes: Callable[[], Calls]) -> None:
    w = confined_world
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=w.ids["vpc"])
    s3_pl = next(p["PrefixListId"] for p in ec2.describe_prefix_lists()["PrefixLists"]
                 if p["PrefixListName"] == f"com.amazonaws.{REGION}.s3")
    rt3 = ec2.create_route_table(VpcId=w.ids["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt3, DestinationPrefixListId=s3_pl, GatewayId=igw)
    ec2_writes()

    result = invoke(render_event("create-route.json", {**w.mapping(), PLACEHOLDERS["rt1"]: rt3}))

    assert ec2_writes() == []
    assert rt3 not in _endpoint(ec2, w.ids["s3_endpoint"])["RouteTableIds"]
    [r] = _results(result, "gateway-endpoint-route-tables")
    assert r["status"] == "failed" and igw in r["reason"] and rt3 in r["reason"]


# ------------------------------------------------------------------------------------------------ ingress
def test_security_group_without_443_from_a_vpc_cidr_is_reported_and_not_changed(
        invoke: Invoke, ec2: Any, org_id: str, ec2_writes: Callable[[], Calls]) -> None:
    w = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True,
                 extra_cidrs=("100.64.0.0/16",))
    ec2.revoke_security_group_ingress(GroupId=w.ids["sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "100.64.0.0/16"}]}])
    before = ec2.describe_security_groups(GroupIds=[w.ids["sg"]])["SecurityGroups"][0]["IpPermissions"]
    ec2_writes()

    result = invoke(render_event("revoke-security-group-ingress.json", w.mapping()))

    [r] = _results(result, "interface-endpoint-ingress")
    assert r["resource_id"] == w.ids["ssm_endpoint"] and r["status"] == "non_compliant"
    assert "100.64.0.0/16" in r["reason"] and "10.0.0.0/16," not in r["reason"]
    assert ec2_writes() == []
    assert ec2.describe_security_groups(GroupIds=[w.ids["sg"]])["SecurityGroups"][0]["IpPermissions"] == before


def test_opt_in_adds_the_missing_https_rule(invoke: Invoke, ec2: Any, org_id: str) -> None:
    w = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True,
                 https_from_vpc=False)
    result = invoke(render_event("modify-security-group-rules.json", w.mapping()), AddEndpointIngress="true")
    [r] = _results(result, "interface-endpoint-ingress")
    assert r["status"] == "remediated" and r["resource_id"] == w.ids["sg"]
    perms = ec2.describe_security_groups(GroupIds=[w.ids["sg"]])["SecurityGroups"][0]["IpPermissions"]
    assert any(p["FromPort"] == 443 and {"10.0.0.0/16"} <= {x["CidrIp"] for x in p["IpRanges"]} for p in perms)


# ------------------------------------------------------------------------------------------------ profiles
SESSION_MANAGER = {"vpce-guard:profiles": "ssm-session-manager"}


def test_deleted_ssmmessages_endpoint_in_a_session_manager_vpc_is_reported(
        invoke: Invoke, ec2: Any, org_id: str, ledger_table: Any, ec2_writes: Callable[[], Calls]) -> None:
    w = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True,
                 vpc_tags=SESSION_MANAGER, interface_services=("ssmmessages", "ec2messages"))
    gone = w.ids["ssmmessages_endpoint"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gone])
    ec2_writes()

    result = invoke(render_event("delete-vpc-endpoints.json", {PLACEHOLDERS["ssm_endpoint"]: gone}))

    [r] = _results(result, "vpc-required-endpoints")
    assert r["resource_id"] == w.ids["vpc"] and r["status"] == "non_compliant"
    assert "ssmmessages" in r["reason"] and f"{gone} is deleted" in r["reason"]
    assert ec2_writes() == [], "creating endpoints is opt-in"
    [rec] = [i for i in _history(ledger_table, w.ids["vpc"]) if i["rule_id"] == "vpc-required-endpoints"]
    assert rec["details"]["missing"][0]["service"] == "ssmmessages"
    assert rec["trigger"]["event_name"] == "DeleteVpcEndpoints"


def test_missing_endpoint_of_a_default_profile_is_created_when_opted_in(
        invoke: Invoke, ec2: Any, org_id: str) -> None:
    w = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True,
                 interface_services=("ec2messages",))
    result = invoke(render_event("modify-vpc-attribute.json", w.mapping()),
                    DefaultProfiles="ssm-session-manager", CreateMissingEndpoints="true")

    [r] = _results(result, "vpc-required-endpoints")
    assert r["status"] == "remediated", r
    [created] = ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [w.ids["vpc"]]},
        {"Name": "service-name", "Values": [f"com.amazonaws.{REGION}.ssmmessages"]}])["VpcEndpoints"]
    assert created["VpcEndpointType"] == "Interface" and created["PrivateDnsEnabled"] is True
    assert sorted(created["SubnetIds"]) == sorted([w.ids["subnet1"], w.ids["subnet2"]])
    assert {"Key": "vpce-guard:created-for", "Value": "ssm-session-manager"} in created["Tags"]
    doc = json.loads(created["PolicyDocument"])
    assert evaluate(doc, RequestContext.iam(f"arn:aws:iam::{ACCOUNT}:role/app", "ssmmessages:OpenDataChannel",
                                            org_id=org_id))
    assert not evaluate(doc, RequestContext.iam("arn:aws:iam::999988887777:role/x", "ssmmessages:OpenDataChannel",
                                                org_id="o-outsider000"))
    # A new event (a new id: the same id would be a redelivery, answered by the idempotency store).
    again = invoke({**render_event("modify-vpc-attribute.json", w.mapping()), "id": "0e2f9a3c-0000-4000-8000-00000000beef"},
                   DefaultProfiles="ssm-session-manager", CreateMissingEndpoints="true")
    assert [r["status"] for r in _results(again, "vpc-required-endpoints")] == ["compliant"]
