"""The gateway route-table rule, on hand-built snapshots (pure: no AWS)."""

from __future__ import annotations

from vpce_guard.models import Endpoint, Route, RouteTable, Snapshot, Status
from vpce_guard.rules import RuleContext
from vpce_guard.rules.gateway_route_tables import evaluate

CTX = RuleContext(allowed_org_ids=frozenset({"o-abcdefghij"}))


def _snap(endpoint: Endpoint, *tables: RouteTable) -> Snapshot:
    return Snapshot(account="111122223333", region="eu-west-1", endpoints={endpoint.id: endpoint},
                    route_tables={t.id: t for t in tables})


def _gw(rts: tuple[str, ...], service: str = "s3", state: str = "available") -> Endpoint:
    return Endpoint(id="vpce-1", vpc_id="vpc-1", type="Gateway", service_name=f"com.amazonaws.eu-west-1.{service}",
                    state=state, route_table_ids=rts)


def test_missing_route_table_is_added_and_nothing_is_removed() -> None:
    snap = _snap(_gw(("rtb-a", "rtb-other-user-added")), RouteTable(id="rtb-a", vpc_id="vpc-1"),
                 RouteTable(id="rtb-b", vpc_id="vpc-1"))
    [f] = evaluate(snap, CTX)
    assert f.status is Status.NON_COMPLIANT
    [action] = f.actions
    assert action.kind == "add_route_tables"
    assert action.params == {"route_table_ids": ["rtb-b"]}
    assert set(action.after["route_table_ids"]) >= set(action.before["route_table_ids"])


def test_all_route_tables_associated_is_compliant() -> None:
    snap = _snap(_gw(("rtb-a", "rtb-b")), RouteTable(id="rtb-a", vpc_id="vpc-1"), RouteTable(id="rtb-b", vpc_id="vpc-1"))
    [f] = evaluate(snap, CTX)
    assert f.status is Status.COMPLIANT and not f.actions


def test_excluded_route_table_is_not_required() -> None:
    snap = _snap(_gw(("rtb-a",)), RouteTable(id="rtb-a", vpc_id="vpc-1"),
                 RouteTable(id="rtb-b", vpc_id="vpc-1", tags={"vpce-guard:exclude": "TRUE"}))
    [f] = evaluate(snap, CTX)
    assert f.status is Status.COMPLIANT
    assert f.details["excluded_route_tables"] == ["rtb-b"]


def test_route_tables_of_other_vpcs_do_not_count() -> None:
    snap = _snap(_gw(("rtb-a",)), RouteTable(id="rtb-a", vpc_id="vpc-1"), RouteTable(id="rtb-x", vpc_id="vpc-2"))
    [f] = evaluate(snap, CTX)
    assert f.status is Status.COMPLIANT


def test_dynamodb_gateway_is_checked_and_interface_endpoints_are_not() -> None:
    ddb = _gw((), service="dynamodb")
    [f] = evaluate(_snap(ddb, RouteTable(id="rtb-a", vpc_id="vpc-1")), CTX)
    assert f.status is Status.NON_COMPLIANT
    iface = Endpoint(id="vpce-2", vpc_id="vpc-1", type="Interface", service_name="com.amazonaws.eu-west-1.s3",
                     state="available")
    assert evaluate(_snap(iface, RouteTable(id="rtb-a", vpc_id="vpc-1")), CTX) == []


def test_deleted_endpoint_is_not_applicable() -> None:
    [f] = evaluate(_snap(_gw((), state="deleted"), RouteTable(id="rtb-a", vpc_id="vpc-1")), CTX)
    assert f.status is Status.NOT_APPLICABLE and not f.actions


def test_unread_route_tables_are_skipped_not_guessed() -> None:
    [f] = evaluate(_snap(_gw(())), CTX)
    assert f.status is Status.SKIPPED and not f.actions


def test_service_short_name_handles_china_and_endpoint_services() -> None:
    def name(service: str) -> str:
        return Endpoint(id="vpce-1", vpc_id="vpc-1", type="Gateway", service_name=service, state="available").service_short_name

    assert name("com.amazonaws.eu-west-1.s3") == "s3"
    assert name("cn.com.amazonaws.cn-north-1.dynamodb") == "dynamodb"
    assert name("com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0") == "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"


# ---- prefix-list routes, several endpoints, ownership (issue 4) -------------------------------------------
PL = "pl-6da54004"
PREFIX_LISTS = {PL: "com.amazonaws.eu-west-1.s3", "pl-ddb": "com.amazonaws.eu-west-1.dynamodb"}


def _net(*endpoints: Endpoint, tables: tuple[RouteTable, ...]) -> Snapshot:
    return Snapshot(account="111122223333", region="eu-west-1", endpoints={e.id: e for e in endpoints},
                    route_tables={t.id: t for t in tables}, prefix_lists=PREFIX_LISTS)


def _rt(rt_id: str, target: str | None = None, state: str = "active", destination: str = PL) -> RouteTable:
    routes = (Route(destination="10.0.0.0/16", gateway_id="local", target="local", state="active"),)
    if target is not None:
        routes += (Route(destination=destination, target=target, state=state),)
    return RouteTable(id=rt_id, vpc_id="vpc-1", routes=routes)


def test_blackholed_route_of_the_endpoint_itself_is_reassociated_through_modify_vpc_endpoint() -> None:
    [f] = evaluate(_net(_gw(("rtb-a", "rtb-b")), tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "vpce-1", "blackhole"))),
                   CTX)
    assert f.status is Status.NON_COMPLIANT
    [action] = f.actions
    assert action.kind == "reassociate_route_tables" and action.params == {"route_table_ids": ["rtb-b"]}


def test_prefix_list_route_to_an_internet_gateway_is_reported_never_rewritten() -> None:
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "igw-0a1b2c3d"))), CTX)
    assert f.status is Status.NON_COMPLIANT and not f.actions
    assert "rtb-b" in f.details["conflicting_routes"] and "igw-0a1b2c3d" in f.reason
    assert f.details["unfixable"]


def test_blackholed_route_to_a_deleted_endpoint_is_reported_as_a_conflict() -> None:
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "vpce-gone", "blackhole"))),
                   CTX)
    assert not f.actions and "blackhole" in f.details["conflicting_routes"]["rtb-b"]


def test_conflicts_do_not_block_the_fixable_part() -> None:
    tables = (_rt("rtb-a", "vpce-1"), _rt("rtb-b", "nat-0a1b2c3d"), _rt("rtb-c"))
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=tables), CTX)
    [action] = f.actions
    assert action.params == {"route_table_ids": ["rtb-c"]}
    assert "rtb-b" in f.details["conflicting_routes"]


def test_table_served_by_another_gateway_endpoint_of_the_service_is_fine() -> None:
    other = Endpoint(id="vpce-2", vpc_id="vpc-1", type="Gateway", service_name="com.amazonaws.eu-west-1.s3",
                     state="available", route_table_ids=("rtb-b",))
    findings = evaluate(_net(_gw(("rtb-a",)), other, tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "vpce-2"))), CTX)
    assert {f.resource_id: f.status for f in findings} == {"vpce-1": Status.COMPLIANT, "vpce-2": Status.COMPLIANT}
    assert findings[0].details["served_by_other_endpoints"] == {"rtb-b": "vpce-2"}


def test_route_to_an_endpoint_not_in_view_counts_as_served() -> None:
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "vpce-unseen"))), CTX)
    assert f.status is Status.COMPLIANT


def test_dynamodb_prefix_list_route_does_not_serve_s3() -> None:
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "vpce-9", destination="pl-ddb"))),
                   CTX)
    assert f.actions[0].params == {"route_table_ids": ["rtb-b"]}


def test_stale_route_to_this_endpoint_in_a_table_it_left_is_restored() -> None:
    """RemoveRouteTableIds under moto leaves the route behind; the association list is the truth."""
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b", "vpce-1"))), CTX)
    assert f.actions[0].kind == "add_route_tables" and f.actions[0].params == {"route_table_ids": ["rtb-b"]}


def test_several_endpoints_of_the_service_and_an_unserved_table_is_reported_not_guessed() -> None:
    other = Endpoint(id="vpce-2", vpc_id="vpc-1", type="Gateway", service_name="com.amazonaws.eu-west-1.s3",
                     state="available", route_table_ids=())
    findings = evaluate(_net(_gw(("rtb-a",)), other, tables=(_rt("rtb-a", "vpce-1"), _rt("rtb-b"))), CTX)
    assert all(not f.actions and f.status is Status.NON_COMPLIANT for f in findings)
    assert findings[0].details["unassigned_route_tables"] == ["rtb-b"]


def test_excluded_table_with_a_conflicting_route_stays_out() -> None:
    excluded = RouteTable(id="rtb-b", vpc_id="vpc-1", tags={"vpce-guard:exclude": "true"},
                          routes=(Route(destination=PL, target="igw-0a1b2c3d", state="active"),))
    [f] = evaluate(_net(_gw(("rtb-a",)), tables=(_rt("rtb-a", "vpce-1"), excluded)), CTX)
    assert f.status is Status.COMPLIANT


def test_pending_endpoint_is_checked_and_endpoint_of_another_account_is_not() -> None:
    [f] = evaluate(_net(_gw((), state="pending"), tables=(_rt("rtb-a"),)), CTX)
    assert f.status is Status.NON_COMPLIANT
    foreign = Endpoint(id="vpce-1", vpc_id="vpc-1", type="Gateway", service_name="com.amazonaws.eu-west-1.s3",
                       state="available", owner_id="444455556666")
    [f] = evaluate(_net(foreign, tables=(_rt("rtb-a"),)), CTX)
    assert f.status is Status.NOT_APPLICABLE
