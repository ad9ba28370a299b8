"""What a sweep writes to the ledger: history and state for what changed, checks items for what did not.

A sweep re-checks the whole account-region; nearly everything is as it was. Every check is recorded, but a
resource's history stays a timeline of changes, and the writes of a sweep grow with drift, not with the
estate. Events keep writing a history item per evaluation (test_on_change.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from boto3.dynamodb.conditions import Key

from devkit.api_calls import count_api_calls
from devkit.seed import confined_policy, seed_vpc
from vpce_guard import pipeline
from vpce_guard.config import Mode, Settings
from vpce_guard.ledger import Ledger
from vpce_guard.models import Targets, Trigger

from .conftest import ACCOUNT, REGION, TABLE


def _sweep(rt: pipeline.Runtime) -> pipeline.RunResult:
    return pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True), Trigger(source="sweep"))


def _history(table: Any, resource_id: str) -> list[dict[str, Any]]:
    return table.query(KeyConditionExpression=Key("pk").eq(f"RES#{ACCOUNT}#{REGION}#{resource_id}")
                       & Key("sk").begins_with("EVAL#"))["Items"]


def _evaluations(result: pipeline.RunResult) -> Counter[tuple[str, str, str]]:
    return Counter((o.finding.rule_id, o.status.value, o.resource_id or o.finding.resource_id)
                   for o in result.outcomes)


def _checked(items: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    return Counter((rule, status, resource) for item in items for status, rules in item["checked"].items()
                   for rule, resources in rules.items() for resource in resources)


def test_a_sweep_of_an_unchanged_estate_writes_one_checks_item_listing_every_evaluation(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    worlds = [seed_vpc(ec2, REGION, cidr=f"10.{i}.0.0/16", name=f"ok-{i}", s3_policy=confined_policy(org_id),
                       associate_all=True, dns_hostnames=True) for i in (1, 2)]
    rt = pipeline.Runtime(Settings(ledger_table=TABLE))
    first = _sweep(rt)
    endpoint = worlds[0].ids["s3_endpoint"]
    assert len(_history(ledger_table, endpoint)) == 2, "first sight of each (resource, rule): history written"

    with count_api_calls() as calls:
        second = _sweep(rt)
    assert _evaluations(second) == _evaluations(first)
    assert len(_history(ledger_table, endpoint)) == 2, "nothing changed: no new history"
    [checks] = Ledger(ledger_table).checks(ACCOUNT, REGION)
    assert _checked([checks]) == _evaluations(second), "every evaluation of the sweep is in its checks item"
    assert checks["count"] == sum(_evaluations(second).values())
    assert checks["trigger"]["source"] == "sweep" and checks["expires_at"] > 0
    assert second.ledger_items == 1 == sum(calls.batch_write_items)
    # The account-region's digest vouched for the state items (test_sweep_digest.py): one GetItem, none read back.
    assert calls.count("dynamodb", "BatchGetItem") == 0 and calls.count("dynamodb", "GetItem") == 1


def test_a_sweep_that_reads_state_items_back_compares_them_in_batches_not_one_by_one(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    for i in (1, 2):
        seed_vpc(ec2, REGION, cidr=f"10.{i}.0.0/16", name=f"ok-{i}", s3_policy=confined_policy(org_id),
                 associate_all=True, dns_hostnames=True)
    rt = pipeline.Runtime(Settings(ledger_table=TABLE))
    _sweep(rt)
    ledger_table.delete_item(Key={"pk": f"UNIT#{ACCOUNT}#{REGION}", "sk": "DIGEST"})  # no digest: read back
    with count_api_calls() as calls:
        result = _sweep(rt)
    assert result.digest == "read_back"
    assert calls.count("dynamodb", "BatchGetItem") == 1 and calls.count("dynamodb", "GetItem") == 1
    assert sum(calls.batch_write_items) == 1, "nothing changed: one checks item"


def test_a_sweep_writes_history_for_what_changed_and_lists_the_rest_as_checked(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    drifting = seed_vpc(ec2, REGION, cidr="10.1.0.0/16", name="drift", s3_policy=confined_policy(org_id),
                        associate_all=True, dns_hostnames=True)
    steady = seed_vpc(ec2, REGION, cidr="10.2.0.0/16", name="steady", s3_policy=confined_policy(org_id),
                      associate_all=True, dns_hostnames=True)
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    # A route table the S3 endpoint does not reach: its route-table rule changes, nothing else does.
    ec2.create_route_table(VpcId=drifting.ids["vpc"])

    result = _sweep(rt)
    endpoint = drifting.ids["s3_endpoint"]
    newest = {i["rule_id"]: i for i in sorted(_history(ledger_table, endpoint), key=lambda i: i["sk"])}
    assert newest["gateway-endpoint-route-tables"]["status"] == "dry_run"
    assert len(_history(ledger_table, steady.ids["s3_endpoint"])) == 2, "the steady endpoint: no new history"
    [checks] = Ledger(ledger_table).checks(ACCOUNT, REGION)
    checked = _checked([checks])
    assert ("gateway-endpoint-route-tables", "dry_run", endpoint) not in checked
    assert ("endpoint-policy-org-confined", "compliant", endpoint) in checked
    assert sum(checked.values()) + 1 == sum(_evaluations(result).values())
    [state] = [i for i in Ledger(ledger_table).current("dry_run") if i["resource_id"] == endpoint]
    assert state["rule_id"] == "gateway-endpoint-route-tables"

    # What would have been fixed, unchanged, is listed with its reason in the checks item (on the by-day activity
    # index), not as history: the history shows when it became dry_run. Its state item stays as it was.
    before = len(_history(ledger_table, endpoint))
    with count_api_calls() as calls:
        _sweep(rt)
    assert len(_history(ledger_table, endpoint)) == before
    [same] = [i for i in Ledger(ledger_table).current("dry_run") if i["resource_id"] == endpoint]
    assert same == state
    assert sum(calls.batch_write_items) == 1  # one checks item
    [newest, *_] = Ledger(ledger_table).checks(ACCOUNT, REGION)
    assert newest["would_fix"]["gateway-endpoint-route-tables"][endpoint] == state["reason"]


def test_an_open_finding_the_sweep_no_longer_sees_is_closed_unless_its_rule_is_off_or_it_is_newer(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    import json

    import boto3

    from vpce_guard.models import Finding, Outcome, Status

    # DNS support off under an S3 gateway endpoint: the VPC is open for gateway-endpoint-dns-support.
    left = seed_vpc(ec2, REGION, cidr="10.1.0.0/16", name="left", with_ssm=False, dns_support=False)
    kept = seed_vpc(ec2, REGION, cidr="10.2.0.0/16", name="kept")
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    ledger = Ledger(ledger_table)
    assert (left.ids["vpc"], "gateway-endpoint-dns-support") in {
        (i["resource_id"], i["rule_id"]) for i in ledger.current("dry_run")}
    # Its only gateway endpoint goes (the event lost): the rule has nothing left to say about the VPC. And an
    # event records a finding while the next sweep runs (newer than the sweep: not the sweep's to close).
    ec2.delete_vpc_endpoints(VpcEndpointIds=[left.ids["s3_endpoint"]])
    later = pipeline.datetime.now(pipeline.UTC) + pipeline.timedelta(hours=1)
    ledger.write(ledger_module_records(Outcome(finding=Finding(
        rule_id="endpoint-policy-org-confined", resource_id="vpce-0fromaneventxxxxx", resource_type="vpc-endpoint",
        status=Status.NON_COMPLIANT, reason="seen by an event"), status=Status.DRY_RUN, reason="seen by an event"),
        later))

    _sweep(rt)
    closed = {(i["resource_id"], i["rule_id"]): i for i in ledger.current("not_applicable")}
    state = closed[(left.ids["vpc"], "gateway-endpoint-dns-support")]
    assert state["reason"].startswith("not seen by the sweep of") and "(was dry_run)" in state["reason"]
    still_open = {(i["resource_id"], i["rule_id"]) for i in ledger.current("dry_run")}
    assert (left.ids["vpc"], "gateway-endpoint-dns-support") not in still_open
    assert ("vpce-0fromaneventxxxxx", "endpoint-policy-org-confined") in still_open, "newer than the sweep"
    assert (kept.ids["s3_endpoint"], "endpoint-policy-org-confined") in still_open, "seen again: stays open"
    history = _history(ledger_table, left.ids["vpc"])
    assert any(h["status"] == "not_applicable" and h["details"]["previous_status"] == "dry_run" for h in history)

    # A rule switched off keeps its states as they were, whatever the sweep sees.
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/test/modes", Type="String", Value=json.dumps({"gateway-endpoint-route-tables": "off"}))
    ec2.create_route_table(VpcId=kept.ids["vpc"])  # would change that rule's finding, if it ran
    _sweep(pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN, mode_overrides_parameter="/test/modes")))
    assert (kept.ids["s3_endpoint"], "gateway-endpoint-route-tables") in {
        (i["resource_id"], i["rule_id"]) for i in ledger.current("dry_run")}


def ledger_module_records(outcome: Any, when: Any) -> list[Any]:
    from vpce_guard.ledger import records_for

    return records_for([outcome], Trigger(source="event"), account=ACCOUNT, region=REGION, ttl_days=1, now=when)


def test_what_is_open_in_an_account_region_is_one_query_of_the_open_index(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    """Closing unseen findings reads the account-region's open state items with one Query of the sparse
    open-by-place index (only open state items are in it), not one Query per open status."""
    from vpce_guard.ledger import OPEN_INDEX, open_place

    left = seed_vpc(ec2, REGION, cidr="10.1.0.0/16", name="left", with_ssm=False, dns_support=False)
    seed_vpc(ec2, REGION, cidr="10.2.0.0/16", name="kept", s3_policy=confined_policy(org_id), associate_all=True)
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    indexed = ledger_table.query(IndexName=OPEN_INDEX,
                                 KeyConditionExpression=Key("open_place").eq(open_place(ACCOUNT, REGION)))["Items"]
    ledger = Ledger(ledger_table)
    open_now = {(i["resource_id"], i["rule_id"]) for s in ("dry_run", "non_compliant", "failed", "flapping",
                                                           "pending") for i in ledger.current(s)}
    assert {(i["resource_id"], i["rule_id"]) for i in indexed} == open_now and open_now
    assert all("open_place" not in i for i in ledger.current("compliant"))

    ec2.delete_vpc_endpoints(VpcEndpointIds=[left.ids["s3_endpoint"]])
    with count_api_calls() as calls:
        report = ledger.close_unseen(account=ACCOUNT, region=REGION, seen=set(),
                                     rules=[r.id for r in rt.active_rules()],
                                     before=pipeline.datetime.now(pipeline.UTC), trigger=Trigger(source="sweep"),
                                     ttl_days=30)
    assert calls.count("dynamodb", "Query") == 1, calls.by_operation()
    assert report.items
    after = ledger_table.query(IndexName=OPEN_INDEX,
                               KeyConditionExpression=Key("open_place").eq(open_place(ACCOUNT, REGION)))["Items"]
    assert after == [], "closed states leave the index"
