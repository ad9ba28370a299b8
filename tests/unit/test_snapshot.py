"""Snapshot lookups by VPC: grouped once (rules ask per VPC and per endpoint), never stale, and invisible to
equality."""

from __future__ import annotations

from vpce_guard.models import Endpoint, RouteTable, Snapshot


def _endpoint(i: int, vpc: str) -> Endpoint:
    return Endpoint(id=f"vpce-{i}", vpc_id=vpc, service_name="com.amazonaws.us-east-1.s3", type="Gateway",
                    state="available")


def test_endpoints_and_route_tables_of_a_vpc_in_their_order() -> None:
    snap = Snapshot(account="1", region="r",
                    endpoints={e.id: e for e in (_endpoint(1, "vpc-a"), _endpoint(2, "vpc-b"), _endpoint(3, "vpc-a"))},
                    route_tables={"rtb-1": RouteTable(id="rtb-1", vpc_id="vpc-b")})
    assert [e.id for e in snap.endpoints_of("vpc-a")] == ["vpce-1", "vpce-3"]
    assert [rt.id for rt in snap.route_tables_of("vpc-b")] == ["rtb-1"]
    assert snap.endpoints_of("vpc-none") == [] and snap.route_tables_of("vpc-a") == []
    snap.endpoints_of("vpc-a").clear()  # a caller's list is its own
    assert len(snap.endpoints_of("vpc-a")) == 2


def test_a_copy_with_other_endpoints_groups_its_own() -> None:
    snap = Snapshot(account="1", region="r", endpoints={"vpce-1": _endpoint(1, "vpc-a")})
    assert len(snap.endpoints_of("vpc-a")) == 1
    copy = snap.model_copy(update={"endpoints": {"vpce-2": _endpoint(2, "vpc-b")}})
    assert copy.endpoints_of("vpc-a") == [] and [e.id for e in copy.endpoints_of("vpc-b")] == ["vpce-2"]
    assert len(snap.endpoints_of("vpc-a")) == 1


def test_equal_configuration_is_equal_whatever_was_looked_up() -> None:
    def build() -> Snapshot:
        return Snapshot(account="1", region="r", endpoints={"vpce-1": _endpoint(1, "vpc-a")})

    looked_up, fresh = build(), build()
    looked_up.endpoints_of("vpc-a")
    assert looked_up == fresh
    assert looked_up != Snapshot(account="2", region="r")
