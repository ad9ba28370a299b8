"""The gateway route-table rule, on hand-built snapshots (pure: no AWS)."""

from __future__ import annotations

from vpce_guard.models import Endpoint, RouteTable, Snapshot, Status
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
