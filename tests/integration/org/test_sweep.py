"""Organization scale under moto: a hub and member accounts (each a separate moto account with its own VPCs in
two regions and the spoke role of templates/spoke.yaml), the hub's real handlers, SQS fan-out as Lambda's
event source mapping does it, and STS that refuses AssumeRole as AWS does (tests/support/sts_gate.py)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from devkit.org import HUB_FUNCTION_ROLES, OrgWorld
from devkit.seed import render_event
from tests.support.faults import EC2_THROTTLE, Fault, FaultInjector, no_backoff
from tests.support.sts_gate import AssumeRoleGate
from vpce_guard.sweep import SweepRecords, SweepSummary, SweepUnit

from ..conftest import REGION
from .conftest import REGIONS, Hub, endpoint, is_confined

POLICY_RULE = "endpoint-policy-org-confined"
ROUTE_RULE = "gateway-endpoint-route-tables"


def _summary(ledger: Any, sweep_id: str) -> SweepSummary:
    summary = SweepRecords(ledger, 400).get(sweep_id)
    assert summary is not None
    return summary


def _state_items(ledger: Any, status: str) -> list[dict[str, Any]]:
    return ledger.query(IndexName="by-status", KeyConditionExpression=Key("gsi1pk").eq(f"STATUS#{status}"))["Items"]


def _emf_metrics(out: str) -> dict[str, float]:
    """Metric values from the Embedded Metric Format lines Powertools prints."""
    values: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                v = blob[metric["Name"]]
                values[metric["Name"]] = sum(v) if isinstance(v, list) else v
    return values


@pytest.mark.parametrize("org", [REGIONS], indirect=True, ids=["two regions"])
def test_one_sweep_fixes_every_account_and_region_with_that_accounts_credentials(
        hub: Hub, org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(org.accounts) == 3 and len(org.vpcs) == 6
    for (account, region), w in org.vpcs.items():
        ep = endpoint(org, account, region, w.ids["s3_endpoint"])
        assert not is_confined(ep["PolicyDocument"]) and w.ids["rt2"] not in ep["RouteTableIds"]

    started = hub.sweep()
    assert started["accounts"] == 3 and started["units"] == 6 and started["regions"] == list(REGIONS)
    report = hub.drain_worker()
    assert report.failed_deliveries == [] and report.processed == 6

    for (account, region), w in org.vpcs.items():
        s3 = endpoint(org, account, region, w.ids["s3_endpoint"])
        assert is_confined(s3["PolicyDocument"]), (account, region)
        assert {w.ids["rt1"], w.ids["rt2"], w.ids["main_rt"]} <= set(s3["RouteTableIds"]), (account, region)
        assert is_confined(endpoint(org, account, region, w.ids["ssm_endpoint"])["PolicyDocument"])

    # Members were reached only through their spoke role, assumed by the worker's own role, once per account
    # for the whole sweep (credentials cached across regions and batches); the hub used its own credentials.
    worker_role = f"arn:aws:iam::{org.hub}:role/{HUB_FUNCTION_ROLES[1]}"
    for member in org.members:
        calls = gate.calls_for(member)
        assert [(c.role_arn, c.allowed) for c in calls] == [
            (f"arn:aws:iam::{member}:role/{org.spoke_role_name}", True)]
        assert calls[0].caller_arn.startswith(f"arn:aws:sts::{org.hub}:assumed-role/{HUB_FUNCTION_ROLES[1]}/")
    assert gate.calls_for(org.hub) == []
    assert worker_role.endswith(HUB_FUNCTION_ROLES[1])

    remediated = _state_items(org_ledger, "remediated")
    assert {(i["account"], i["region"]) for i in remediated} == set(org.vpcs)
    history = org_ledger.query(KeyConditionExpression=Key("pk").eq(
        f"RES#{org.members[1]}#eu-west-1#{org.vpcs[(org.members[1], 'eu-west-1')].ids['s3_endpoint']}"))["Items"]
    assert {i["trigger"]["source"] for i in history if i["sk"].startswith("EVAL#")} == {"sweep"}

    summary = _summary(org_ledger, started["sweep_id"])
    assert summary.status == "complete" and summary.finished_at
    assert sorted(summary.accounts) == sorted(org.accounts) and summary.regions == list(REGIONS)
    assert (summary.units_total, summary.units_done, summary.units_failed) == (6, 6, 0)
    assert summary.endpoints_seen == 12  # an S3 gateway and an SSM interface endpoint per account and region
    assert summary.findings_by_rule[POLICY_RULE]["remediated"] == 12
    assert summary.findings_by_rule[ROUTE_RULE]["remediated"] == 6
    # The seeded VPCs keep a new VPC's DNS hostnames off under an SSM endpoint with private DNS: one fix each.
    assert summary.findings_by_rule["private-dns-vpc-dns"]["remediated"] == 6
    assert summary.statuses["remediated"] == 24 and summary.failures == []
    [latest] = SweepRecords(org_ledger, 400).latest(limit=1)  # newest sweep by the index, no scan
    assert latest == summary
    raw = org_ledger.get_item(Key={"pk": f"SWEEP#{started['sweep_id']}", "sk": "SUMMARY"})["Item"]
    assert "accounts" not in raw and raw["accounts_total"] == 3  # every unit updates it: it stays small
    units = SweepRecords(org_ledger, 400).units(started["sweep_id"])
    assert {(u["account"], u["region"], u["outcome"]) for u in units} == {(a, r, "ok") for a, r in org.vpcs}

    metrics = _emf_metrics(capsys.readouterr().out)
    assert metrics["sweep_remediated"] == 24 and metrics["sweep_units_failed"] == 0
    assert metrics["sweep_failed"] == 0 and metrics["sweep_accounts"] == 3


@pytest.mark.parametrize("org", [REGIONS], indirect=True, ids=["two regions"])
def test_event_from_a_member_account_is_acted_on_in_that_account(
        hub: Hub, org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any) -> None:
    member, region = org.members[0], "eu-west-1"
    w = org.vpcs[(member, region)]
    event = render_event("modify-vpc-endpoint.json", w.mapping(), account=member, region=region)
    assert event["account"] == member and event["detail"]["recipientAccountId"] == member

    result = hub.call("OnChangeFunction", event)

    assert result["account"] == member and result["disposition"] == "act"
    s3 = endpoint(org, member, region, w.ids["s3_endpoint"])
    assert is_confined(s3["PolicyDocument"]) and w.ids["rt2"] in s3["RouteTableIds"]
    # Nothing changed anywhere else: not in the hub, not in the other member, not in the other region.
    for (account, other_region), other in org.vpcs.items():
        if (account, other_region) != (member, region):
            assert not is_confined(endpoint(org, account, other_region, other.ids["s3_endpoint"])["PolicyDocument"])
    [call] = gate.calls
    assert call.allowed and call.role_arn == f"arn:aws:iam::{member}:role/{org.spoke_role_name}"
    assert f":assumed-role/{HUB_FUNCTION_ROLES[0]}/" in call.caller_arn
    records = org_ledger.query(KeyConditionExpression=Key("pk").eq(
        f"RES#{member}#{region}#{w.ids['s3_endpoint']}"))["Items"]
    assert {r["status"] for r in records if r["sk"].startswith("EVAL#")} == {"remediated"}


def test_an_account_that_joins_between_sweeps_is_swept_the_next_time(
        hub: Hub, org: OrgWorld, org_ledger: Any) -> None:
    first = hub.sweep()
    hub.drain_worker()
    newcomer = org.add_member("newcomer")  # the StackSet's automatic deployment gives it the spoke role

    second = hub.sweep()
    hub.drain_worker()

    assert newcomer not in _summary(org_ledger, first["sweep_id"]).accounts
    summary = _summary(org_ledger, second["sweep_id"])
    assert newcomer in summary.accounts and summary.units_total == 4 and summary.units_failed == 0
    w = org.vpcs[(newcomer, REGION)]
    assert is_confined(endpoint(org, newcomer, REGION, w.ids["s3_endpoint"])["PolicyDocument"])
    # What the first sweep fixed is compliant now: the second one only fixes the newcomer's drift.
    assert summary.findings_by_rule[POLICY_RULE] == {"remediated": 2, "compliant": 6}


def test_an_account_whose_role_cannot_be_assumed_is_a_recorded_failure_not_a_failed_sweep(
        hub: Hub, org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any) -> None:
    no_role = org.add_member("norole", with_spoke_role=False)
    wrong_trust = org.add_member("wrongtrust", with_spoke_role=False)
    org.hub_principal_arns, kept = [f"arn:aws:iam::{org.hub}:role/someone-else"], org.hub_principal_arns
    org.install_spoke_role(wrong_trust)  # a spoke from another hub, say
    org.hub_principal_arns = kept

    started = hub.sweep()
    report = hub.drain_worker()

    assert report.failed_deliveries == []  # nothing to retry: the failure is recorded, not raised
    summary = _summary(org_ledger, started["sweep_id"])
    assert summary.status == "complete" and (summary.units_done, summary.units_failed) == (5, 2)
    assert summary.failures_by_kind == {"role_unavailable": 2}
    assert {(f["account"], f["region"]) for f in summary.failures} == {(no_role, REGION), (wrong_trust, REGION)}
    assert all("AccessDenied" in f["reason"] and "AssumeRole" in f["reason"] for f in summary.failures)
    # Everyone else was swept and fixed; the two were not touched.
    assert summary.findings_by_rule[POLICY_RULE]["remediated"] == 6
    for broken in (no_role, wrong_trust):
        w = org.vpcs[(broken, REGION)]
        assert not is_confined(endpoint(org, broken, REGION, w.ids["s3_endpoint"])["PolicyDocument"])
        intake = org_ledger.query(KeyConditionExpression=Key("pk").eq(f"EVENT#{broken}#{REGION}"))["Items"]
        assert [(i["status"], i["trigger"]["source"]) for i in intake] == [("failed", "sweep")]
        assert not any(c.allowed for c in gate.calls_for(broken))
    assert {c.reason for c in gate.calls_for(no_role)} == {"role does not exist"}
    assert {c.reason for c in gate.calls_for(wrong_trust)} == {"trust policy does not allow the caller"}


def test_regions_not_enabled_suspended_and_skipped_accounts(
        hub: Hub, org: OrgWorld, org_ledger: Any) -> None:
    orgs = boto3.client("organizations", region_name="us-east-1")
    closed = org.add_member("closing", seed=False)
    orgs.close_account(AccountId=closed)
    hub.overrides.update(SpokeRegions="us-east-1,ap-east-1",  # ap-east-1 is opt-in and not enabled anywhere
                         SweepSkipAccountIds=org.members[1])

    started = hub.sweep()
    hub.drain_worker()

    summary = _summary(org_ledger, started["sweep_id"])
    assert sorted(summary.accounts) == sorted([org.hub, org.members[0]])
    skipped = {s["account"]: s["reason"] for s in summary.skipped_accounts}
    assert "skip list" in skipped[org.members[1]] and closed in skipped and "active" not in skipped[closed]
    assert summary.status == "complete" and (summary.units_total, summary.units_failed) == (4, 2)
    assert summary.failures_by_kind == {"region_not_enabled": 2}
    assert {(f["account"], f["region"]) for f in summary.failures} == {
        (org.hub, "ap-east-1"), (org.members[0], "ap-east-1")}
    for account in (org.hub, org.members[0]):
        w = org.vpcs[(account, "us-east-1")]
        assert is_confined(endpoint(org, account, "us-east-1", w.ids["s3_endpoint"])["PolicyDocument"])
    w = org.vpcs[(org.members[1], "us-east-1")]
    assert not is_confined(endpoint(org, org.members[1], "us-east-1", w.ids["s3_endpoint"])["PolicyDocument"])


def test_worker_reports_only_the_failed_messages_and_counts_each_unit_once(
        hub: Hub, org: OrgWorld, org_ledger: Any) -> None:
    hub.overrides.update(SpokeRegions="us-east-1")
    started = hub.sweep()  # three good units on the queue
    unit = SweepUnit(sweep_id=started["sweep_id"], account=org.members[0], region="us-east-1",
                     started_at="2026-11-29T00:00:00.000Z")
    unknown = unit.model_copy(update={"sweep_id": "20000101T000000Z-0badc0de"})
    hub.send_units(["not json", json.dumps({"sweep_id": "x", "account": "1", "region": "moon"}),
                    unknown.model_dump_json(), unit.model_dump_json()])  # the last: a duplicate delivery

    report = hub.drain_worker(batch_size=10)

    first = report.responses[0]
    assert len(first["batchItemFailures"]) == 3, first  # the three bad messages, not the four good ones
    # Each bad message was retried until SQS moved it to the dead-letter queue (maxReceiveCount 3).
    assert len(report.failed_deliveries) == 9
    assert sorted(hub.dead_letters()) == sorted([
        "not json", json.dumps({"sweep_id": "x", "account": "1", "region": "moon"}), unknown.model_dump_json()])
    summary = _summary(org_ledger, started["sweep_id"])
    assert summary.status == "complete" and (summary.units_total, summary.units_done) == (3, 3)
    assert summary.findings_by_rule[ROUTE_RULE]["remediated"] == 3  # the duplicate was not counted twice


@pytest.mark.parametrize("throttled_times", [1, None], ids=["once", "always"])
def test_a_throttled_unit_is_retried_by_sqs_and_recorded_on_its_last_delivery(
        hub: Hub, org: OrgWorld, org_ledger: Any, throttled_times: int | None) -> None:
    faults = FaultInjector(Fault("ec2.DescribeVpcEndpoints", EC2_THROTTLE, status=503, times=throttled_times))
    started = hub.sweep()
    with no_backoff(), faults.installed():
        report = hub.drain_worker()

    summary = _summary(org_ledger, started["sweep_id"])
    assert summary.status == "complete" and summary.units_done == 3
    assert hub.dead_letters() == []  # transient: retried, then recorded, never dead-lettered
    if throttled_times == 1:  # one unit failed once, succeeded on its second delivery
        assert len(report.failed_deliveries) == 1 and summary.units_failed == 0
        assert summary.findings_by_rule[POLICY_RULE]["remediated"] == 6
    else:  # every unit failed on each of its three deliveries: the third one recorded it
        assert len(report.failed_deliveries) == 3 * 2 and summary.units_failed == 3
        assert summary.failures_by_kind == {"read_failed": 3}
        assert all("RequestLimitExceeded" in f["reason"] for f in summary.failures)
