"""How many AWS calls the pipeline makes, counted with a botocore hook (devkit.api_calls) under moto.

Call counts are deterministic, so they can be asserted where wall time cannot. Each test pins the reads its
scenario needs and that nothing grows per resource; rules added later may add reads of their own (VPC DNS
attributes, security groups), which these tests allow within their bounds and print on failure.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from devkit import template
from devkit.api_calls import ApiCalls, count_api_calls
from devkit.caches import reset_process_caches
from devkit.lambda_context import LocalLambdaContext
from devkit.paging import aws_paging, pages
from devkit.seed import confined_policy, render_event, seed_vpc
from vpce_guard import pipeline
from vpce_guard.config import Mode, Settings
from vpce_guard.models import Targets, Trigger

from .conftest import ACCOUNT, REGION, TABLE


def _runtime(**settings: Any) -> pipeline.Runtime:
    return pipeline.Runtime(Settings(ledger_table=TABLE, **settings))


def _sweep(rt: pipeline.Runtime) -> pipeline.RunResult:
    return pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True), Trigger(source="sweep"))


def _compliant_vpcs(ec2: Any, org_id: str, n: int, start: int = 1) -> list[Any]:
    return [seed_vpc(ec2, REGION, cidr=f"10.{start + i}.0.0/16", name=f"ok-{start + i}",
                     s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True) for i in range(n)]


# ------------------------------------------------------------------------------------------- the counter
def test_counter_counts_calls_by_service_and_operation_and_batch_items(aws_env: None, ledger_table: Any) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.describe_vpcs()  # before the block: not counted
    with count_api_calls() as outer:
        ec2.describe_vpcs()
        with count_api_calls() as inner:
            ec2.describe_route_tables()
            with ledger_table.batch_writer() as batch:
                for i in range(30):
                    batch.put_item(Item={"pk": f"p{i}", "sk": "s"})
    assert outer.by_operation() == {"dynamodb:BatchWriteItem": 2, "ec2:DescribeRouteTables": 1,
                                    "ec2:DescribeVpcs": 1}
    assert inner.count("ec2") == 1 and inner.count(operation="BatchWriteItem") == 2
    assert sorted(inner.batch_write_items) == [5, 25]
    assert outer.reads("ec2") == {"DescribeVpcs": 1, "DescribeRouteTables": 1}
    assert outer.writes() == {"BatchWriteItem": 2}
    assert outer.retries() == 0 and sum(outer.attempts.values()) == outer.total


def test_paging_model_pages_moto_answers_like_aws(aws_env: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    created = {ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(11)}
    with count_api_calls() as calls, aws_paging({("ec2", "DescribeRouteTables"): 5}):
        seen = [rt["RouteTableId"] for page in ec2.get_paginator("describe_route_tables").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}]) for rt in page["RouteTables"]]
        # 12 tables (11 + main) in pages of 5; the model's own arithmetic agrees.
        assert calls.count("ec2", "DescribeRouteTables") == 3 == pages("ec2", "DescribeRouteTables", 12)
    assert len(seen) == len(set(seen)) == 12 and created <= set(seen)
    assert pages("ec2", "DescribeRouteTables", 250) == 3  # AWS's maximum page is 100 route tables
    assert pages("ec2", "DescribeVpcEndpoints", 1000) == 1 and pages("ec2", "DescribeVpcEndpoints", 1001) == 2


# ------------------------------------------------------------------------------------------- events
def _fmt(calls: ApiCalls) -> str:
    return f"calls made: {calls.by_operation()}"


def test_modify_vpc_endpoint_on_a_compliant_gateway_endpoint_reads_only_what_it_needs(
        ec2: Any, org_id: str, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    world = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True)
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    spec = template.function_spec("OnChangeFunction", resources={"LedgerTable": TABLE})
    for k, v in spec.environment.items():
        monkeypatch.setenv(k, v)
    reset_process_caches()
    handler = spec.load_handler()
    handler(event, LocalLambdaContext())  # cold start: looks the organization up
    with count_api_calls() as calls:
        # Another delivery of the change (a new event id: the same id is answered by idempotency).
        result = handler({**event, "id": event["id"][:-4] + "beef"}, LocalLambdaContext())
    assert {r["status"] for r in result["results"]} == {"compliant"}
    msg = _fmt(calls)
    # The endpoint (by id) and every route table of its VPC: one call each.
    assert calls.count("ec2", "DescribeVpcEndpoints") == 1, msg
    assert calls.count("ec2", "DescribeRouteTables") == 1, msg
    # VPC-level reads, if a rule needs them, once for the one VPC.
    assert calls.count("ec2", "DescribeVpcs") <= 1, msg
    assert calls.count("ec2", "DescribeVpcAttribute") <= 2, msg
    assert not calls.writes("ec2"), msg
    assert calls.count("organizations") == 0, "the organization id is cached per cold start; " + msg
    # The ledger: its state items read once, then history and state written in one transaction (state items
    # are conditional on the observation time, see ledger.py).
    assert calls.count("dynamodb", "BatchGetItem") == 1, msg
    assert calls.count("dynamodb", "TransactWriteItems") == 1, msg
    assert calls.count("dynamodb", "BatchWriteItem") == 0, msg
    assert calls.retries() == 0


def test_organization_is_looked_up_once_per_cold_start(ec2: Any, org_id: str, ledger_table: Any) -> None:
    worlds = _compliant_vpcs(ec2, org_id, 2)
    rt = _runtime()
    with count_api_calls() as calls:
        for w in worlds:
            pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, endpoint_ids=(w.ids["s3_endpoint"],)),
                                 Trigger(source="manual"))
    assert calls.count("organizations", "DescribeOrganization") == 1, _fmt(calls)


def test_violating_endpoint_is_fixed_with_one_write_per_change_and_one_read_back(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    world = seed_vpc(ec2, REGION)  # default policy, one of three route tables
    rt = _runtime()
    with count_api_calls() as calls:
        result = pipeline.run_targets(
            rt, Targets(account=ACCOUNT, region=REGION, endpoint_ids=(world.ids["s3_endpoint"],)),
            Trigger(source="manual"))
    assert {o.status.value for o in result.outcomes if o.finding.resource_id == world.ids["s3_endpoint"]} == {
        "remediated"}
    msg = _fmt(calls)
    assert calls.writes("ec2") == {"ModifyVpcEndpoint": 2}, msg  # the policy, the missing route tables
    # Before: the endpoint; right before the writes: read again (an owner's edit since must survive); after the
    # writes: the same endpoint read back once for both fixes.
    assert calls.count("ec2", "DescribeVpcEndpoints") == 3, msg
    assert calls.count("ec2", "DescribeRouteTables") == 1, msg


def test_a_deleted_endpoint_in_a_vpc_without_profiles_costs_its_own_read_and_the_vpcs_tags(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    world = seed_vpc(ec2, REGION)  # violating endpoints next to it: not this event's business
    ec2.delete_vpc_endpoints(VpcEndpointIds=[world.ids["ssm_endpoint"]])
    rt = _runtime()
    with count_api_calls() as calls:
        result = pipeline.run_targets(
            rt, Targets(account=ACCOUNT, region=REGION, endpoint_ids=(world.ids["ssm_endpoint"],)),
            Trigger(source="manual"))
    # The endpoint (gone), then its VPC's tags: no profile requires endpoints there, so nothing else to judge.
    assert calls.reads("ec2") == {"DescribeVpcEndpoints": 1, "DescribeVpcs": 1}, _fmt(calls)
    assert not calls.writes("ec2"), _fmt(calls)
    assert {o.finding.resource_id for o in result.outcomes} == {world.ids["ssm_endpoint"]}

    # With a profile, what the VPC now lacks matters: all its endpoints are judged (and the open ones fixed);
    # its tags are read once for both purposes.
    with count_api_calls() as calls:
        pipeline.run_targets(
            _runtime(default_profiles=("ssm-session-manager",)),
            Targets(account=ACCOUNT, region=REGION, endpoint_ids=(world.ids["ssm_endpoint"],)),
            Trigger(source="manual"))
    assert calls.count("ec2", "DescribeVpcs") == 1 and calls.count("ec2", "DescribeRouteTables") == 1, _fmt(calls)


# ------------------------------------------------------------------------------------------- sweeps
def _sweep_calls(ec2: Any, org_id: str, n_vpcs: int) -> tuple[ApiCalls, pipeline.RunResult]:
    _compliant_vpcs(ec2, org_id, n_vpcs)
    rt = _runtime()
    _sweep(rt)  # cold start out of the way: what is left is per sweep unit
    with count_api_calls() as calls:
        result = _sweep(rt)
    return calls, result


@pytest.mark.parametrize("n_vpcs", [4])
def test_sweep_reads_by_page_not_by_resource(ec2: Any, org_id: str, ledger_table: Any, n_vpcs: int) -> None:
    calls, result = _sweep_calls(ec2, org_id, n_vpcs)
    msg = _fmt(calls)
    endpoints = 2 * n_vpcs  # an S3 gateway and an SSM interface endpoint per VPC
    assert len({o.finding.resource_id for o in result.outcomes if o.finding.resource_type == "vpc-endpoint"}) == endpoints
    # Every endpoint and every route table of the region fit in one page each: one call each, whatever n.
    assert calls.count("ec2", "DescribeVpcEndpoints") == 1, msg
    assert calls.count("ec2", "DescribeRouteTables") == 1, msg
    assert calls.count("ec2", "DescribeVpcs") <= 1, msg
    assert calls.count("ec2", "DescribeVpcEndpointServices") == 0, "cached per cold start; " + msg
    # Per-VPC attributes (no batch API) at most once per VPC that holds endpoints.
    assert calls.count("ec2", "DescribeVpcAttribute") <= 2 * n_vpcs, msg
    assert not calls.writes("ec2"), msg
    # Ledger: full batches of 25 items but one (batches go out concurrently, so compare them in size order).
    by_size = sorted(calls.batch_write_items, reverse=True)
    assert by_size[:-1] == [25] * (len(by_size) - 1), calls.batch_write_items
    assert sum(calls.batch_write_items) == result.ledger_items


def test_sweep_call_count_does_not_grow_with_endpoints_within_one_page(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    _compliant_vpcs(ec2, org_id, 2)
    rt = _runtime()
    _sweep(rt)
    with count_api_calls() as small:
        _sweep(rt)
    _compliant_vpcs(ec2, org_id, 8, start=10)
    _sweep(rt)  # first sight of 8 VPCs: written, with their state items read back; then the same estate again
    with count_api_calls() as large:
        _sweep(rt)
    per_vpc = {"DescribeVpcAttribute"}  # no batch API: allowed to grow by VPC, checked above
    grows_with_items = {"BatchWriteItem", "TransactWriteItems"}  # what changed is written
    for (service, op), n in (small.calls | large.calls).items():
        if op in per_vpc | grows_with_items:
            continue
        assert large.calls[(service, op)] == small.calls[(service, op)], (
            f"{service}:{op} grew from {small.calls[(service, op)]} to {n} with 4x the endpoints; "
            f"small {small.by_operation()} large {large.by_operation()}")


def test_sweep_pages_through_listings_larger_than_a_page(ec2: Any, org_id: str, ledger_table: Any) -> None:
    _compliant_vpcs(ec2, org_id, 6)
    rt = _runtime(mode=Mode.DRY_RUN)
    _sweep(rt)
    sizes = {("ec2", "DescribeVpcEndpoints"): 5, ("ec2", "DescribeRouteTables"): 5}
    n_endpoints = 12
    n_route_tables = 6 * 3 + 1  # three per seeded VPC, plus the default VPC's main table
    with count_api_calls() as calls, aws_paging(sizes):
        result = _sweep(rt)
        rt_pages = pages("ec2", "DescribeRouteTables", n_route_tables)
    assert len({o.finding.resource_id for o in result.outcomes
                if o.finding.resource_type == "vpc-endpoint"}) == n_endpoints, "every page was read"
    assert calls.count("ec2", "DescribeVpcEndpoints") == 3, _fmt(calls)  # ceil(12 / 5)
    assert calls.count("ec2", "DescribeRouteTables") == rt_pages == 4, _fmt(calls)  # ceil(19 / 5)
    gateway = [o for o in result.outcomes if o.finding.rule_id == "gateway-endpoint-route-tables"]
    assert {o.status.value for o in gateway} == {"compliant"}, "route tables on later pages were seen"


# ------------------------------------------------------------------------------------------- what rules read
def test_snapshot_reads_only_the_parts_rules_declare(ec2: Any, org_id: str) -> None:
    from vpce_guard import inventory
    from vpce_guard.aws import SessionFactory

    worlds = _compliant_vpcs(ec2, org_id, 2)
    ctx = SessionFactory().context(ACCOUNT, REGION)
    everything = Targets(account=ACCOUNT, region=REGION, everything=True)

    with count_api_calls() as calls:
        snap = inventory.take_snapshot(ctx, everything, reads=frozenset())
    assert calls.by_operation() == {"ec2:DescribeVpcEndpoints": 1}
    assert len(snap.endpoints) == 4 and not snap.route_tables and not snap.vpcs

    with count_api_calls() as calls:
        snap = inventory.take_snapshot(ctx, everything, reads=frozenset({"vpc_dns"}))
    # Two attributes per VPC holding endpoints; the default VPC has none and is not asked about.
    assert calls.by_operation() == {"ec2:DescribeVpcAttribute": 4, "ec2:DescribeVpcEndpoints": 1}
    assert set(snap.vpcs) == {w.ids["vpc"] for w in worlds}
    assert all(v.dns_support is True and v.dns_hostnames is True for v in snap.vpcs.values())  # as seeded

    with count_api_calls() as calls:
        snap = inventory.take_snapshot(ctx, everything)  # a caller that does not say gets everything
    assert calls.count("ec2", "DescribeVpcs") == 1 and calls.count("ec2", "DescribeRouteTables") == 1
    assert calls.count("ec2", "DescribeVpcAttribute") == 4, calls.by_operation()
    assert len(snap.vpcs) == 3  # with the default VPC, whose DNS attributes were not needed
    assert {v.dns_support for k, v in snap.vpcs.items() if k not in {w.ids["vpc"] for w in worlds}} == {None}


def test_dns_attributes_are_read_only_where_a_rule_can_use_them(ec2: Any, org_id: str) -> None:
    from vpce_guard import inventory
    from vpce_guard.aws import SessionFactory

    gateway_only = seed_vpc(ec2, REGION, cidr="10.1.0.0/16", with_ssm=False, s3_policy=confined_policy(org_id))
    with_interface = seed_vpc(ec2, REGION, cidr="10.2.0.0/16", s3_policy=confined_policy(org_id))
    bare = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]  # no endpoint: nothing to check
    ctx = SessionFactory().context(ACCOUNT, REGION)
    everything = Targets(account=ACCOUNT, region=REGION, everything=True)
    asked: list[dict[str, Any]] = []
    ctx.client("ec2").meta.events.register("provide-client-params.ec2.DescribeVpcAttribute",
                                 lambda params, **_: asked.append(dict(params)))

    snap = inventory.take_snapshot(ctx, everything, reads=frozenset({"vpcs", "vpc_dns"}))
    by_vpc: dict[str, set[str]] = {}
    for p in asked:
        by_vpc.setdefault(p["VpcId"], set()).add(p["Attribute"])
    # Gateway endpoints need DNS support only; private DNS of interface endpoints needs both.
    assert by_vpc == {gateway_only.ids["vpc"]: {"enableDnsSupport"},
                      with_interface.ids["vpc"]: {"enableDnsSupport", "enableDnsHostnames"}}
    assert snap.vpcs[gateway_only.ids["vpc"]].dns_support is True
    assert snap.vpcs[gateway_only.ids["vpc"]].dns_hostnames is None  # not read, so unknown, never False
    assert snap.vpcs[with_interface.ids["vpc"]].dns_hostnames is False  # as seeded
    assert snap.vpcs[bare].dns_support is None



def test_a_rule_that_declares_no_reads_gets_every_snapshot_part() -> None:
    from vpce_guard.rules import SNAPSHOT_PARTS, Rule, all_rules, reads_of, register

    undeclared = Rule("x", "x", lambda s, c: [])
    assert reads_of([undeclared]) == SNAPSHOT_PARTS
    assert reads_of([]) == frozenset()
    with pytest.raises(ValueError, match="unknown snapshot parts"):
        register("never-registered", "bad", reads=("route_tabels",))
    assert reads_of(all_rules()) <= SNAPSHOT_PARTS


def test_time_in_calls_counts_overlapping_calls_once() -> None:
    calls = ApiCalls(intervals=[(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.7)])
    assert calls.seconds_in_calls() == 4.0


# ------------------------------------------------------------------------------------------- endpoint services
def _service_handler(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> Any:
    spec = template.function_spec("OnChangeFunction", resources={"LedgerTable": TABLE}, overrides=overrides)
    for k, v in spec.environment.items():
        monkeypatch.setenv(k, v)
    reset_process_caches()
    return spec.load_handler()



def test_a_service_event_reads_the_service_once_and_places_only_unknown_accounts(
        ec2: Any, org_id: str, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit.seed import seed_endpoint_service

    member = boto3.client("organizations", region_name=REGION).create_account(
        AccountName="m", Email="m@example.com")["CreateAccountStatus"]["AccountId"]
    service = seed_endpoint_service(ec2, boto3.client("elbv2", region_name=REGION), REGION, acceptance_required=True,
                                    principals=(f"arn:aws:iam::{ACCOUNT}:role/app", f"arn:aws:iam::{member}:root"))
    handler = _service_handler(monkeypatch)
    event = render_event("modify-vpc-endpoint-service-permissions.json", service.mapping())
    with count_api_calls() as first:
        handler(event, LocalLambdaContext())
    with count_api_calls() as again:
        result = handler({**event, "id": event["id"][:-4] + "beef"}, LocalLambdaContext())
    assert {r["status"] for r in result["results"]} == {"compliant"}
    assert first.count("organizations", "DescribeAccount") == 1, _fmt(first)  # the member; never our own account
    # Warm: the service, who may connect, who is connected: one call each; the member is remembered.
    assert again.reads("ec2") == {"DescribeVpcEndpointServiceConfigurations": 1,
                                  "DescribeVpcEndpointServicePermissions": 1,
                                  "DescribeVpcEndpointConnections": 1}, _fmt(again)
    assert again.count("organizations") == 0 and not again.writes("ec2"), _fmt(again)


def test_fixing_an_open_service_stays_within_one_and_a_half_times_its_lower_bound(
        ec2: Any, org_id: str, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.lower_bounds import ServiceEventTruth, needed_reads, service_event_bound
    from devkit.seed import account_ec2, connect, seed_endpoint_service

    outsider = "999988887777"
    service = seed_endpoint_service(ec2, boto3.client("elbv2", region_name=REGION), REGION, acceptance_required=True,
                                    principals=("*", f"arn:aws:iam::{outsider}:root"))
    connect(account_ec2(outsider, REGION), service)
    ec2.modify_vpc_endpoint_service_configuration(ServiceId=service.ids["service"], AcceptanceRequired=False)
    handler = _service_handler(monkeypatch, RemoveOutsidePrincipals="true", RejectOutsideConnections="true")
    handler(render_event("modify-vpc-endpoint.json", seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id),
                                                               associate_all=True).mapping()), LocalLambdaContext())
    event = render_event("modify-vpc-endpoint-service-permissions.json", service.mapping())
    with count_api_calls() as calls:
        result = handler(event, LocalLambdaContext())

    statuses = sorted((r["rule_id"], r["status"]) for r in result["results"])
    assert statuses == [("endpoint-service-acceptance", "remediated"),
                        ("endpoint-service-accepted-connections", "compliant"),
                        ("endpoint-service-allowed-principals", "remediated"),
                        ("endpoint-service-allowed-principals", "remediated"),
                        ("endpoint-service-pending-connections", "remediated")]
    truth = ServiceEventTruth(accounts_to_place=1, acceptance_fix=True, principals_to_remove=2, requests_to_reject=1)
    bound = service_event_bound(truth, result["ledger_items"], needed_reads())
    msg = f"{_fmt(calls)}; bound {dict(bound.calls)}"
    # One write per principal removed (each its own ledger record), where the floor removes them in one call.
    assert calls.writes("ec2") == {"ModifyVpcEndpointServicePermissions": 2, "ModifyVpcEndpointServiceConfiguration": 1,
                                   "RejectVpcEndpointConnections": 1}, msg
    # Read; read again once right before the writes (an owner's edit since must survive); read back once after.
    assert calls.count("ec2", "DescribeVpcEndpointServiceConfigurations") == 3, msg
    assert calls.count("ec2", "DescribeVpcEndpointServicePermissions") == 3, msg
    assert calls.count("ec2", "DescribeVpcEndpointConnections") == 3, msg
    assert calls.total <= 1.5 * bound.total, msg


def test_a_sweep_reads_endpoint_services_by_listing_and_permissions_per_service(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    from devkit.seed import seed_endpoint_service

    rt = _runtime()
    with count_api_calls() as none:
        _sweep(rt)
    assert none.count("ec2", "DescribeVpcEndpointServiceConfigurations") == 1, _fmt(none)
    assert none.count("ec2", "DescribeVpcEndpointServicePermissions") == 0, _fmt(none)
    assert none.count("ec2", "DescribeVpcEndpointConnections") == 0, _fmt(none)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    for n in range(3):
        seed_endpoint_service(ec2, elbv2, REGION, name=f"svc-{n}", cidr=f"10.{210 + n}.0.0/16",
                              acceptance_required=True, principals=(f"arn:aws:iam::{ACCOUNT}:root",))
    with count_api_calls() as three:
        _sweep(rt)
    assert three.count("ec2", "DescribeVpcEndpointServiceConfigurations") == 1, _fmt(three)
    assert three.count("ec2", "DescribeVpcEndpointServicePermissions") == 3, _fmt(three)  # no batch API
    assert three.count("ec2", "DescribeVpcEndpointConnections") == 1, _fmt(three)
