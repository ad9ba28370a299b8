"""The benchmarks' own arithmetic and a smoke run of one case, so `make bench` does not rot between runs.

No timing is asserted: only the lower-bound model and that a measured case stays within the target the
benchmark reports on (calls are deterministic).
"""

from __future__ import annotations

from benchmarks import bench_events
from benchmarks.lower_bounds import (
    ALL_READS,
    EventTruth,
    ServiceEventTruth,
    event_bound,
    ledger_calls,
    service_event_bound,
    sweep_bound,
)


def test_sweep_lower_bound_counts_pages_per_vpc_attributes_and_ledger_batches() -> None:
    b = sweep_bound(endpoints=1000, route_tables=1001, vpcs=101, vpcs_with_endpoints=100, ledger_items=2400,
                    reads=ALL_READS, to_fix=100)
    # One page of 1,000; read again right before the writes; one read-back of 100 ids.
    assert b.calls["ec2:DescribeVpcEndpoints"] == 1 + 1 + 1
    assert b.calls["ec2:DescribeRouteTables"] == 11  # pages of 100
    assert b.calls["ec2:DescribeVpcs"] == 1
    assert b.calls["ec2:DescribeVpcAttribute"] == 200
    gateway_only = sweep_bound(endpoints=100, route_tables=101, vpcs=101, vpcs_with_endpoints=100, ledger_items=0,
                               reads=ALL_READS, vpcs_with_interface_endpoints=0)
    assert gateway_only.calls["ec2:DescribeVpcAttribute"] == 100  # DNS support only: no private DNS to resolve
    assert b.calls["ec2:ModifyVpcEndpoint"] == 100
    # The ledger (history 25 a batch, state items 100 a transaction), and the fixes written ahead (2 items each).
    assert b.calls["dynamodb:BatchWriteItem"] == 48 + 4
    assert b.calls["dynamodb:TransactWriteItems"] == 12 + 1
    assert ledger_calls(0) == 0 and ledger_calls(25) == 1 and ledger_calls(26) == 2
    with_states = sweep_bound(endpoints=10, route_tables=11, vpcs=2, vpcs_with_endpoints=1, ledger_items=1,
                              reads=frozenset(), state_keys=201)
    assert with_states.calls["dynamodb:BatchGetItem"] == 3  # a sweep compares with the current state first


def test_event_lower_bound_for_a_compliant_gateway_endpoint() -> None:
    truth = EventTruth(names_endpoints=True, names_vpc=False, vpc_locatable=True, in_scope=("vpce-1",),
                       gateway_in_scope=("vpce-1",), to_fix=(), vpc_scope=False)
    assert dict(event_bound(truth, 4, frozenset({"route_tables"})).calls) == {
        "ec2:DescribeVpcEndpoints": 1, "ec2:DescribeRouteTables": 1,
        "dynamodb:BatchGetItem": 1, "dynamodb:TransactWriteItems": 1,  # the ledger: state read, then one transaction
        "dynamodb:PutItem": 1}  # the idempotency claim on the event id (no status changed: no finding event)
    fixed = EventTruth(names_endpoints=True, names_vpc=False, vpc_locatable=True, in_scope=("vpce-1",),
                       gateway_in_scope=("vpce-1",), to_fix=("vpce-1",), vpc_scope=False)
    assert event_bound(fixed, 4, frozenset({"route_tables"})).calls["events:PutEvents"] == 1
    with_dns = event_bound(truth, 4, frozenset({"route_tables", "vpc_dns"}))
    assert with_dns.calls["ec2:DescribeVpcAttribute"] == 1  # DNS support; hostnames only for interface endpoints
    interface = EventTruth(names_endpoints=False, names_vpc=True, vpc_locatable=True, in_scope=("vpce-1", "vpce-2"),
                           gateway_in_scope=("vpce-1",), to_fix=(), vpc_scope=True)
    assert event_bound(interface, 4, frozenset({"vpc_dns"})).calls["ec2:DescribeVpcAttribute"] == 2


def test_event_benchmark_runs_and_stays_within_its_target() -> None:
    result = bench_events.run(files=["modify-vpc-endpoint.json"])
    cases = {c["scenario"]: c for c in result["cases"]}
    assert set(cases) == {"compliant", "violating"}
    # The S3 endpoint's two rules, and its VPC's DNS support (gateway-endpoint-dns-support), which is on.
    assert cases["compliant"]["statuses"] == {"compliant": 3}
    assert cases["violating"]["statuses"] == {"remediated": 2, "compliant": 1}
    for case in cases.values():
        assert case["ratio"] is not None and case["ratio"] <= 1.5, case
    # What only a cold start pays: lookups cached for the life of the function, once each.
    cold = result["cold_start_extra_calls"]
    # As deployed (OrganizationId set, inside Lambda): neither the organization nor our own identity is asked
    # for. (ssm: the mode overrides, read once per max-age; endpoint services: whether the interface
    # endpoint's service takes a policy; prefix lists: the gateway services' routes)
    assert set(cold) <= {"ec2:DescribePrefixLists", "ssm:GetParameter", "ec2:DescribeVpcEndpointServices"}, cold
    assert set(cold.values()) == {1}, cold


def test_endpoint_service_lower_bounds_count_one_write_per_kind_and_permissions_per_service() -> None:
    fix_all = ServiceEventTruth(accounts_to_place=2, acceptance_fix=True, principals_to_remove=3, requests_to_reject=2)
    b = service_event_bound(fix_all, 6, ALL_READS)
    assert b.calls["ec2:ModifyVpcEndpointServicePermissions"] == 1  # RemoveAllowedPrincipals takes a list
    assert b.calls["ec2:RejectVpcEndpointConnections"] == 1
    # The read; again right before writing (an edit since must survive); back after writing.
    assert b.calls["ec2:DescribeVpcEndpointServiceConfigurations"] == 3
    assert b.calls["ec2:DescribeVpcEndpointServicePermissions"] == 3
    assert b.calls["organizations:DescribeAccount"] == 2
    assert dict(service_event_bound(ServiceEventTruth(), 4, ALL_READS).calls) == {
        "dynamodb:PutItem": 1, "ec2:DescribeVpcEndpointServiceConfigurations": 1,
        "ec2:DescribeVpcEndpointServicePermissions": 1, "ec2:DescribeVpcEndpointConnections": 1,
        "dynamodb:BatchGetItem": 1, "dynamodb:TransactWriteItems": 1}
    sweep = sweep_bound(endpoints=10, route_tables=11, vpcs=2, vpcs_with_endpoints=1, ledger_items=1,
                        reads=ALL_READS, services=3)
    assert sweep.calls["ec2:DescribeVpcEndpointServicePermissions"] == 3
    assert sweep.calls["ec2:DescribeVpcEndpointConnections"] == 1
    empty = sweep_bound(endpoints=10, route_tables=11, vpcs=2, vpcs_with_endpoints=1, ledger_items=1, reads=ALL_READS)
    assert empty.calls["ec2:DescribeVpcEndpointServiceConfigurations"] == 1  # the listing is needed to know
    assert "ec2:DescribeVpcEndpointConnections" not in empty.calls


def test_endpoint_service_event_benchmark_stays_within_its_target() -> None:
    result = bench_events.run(files=["modify-vpc-endpoint-service-permissions.json"])
    cases = {c["scenario"]: c for c in result["cases"]}
    assert cases["compliant"]["statuses"] == {"compliant": 4}
    assert cases["violating"]["statuses"] == {"remediated": 1, "non_compliant": 3}  # acceptance: fix on by default
    for case in cases.values():
        assert case["ratio"] is not None and case["ratio"] <= 1.5, case
