"""What the snapshot reads for the network rules, under moto: batched, and only where an event needs it."""

from __future__ import annotations

from typing import Any

from devkit.api_calls import count_api_calls
from devkit.seed import seed_vpc
from vpce_guard import inventory
from vpce_guard.aws import SessionFactory
from vpce_guard.models import Targets

from .conftest import ACCOUNT, REGION


def _snapshot(**targets: Any) -> tuple[Any, Any]:
    ctx = SessionFactory().context(ACCOUNT, REGION)
    with count_api_calls() as calls:
        snap = inventory.take_snapshot(ctx, Targets(account=ACCOUNT, region=REGION, **targets))
    return snap, calls


def test_interface_endpoints_bring_their_subnets_and_groups_in_one_call_each(ec2: Any) -> None:
    w = seed_vpc(ec2, REGION, extra_cidrs=("100.64.0.0/16",), interface_services=("ssmmessages", "ec2messages"))
    snap, calls = _snapshot(vpc_ids=(w.ids["vpc"],))
    assert calls.count("ec2", "DescribeSubnets") == 1 and calls.count("ec2", "DescribeSecurityGroups") == 1
    assert set(snap.subnets) == {w.ids["subnet1"], w.ids["subnet2"]}
    assert {s.availability_zone for s in snap.subnets.values()} == {f"{REGION}a", f"{REGION}b"}
    [group] = snap.security_groups.values()
    [rule] = group.ingress
    assert (rule.protocol, rule.from_port, rule.to_port, set(rule.cidrs)) == (
        "tcp", 443, 443, {"10.0.0.0/16", "100.64.0.0/16"})
    assert snap.vpcs[w.ids["vpc"]].cidrs == ("10.0.0.0/16", "100.64.0.0/16")
    assert snap.vpcs_with_all_endpoints == frozenset({w.ids["vpc"]})
    assert any(name.endswith(".s3") for name in snap.prefix_lists.values())


def test_a_security_group_event_reads_the_group_once(ec2: Any) -> None:
    w = seed_vpc(ec2, REGION)
    snap, calls = _snapshot(security_group_ids=(w.ids["sg"],))
    assert calls.count("ec2", "DescribeSecurityGroups") == 1, calls.by_operation()
    assert w.ids["ssm_endpoint"] in snap.endpoints and w.ids["sg"] in snap.security_groups


def test_deleting_an_endpoint_reads_every_endpoint_of_its_vpc(ec2: Any) -> None:
    w = seed_vpc(ec2, REGION, interface_services=("ssmmessages",))
    ec2.delete_vpc_endpoints(VpcEndpointIds=[w.ids["ssmmessages_endpoint"]])
    snap, _ = _snapshot(endpoint_ids=(w.ids["ssmmessages_endpoint"],))
    assert snap.endpoints[w.ids["ssmmessages_endpoint"]].state == "deleted"
    assert {w.ids["ssm_endpoint"], w.ids["s3_endpoint"]} <= set(snap.endpoints)
    assert snap.vpcs_with_all_endpoints == frozenset({w.ids["vpc"]})


def test_modifying_one_endpoint_does_not_claim_its_vpc_was_read_whole(ec2: Any) -> None:
    w = seed_vpc(ec2, REGION)
    snap, _ = _snapshot(endpoint_ids=(w.ids["s3_endpoint"],))
    assert set(snap.endpoints) == {w.ids["s3_endpoint"]} and snap.vpcs_with_all_endpoints == frozenset()


def test_routes_name_their_target_whatever_its_kind(ec2: Any) -> None:
    w = seed_vpc(ec2, REGION)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=w.ids["vpc"])
    ec2.create_route(RouteTableId=w.ids["rt2"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    snap, _ = _snapshot(route_table_ids=(w.ids["rt2"],))
    targets = {r.destination: r.target for r in snap.route_tables[w.ids["rt2"]].routes}
    assert targets["0.0.0.0/0"] == igw and targets["10.0.0.0/16"] == "local"
    s3_routes = [r for r in snap.route_tables[w.ids["rt1"]].routes if r.target == w.ids["s3_endpoint"]]
    assert [snap.prefix_lists[r.destination] for r in s3_routes] == [f"com.amazonaws.{REGION}.s3"]
