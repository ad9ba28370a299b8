"""Findings beyond the ledger, through the real handlers under moto: Security Hub (ASFF) in the resource's own
account and region, finding events on the hub bus (a rule with an SQS target receives them), and the
notification topic (an SQS subscription receives what needs a person). Publishing happens after the ledger is
written, only for status changes, and never fails a run."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.stub import Stubber
from jsonschema import Draft202012Validator

from devkit import template
from devkit.seed import SpineWorld, confined_policy, render_event, seed_vpc
from tests.support.asff_schema import asff_schema
from tests.support.faults import Fault, FaultInjector
from vpce_guard import finding_events, ledger, pipeline, publish, sweep
from vpce_guard.config import Settings
from vpce_guard.models import Action, Finding, Outcome, Status, Targets, Trigger

from .conftest import ACCOUNT, REGION, TABLE, Invoke, WarmHandler

ROOT = Path(__file__).resolve().parents[2]
ASFF = Draft202012Validator(asff_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
POLICY_RULE = "endpoint-policy-org-confined"
BUS = template.messaging_for(TABLE)["HubEventBus"]
TOPIC = template.messaging_for(TABLE)["NotificationsTopic"]


def _delivery(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "id": str(uuid.uuid4())}


def _all_findings(securityhub: Any) -> list[dict[str, Any]]:
    return [f for page in securityhub.get_paginator("get_findings").paginate() for f in page["Findings"]]


def _finding(securityhub: Any, rule: str, resource: str) -> dict[str, Any]:
    # moto's GetFindings ignores an Id filter: pick the finding here.
    found = [f for f in _all_findings(securityhub) if f["Id"] == f"vpce-guard/{ACCOUNT}/{REGION}/{rule}/{resource}"]
    assert len(found) == 1, found
    return found[0]


def _queue(name: str) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return out
        out += [json.loads(m["Body"]) for m in batch]


def _rule_to_queue(pattern: dict[str, Any], name: str) -> tuple[Any, str]:
    """A rule on the hub bus with an SQS target, as a user would route finding events."""
    sqs, url, arn = _queue(name)
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def _topic_to_queue(name: str) -> tuple[Any, str]:
    sqs, url, arn = _queue(name)
    boto3.client("sns", region_name=REGION).subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
    return sqs, url


def _docs_example_rule() -> dict[str, Any]:
    """The example rule of docs/findings.md (the JSON block after its `example-rule` marker)."""
    text = (ROOT / "docs" / "findings.md").read_text()
    block = re.search(r"<!-- example-rule -->\s*```json\n(.*?)```", text, flags=re.S)
    assert block, "docs/findings.md lost its example rule"
    return json.loads(block.group(1))


@pytest.fixture
def securityhub(aws_env: None) -> Any:
    client = boto3.client("securityhub", region_name=REGION)
    client.enable_security_hub()
    return client


def _publish_items(table: Any, pk: str) -> list[dict[str, Any]]:
    return table.query(KeyConditionExpression=Key("pk").eq(pk))["Items"]


# ------------------------------------------------------------------------------------------------ Security Hub
def test_dry_run_leaves_a_failed_asff_finding_that_enforce_resolves_under_the_same_id(
        invoke: Invoke, world: SpineWorld, securityhub: Any, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    event = render_event("modify-vpc-endpoint.json", world.mapping())

    dry = invoke(event, Mode="dry_run", SecurityHubFindings="true")
    assert {r["status"] for r in dry["results"] if r["resource_id"] == endpoint} == {"dry_run"}
    assert dry["published"]["security_hub"] >= 2

    opened = _finding(securityhub, POLICY_RULE, endpoint)
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in ASFF.iter_errors(opened)] == []
    assert opened["AwsAccountId"] == ACCOUNT and opened["Resources"][0]["Region"] == REGION
    assert opened["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert (opened["Compliance"]["Status"], opened["Workflow"]["Status"], opened["RecordState"]) == (
        "FAILED", "NEW", "ACTIVE")
    assert opened["Remediation"]["Recommendation"]["Text"].startswith("vpce-guard would ")
    pk, sk = opened["ProductFields"]["vpce-guard/LedgerKey"].split(" ")
    assert ledger_table.get_item(Key={"pk": pk, "sk": sk})["Item"]["status"] == "dry_run"  # finding → history

    fixed = invoke(_delivery(event), SecurityHubFindings="true")
    assert {r["status"] for r in fixed["results"] if r["resource_id"] == endpoint} == {"remediated"}
    resolved = _finding(securityhub, POLICY_RULE, endpoint)
    assert (resolved["Compliance"]["Status"], resolved["Workflow"]["Status"]) == ("PASSED", "RESOLVED")
    assert resolved["UpdatedAt"] > opened["UpdatedAt"]
    assert resolved["Remediation"]["Recommendation"]["Text"].startswith("Fixed by vpce-guard")
    # One finding per (resource, rule): the update replaced it, nothing piled up.
    ids = [f["Id"] for f in _all_findings(securityhub)]
    assert len(ids) == len(set(ids))


def test_security_hub_is_called_only_when_switched_on(
        invoke: Invoke, world: SpineWorld, securityhub: Any) -> None:
    recorder = FaultInjector()
    with recorder.installed():
        invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    assert recorder.count("securityhub.BatchImportFindings") == 0
    assert recorder.count("eventbridge.PutEvents") == 1  # the finding events are on by default
    assert securityhub.get_findings()["Findings"] == []


def _sweep_runtime(**overrides: str) -> pipeline.Runtime:
    spec = template.function_spec("SweepWorkerFunction", resources={"LedgerTable": TABLE}, overrides=overrides)
    return pipeline.Runtime(Settings.from_env(spec.environment))


def test_a_sweep_that_changes_nothing_publishes_nothing(
        ec2: Any, world: SpineWorld, securityhub: Any, ledger_table: Any, org_id: str) -> None:
    targets = Targets(account=ACCOUNT, region=REGION, everything=True)
    with FaultInjector().installed() as recorder:  # sees the calls of sessions created inside the block
        rt = _sweep_runtime(Mode="dry_run", SecurityHubFindings="true")
        first = pipeline.run_targets(rt, targets, Trigger(source="sweep", event_id="s1"))
        seen = len(recorder.calls)
        second = pipeline.run_targets(rt, targets, Trigger(source="sweep", event_id="s2"))
    assert first.published is not None and first.published.security_hub > 0 and first.published.events > 0
    publishing = ("securityhub", "eventbridge", "sns")
    assert {c.name for c in recorder.calls[:seen] if c.service in publishing} == {
        "securityhub.BatchImportFindings", "eventbridge.PutEvents"}
    assert second.changes == []
    later = [c.name for c in recorder.calls[seen:] if c.stage == "call"]
    assert [c for c in later if c.split(".")[0] in publishing] == []
    assert "ec2.DescribeVpcEndpoints" in later


def test_security_hub_not_enabled_is_recorded_once_and_never_fails_the_run(
        warm: Callable[..., WarmHandler], ec2: Any, world: SpineWorld, ledger_table: Any) -> None:
    other = seed_vpc(ec2, REGION, cidr="10.9.0.0/16", name="other")
    # moto imports findings whether or not Security Hub is enabled; AWS answers InvalidAccessException.
    not_enabled = Fault("securityhub.BatchImportFindings", "InvalidAccessException", status=401, times=None,
                        message=f"Account {ACCOUNT} is not subscribed to AWS Security Hub")
    with FaultInjector(not_enabled).installed() as recorder:
        handler = warm(MODE="dry_run", SECURITY_HUB_FINDINGS="true")
        first = handler(_delivery(render_event("modify-vpc-endpoint.json", world.mapping())))
        second = handler(_delivery(render_event("modify-vpc-endpoint.json", other.mapping())))
    for result in (first, second):
        assert result["disposition"] == "act" and "dry_run" in result["counts"]
    assert first["published"]["security_hub_not_enabled"] == [f"{ACCOUNT}/{REGION}"]
    assert first["published"]["events"] > 0, "the other targets still hear of the changes"
    # The warm container does not ask again; the ledger says it once.
    assert recorder.count("securityhub.BatchImportFindings") == 1
    [item] = _publish_items(ledger_table, publish.SECURITY_HUB_PK)
    assert item["sk"] == f"NOT_ENABLED#{ACCOUNT}#{REGION}" and item["status"] == "not_enabled"
    assert "not subscribed" in item["reason"] and int(item["expires_at"]) > 0
    assert _publish_items(ledger_table, publish.FAILURES_PK) == []


def test_findings_go_in_batches_of_at_most_one_hundred_and_throttled_ones_are_sent_again(
        securityhub: Any, ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = [_change(f"vpce-{i:017x}") for i in range(230)]
    recorder = FaultInjector(Fault("securityhub.BatchImportFindings", "TooManyRequestsException", status=429,
                                   stage="send", times=2))
    with recorder.installed():
        rt = _sweep_runtime(SecurityHubFindings="true")
        report = rt.publisher.publish(changes)
    assert report.security_hub == 230 and not report.failures
    assert recorder.count("securityhub.BatchImportFindings") == 3  # 100 + 100 + 30
    assert recorder.count("securityhub.BatchImportFindings", stage="send") == 5  # two throttled, retried by botocore
    assert len(_all_findings(securityhub)) == 230

    # Findings the call answers as throttled are sent again, alone, after a pause (moto never fails one).
    pauses: list[float] = []
    rt.publisher.sleep = pauses.append
    client = rt.factory.context(ACCOUNT, REGION).client("securityhub")
    from vpce_guard import asff
    from vpce_guard.finding_view import FindingView

    two = [_change("vpce-0000000000000000a"), _change("vpce-0000000000000000b")]
    sent = [asff.to_asff(FindingView.from_record(c.record, c.previous)) for c in two]
    with Stubber(client) as stub:
        stub.add_response("batch_import_findings", {"FailedCount": 1, "SuccessCount": 1, "FailedFindings": [
            {"Id": sent[1]["Id"], "ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]},
            {"Findings": sent})
        stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 1, "FailedFindings": []},
                          {"Findings": [sent[1]]})
        report = rt.publisher.publish(two)
        stub.assert_no_pending_responses()
    assert report.security_hub == 2 and not report.failures and len(pauses) == 1


def _change(resource: str, status: Status = Status.DRY_RUN) -> ledger.StatusChange:
    fix = Action(kind="set_endpoint_policy", resource_id=resource)
    outcome = Outcome(finding=Finding(rule_id=POLICY_RULE, resource_id=resource, resource_type="vpc-endpoint",
                                      status=Status.NON_COMPLIANT, reason="open", actions=(fix,)),
                      status=status, reason="open", actions=(fix,))
    [rec] = ledger.records_for([outcome], Trigger(source="sweep"), account=ACCOUNT, region=REGION, ttl_days=1)
    return ledger.StatusChange(ACCOUNT, REGION, resource, "vpc-endpoint", POLICY_RULE, None, status, rec)


# ------------------------------------------------------------------------------------------------ finding events
def test_each_status_change_is_a_finding_event_on_the_hub_bus(
        invoke: Invoke, world: SpineWorld, ledger_table: Any) -> None:
    sqs, url = _rule_to_queue({"source": [finding_events.SOURCE], "detail-type": [finding_events.DETAIL_TYPE]},
                              "all-findings")
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    invoke(event, Mode="dry_run")
    opened = _received(sqs, url)
    assert opened and {e["detail"]["change"] for e in opened} == {"opened"}
    invoke(_delivery(event))
    fixed = _received(sqs, url)
    by_rule = {(e["detail"]["rule_id"], e["detail"]["resource_id"]): e for e in fixed}
    policy = by_rule[(POLICY_RULE, world.ids["s3_endpoint"])]
    assert policy["source"] == "vpce-guard" and policy["detail-type"] == "VPC Endpoint Finding Status Change"
    detail = policy["detail"]
    assert (detail["change"], detail["previous_status"], detail["status"]) == ("remediated", "dry_run", "remediated")
    assert detail["account"] == ACCOUNT and detail["region"] == REGION and detail["severity"] == "INFORMATIONAL"
    assert policy["resources"] == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-endpoint/{world.ids['s3_endpoint']}"]
    record = ledger_table.get_item(Key=detail["ledger"])["Item"]
    assert record["status"] == "remediated" and record["rule_id"] == POLICY_RULE
    # A third delivery of the same change finds nothing changed: no event.
    invoke(_delivery(event))
    assert _received(sqs, url) == []


def test_the_documented_example_rule_routes_failures_only(
        warm: Callable[..., WarmHandler], world: SpineWorld, ledger_table: Any) -> None:
    sqs, url = _rule_to_queue(_docs_example_rule(), "needs-a-person")
    handler = warm()
    refused = Fault("ec2.ModifyVpcEndpoint", "UnauthorizedOperation", status=403, times=None,
                    message="You are not authorized to perform this operation.")
    with FaultInjector(refused).installed():
        result = handler(_delivery(render_event("modify-vpc-endpoint.json", world.mapping())))
    assert "failed" in result["counts"]
    routed = _received(sqs, url)
    assert routed and {e["detail"]["change"] for e in routed} == {"failed"}


# ------------------------------------------------------------------------------------------------ notifications
def test_a_failed_fix_notifies_the_topic_once(
        warm: Callable[..., WarmHandler], world: SpineWorld, ledger_table: Any) -> None:
    sqs, url = _topic_to_queue("people")
    handler = warm()
    refused = Fault("ec2.ModifyVpcEndpoint", "UnauthorizedOperation", status=403, times=None)
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    with FaultInjector(refused).installed():
        handler(_delivery(event))
        handler(_delivery(event))  # still failing: not news
    [message] = _received(sqs, url)
    assert message["MessageAttributes"]["kind"]["Value"] == "findings"
    assert "need attention (failed)" in message["Subject"] and world.ids["s3_endpoint"] in message["Message"]
    assert "UnauthorizedOperation" in message["Message"]


def test_the_sweep_sends_its_summary_to_the_topic_once(
        ec2: Any, world: SpineWorld, ledger_table: Any, org_id: str) -> None:
    sqs, url = _topic_to_queue("summary")
    rt = _sweep_runtime()
    summary = sweep.run_sweep(rt, sweep.SweepSettings(regions=(REGION,)))
    assert summary.status == "complete"
    messages = _received(sqs, url)
    summaries = [m for m in messages if m["MessageAttributes"]["kind"]["Value"] == "sweep_summary"]
    assert len(summaries) == 1
    assert summary.sweep_id in summaries[0]["Subject"] and "By rule:" in summaries[0]["Message"]


# ------------------------------------------------------------------------------------------------ failures
def test_a_missing_bus_or_topic_is_recorded_and_the_run_goes_on(
        invoke: Invoke, world: SpineWorld, ec2: Any, ledger_table: Any, org_id: str) -> None:
    boto3.client("events", region_name=REGION).delete_event_bus(Name=BUS)
    boto3.client("sns", region_name=REGION).delete_topic(TopicArn=TOPIC)
    refused = Fault("ec2.ModifyVpcEndpoint", "UnauthorizedOperation", status=403, times=None)
    with FaultInjector(refused).installed():
        result = invoke(render_event("modify-vpc-endpoint.json", world.mapping()))
    assert result["disposition"] == "act" and "failed" in result["counts"]
    failures = {f["target"] for f in result["published"]["failures"]}
    assert failures == {"events", "sns"}
    recorded = _publish_items(ledger_table, publish.FAILURES_PK)
    assert {i["target"] for i in recorded} == {"events", "sns"}
    assert all(i["record_type"] == "publish_failure" and int(i["expires_at"]) > 0 for i in recorded)
    events_item = next(i for i in recorded if i["target"] == "events")
    assert f"vpce-guard/{ACCOUNT}/{REGION}/{POLICY_RULE}/{world.ids['s3_endpoint']}" in events_item["findings"]


def test_nothing_is_published_for_a_compliant_resource_seen_again(
        invoke: Invoke, ec2: Any, org_id: str, ledger_table: Any) -> None:
    ok = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True)
    event = render_event("modify-vpc-endpoint.json", ok.mapping())
    first = invoke(event, SecurityHubFindings="true")
    again = invoke(_delivery(event), SecurityHubFindings="true")
    assert first["published"] == again["published"] == {"security_hub": 0, "events": 0, "notifications": 0}
