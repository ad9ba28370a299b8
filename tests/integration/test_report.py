"""The ledger report (`python -m devkit.report`): current findings, a resource's history and a time window of
remediations, read back from what the real handler wrote under moto, with Queries only (never a Scan)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit import report
from devkit.seed import SpineWorld, render_event
from vpce_guard.ledger import Ledger, records_for
from vpce_guard.models import Finding, Outcome, Status, Trigger

from .conftest import ACCOUNT, REGION, TABLE, Invoke

OTHER_ACCOUNT = "210987654321"


@pytest.fixture
def no_scans(ledger_table: Any) -> Ledger:
    """The ledger, with any Scan call failing the test."""
    def refuse(**_: Any) -> None:
        raise AssertionError("the report must not scan the ledger")

    ledger_table.meta.client.meta.events.register("before-call.dynamodb.Scan", refuse)
    return Ledger(ledger_table)


def _write(ledger: Ledger, *, account: str, region: str, resource: str, rule: str, status: Status,
           when: datetime, reason: str = "seeded") -> None:
    finding = Finding(rule_id=rule, resource_id=resource, resource_type="vpc-endpoint", status=status, reason=reason)
    outcome = Outcome(finding=finding, status=status, reason=reason, before={"route_table_ids": ["rtb-1"]},
                      after={"route_table_ids": ["rtb-1", "rtb-2"]})
    ledger.write(records_for([outcome], Trigger(source="sweep"), account=account, region=region, ttl_days=30,
                             now=when))


def test_findings_by_account_region_rule_status(invoke: Invoke, world: SpineWorld, no_scans: Ledger) -> None:
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    now = datetime.now(UTC)
    _write(no_scans, account=OTHER_ACCOUNT, region="eu-west-1", resource="vpce-0000000000000000a",
           rule="gateway-endpoint-route-tables", status=Status.FAILED, when=now)
    _write(no_scans, account=OTHER_ACCOUNT, region="eu-west-1", resource="vpce-0000000000000000b",
           rule="endpoint-policy-org-confined", status=Status.COMPLIANT, when=now)

    rows = report.findings(no_scans, report.statuses_from("open"))
    endpoint = world.ids["s3_endpoint"]
    assert {(r["account"], r["resource_id"], r["rule_id"], r["status"]) for r in rows} == {
        (ACCOUNT, endpoint, "endpoint-policy-org-confined", "dry_run"),
        (ACCOUNT, endpoint, "gateway-endpoint-route-tables", "dry_run"),
        (OTHER_ACCOUNT, "vpce-0000000000000000a", "gateway-endpoint-route-tables", "failed"),
    }
    assert report.summarise(rows) == [
        {"account": ACCOUNT, "region": REGION, "rule_id": "endpoint-policy-org-confined", "status": "dry_run",
         "count": 1},
        {"account": ACCOUNT, "region": REGION, "rule_id": "gateway-endpoint-route-tables", "status": "dry_run",
         "count": 1},
        {"account": OTHER_ACCOUNT, "region": "eu-west-1", "rule_id": "gateway-endpoint-route-tables",
         "status": "failed", "count": 1},
    ]
    by_account = report.findings(no_scans, report.statuses_from("all"), account=OTHER_ACCOUNT)
    assert {r["status"] for r in by_account} == {"failed", "compliant"}
    by_rule = report.findings(no_scans, report.statuses_from("open"), rule="gateway-endpoint-route-tables")
    assert {r["resource_id"] for r in by_rule} == {endpoint, "vpce-0000000000000000a"}
    only_region = report.findings(no_scans, report.statuses_from("all"), region="eu-west-1")
    assert {r["account"] for r in only_region} == {OTHER_ACCOUNT}


def test_findings_render_as_table_json_and_csv(invoke: Invoke, world: SpineWorld, no_scans: Ledger) -> None:
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    rows = report.findings(no_scans, report.statuses_from("open"))
    summary = report.summarise(rows)

    table = report.render("findings", rows, "table", summary=summary)
    assert table.splitlines()[0].split() == ["account", "region", "rule_id", "status", "count"]
    assert world.ids["s3_endpoint"] in table

    doc = json.loads(report.render("findings", rows, "json", summary=summary))
    assert doc["summary"] == summary and len(doc["findings"]) == len(rows) == 2

    parsed = list(csv.DictReader(io.StringIO(report.render("findings", rows, "csv", summary=summary))))
    assert [r["resource_id"] for r in parsed] == [r["resource_id"] for r in rows]
    counts = list(csv.DictReader(io.StringIO(report.render("findings", rows, "csv", summary=summary,
                                                           summary_only=True))))
    assert sum(int(r["count"]) for r in counts) == 2


def test_history_of_a_resource_newest_first(invoke: Invoke, world: SpineWorld, no_scans: Ledger) -> None:
    event = render_event("modify-vpc-endpoint.json", world.mapping())
    # Three deliveries of the change (each its own EventBridge id; the same id would be a redelivery).
    invoke({**event, "id": f"{event['id'][:-2]}01"}, Mode="dry_run")
    invoke({**event, "id": f"{event['id'][:-2]}02"})
    invoke({**event, "id": f"{event['id'][:-2]}03"})
    rows = report.history(no_scans, ACCOUNT, REGION, world.ids["s3_endpoint"], limit=None)
    policy = [r["status"] for r in rows if r["rule_id"] == "endpoint-policy-org-confined"]
    assert policy == ["compliant", "remediated", "dry_run"]
    fixed = next(r for r in rows if r["status"] == "remediated" and r["rule_id"] == "endpoint-policy-org-confined")
    assert fixed["change"] == "policy_document" and fixed["trigger"] == "ModifyVpcEndpoint"
    assert fixed["actor"].startswith("arn:aws:sts::")
    assert len(report.history(no_scans, ACCOUNT, REGION, world.ids["s3_endpoint"], limit=2)) == 2


def test_endpoint_service_findings_and_the_principal_each_removal_was_about(
        invoke: Invoke, ec2: Any, no_scans: Ledger) -> None:
    import boto3

    from devkit.seed import seed_endpoint_service

    service = seed_endpoint_service(ec2, boto3.client("elbv2", region_name=REGION), REGION,
                                    principals=("*", "arn:aws:iam::999988887777:root"))
    invoke(render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()),
           RemoveOutsidePrincipals="true")

    rows = report.findings(no_scans, list(Status), rule="endpoint-service-allowed-principals")
    assert [(r["resource_id"], r["status"], r["vpc_id"]) for r in rows] == [(service.ids["service"], "remediated", None)]
    every = {r["rule_id"] for r in report.findings(no_scans, list(Status)) if r["resource_id"] == service.ids["service"]}
    assert every == {"endpoint-service-allowed-principals", "endpoint-service-acceptance",
                     "endpoint-service-pending-connections", "endpoint-service-accepted-connections"}
    history = report.history(no_scans, ACCOUNT, REGION, service.ids["service"], limit=None)
    changes = sorted(r["change"] for r in history if r["rule_id"] == "endpoint-service-allowed-principals"
                     and r["status"] == "remediated")
    assert changes == ["principal *: allowed, allowed_principals",
                       "principal arn:aws:iam::999988887777:root: allowed, allowed_principals"]
    acceptance = next(r for r in history if r["rule_id"] == "endpoint-service-acceptance")
    assert acceptance["change"] == "acceptance_required"


def test_remediations_in_a_time_window_one_query_per_day(ledger_table: Any, no_scans: Ledger) -> None:
    base = datetime(2025, 3, 10, 22, 0, tzinfo=UTC)
    for i, hours in enumerate((0, 1, 3, 27, 60)):  # 22:00, 23:00, 01:00 next day, 01:00 a day later, …
        _write(no_scans, account=ACCOUNT, region=REGION, resource=f"vpce-00000000000000{i:03d}",
               rule="gateway-endpoint-route-tables", status=Status.REMEDIATED, when=base + timedelta(hours=hours))
    _write(no_scans, account=ACCOUNT, region=REGION, resource="vpce-000000000000000ff",
           rule="gateway-endpoint-route-tables", status=Status.DRY_RUN, when=base + timedelta(hours=1))
    calls: list[str] = []
    ledger_table.meta.client.meta.events.register("before-call.dynamodb.Query", lambda **kw: calls.append("q"))

    rows = report.activity(no_scans, Status.REMEDIATED, base + timedelta(minutes=30), base + timedelta(hours=27))
    assert [r["resource_id"] for r in rows] == ["vpce-00000000000000001", "vpce-00000000000000002",
                                                "vpce-00000000000000003"]
    assert all(r["status"] == "remediated" and r["trigger"] == "sweep" for r in rows)
    assert len(calls) == 3, "one Query per UTC day of the window (10th, 11th, 12th)"
    dry = report.activity(no_scans, Status.DRY_RUN, base, base + timedelta(days=3))
    assert [r["resource_id"] for r in dry] == ["vpce-000000000000000ff"]
    assert report.activity(no_scans, Status.REMEDIATED, base - timedelta(days=3), base - timedelta(days=2)) == []
    with pytest.raises(ValueError, match="indexed by time"):
        list(no_scans.activity(Status.COMPLIANT, base, base))


def test_long_reads_report_progress_on_stderr(ledger_table: Any) -> None:
    ledger = Ledger(ledger_table, page_size=2)
    now = datetime.now(UTC)
    for i in range(5):
        _write(ledger, account=ACCOUNT, region=REGION, resource=f"vpce-0000000000000{i:04d}",
               rule="gateway-endpoint-route-tables", status=Status.FAILED, when=now)
    stream = io.StringIO()
    rows = report.findings(ledger, [Status.FAILED], progress=lambda label: report.Progress(label, stream))
    assert len(rows) == 5, "every page read"
    lines = stream.getvalue().splitlines()
    assert lines and lines[-1].startswith("reading current failed: 5 items"), lines


def test_command_line_prints_json_to_stdout(invoke: Invoke, world: SpineWorld, ledger_table: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()))
    capsys.readouterr()  # the handler's own log lines
    common = ["--table", TABLE, "--region", REGION, "--format", "json"]
    assert report.main([*common, "remediations", "--since", "1h"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert {(r["resource_id"], r["rule_id"]) for r in fixed} >= {
        (world.ids["s3_endpoint"], "endpoint-policy-org-confined"),
        (world.ids["s3_endpoint"], "gateway-endpoint-route-tables")}
    assert report.main([*common, "findings", "--status", "remediated", "--summary"]) == 0
    assert sum(r["count"] for r in json.loads(capsys.readouterr().out)["summary"]) == 2
    assert report.main([*common, "history", world.ids["s3_endpoint"], "--account", ACCOUNT]) == 0
    assert {r["status"] for r in json.loads(capsys.readouterr().out)} == {"remediated"}
    assert report.main([*common, "remediations", "--since", "yesterday"]) == 2
    assert "not a time" in capsys.readouterr().err


def test_time_arguments() -> None:
    now = datetime(2025, 3, 11, 12, 0, tzinfo=UTC)
    assert report.parse_time("now", now=now) == now
    assert report.parse_time("90m", now=now) == now - timedelta(minutes=90)
    assert report.parse_time("7d", now=now) == now - timedelta(days=7)
    assert report.parse_time("2025-03-01", now=now) == datetime(2025, 3, 1, tzinfo=UTC)
    assert report.parse_time("2025-03-01T10:00:00+02:00", now=now) == datetime(2025, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(report.ReportError):
        report.parse_time("soon", now=now)
    with pytest.raises(report.ReportError):
        report.statuses_from("open,bogus")


def test_checks_show_what_sweeps_found_unchanged_and_when_a_resource_was_last_checked(
        ec2: Any, org_id: str, no_scans: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    from devkit.seed import confined_policy, seed_vpc
    from vpce_guard import pipeline
    from vpce_guard.config import Settings
    from vpce_guard.models import Targets

    world = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True)
    rt = pipeline.Runtime(Settings(ledger_table=TABLE))
    for _ in range(2):  # the first sweep writes history (all new); the second finds everything unchanged
        pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True), Trigger(source="sweep"))
    endpoint = world.ids["s3_endpoint"]
    [row] = report.checks(no_scans, ACCOUNT, REGION, resource_id=endpoint)
    assert row["resource"] == "endpoint-policy-org-confined compliant; gateway-endpoint-route-tables compliant"
    assert row["statuses"].startswith("compliant ") and row["checked"] > 2
    assert report.checks(no_scans, ACCOUNT, REGION, resource_id="vpce-00000000000000000") == []

    common = ["--table", TABLE, "--region", REGION, "--format", "json"]
    assert report.main([*common, "checks", "--account", ACCOUNT, "--resource", endpoint]) == 0
    assert [r["time"] for r in json.loads(capsys.readouterr().out)] == [row["time"]]


def test_findings_export_as_asff_and_ocsf_valid_against_their_schemas(
        invoke: Invoke, world: SpineWorld, ledger_table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """What the real handler recorded, exported offline: every finding valid, with what would change."""
    from jsonschema import Draft202012Validator

    from tests.support.asff_schema import asff_schema
    from tests.support.ocsf_schema import class_schema
    from vpce_guard import ocsf

    invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run")
    capsys.readouterr()
    common = ["--table", TABLE, "--region", REGION]
    endpoint = world.ids["s3_endpoint"]

    assert report.main([*common, "--format", "asff", "findings"]) == 0
    findings = json.loads(capsys.readouterr().out)
    validator = Draft202012Validator(asff_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert findings and all(not list(validator.iter_errors(f)) for f in findings)
    policy = next(f for f in findings if f["Id"].endswith(f"/endpoint-policy-org-confined/{endpoint}"))
    assert policy["Compliance"]["Status"] == "FAILED"
    # The state item names its history item; the export reads it for the actions (what would change).
    assert policy["Remediation"]["Recommendation"]["Text"].startswith(
        f"vpce-guard would add a Deny statement to the policy of {endpoint}")

    assert report.main([*common, "--format", "ocsf", "findings", "--status", "all"]) == 0
    events = json.loads(capsys.readouterr().out)
    validator = Draft202012Validator(class_schema(ocsf.SCHEMA_VERSION, ocsf.CLASS_UID, ("cloud",)),
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert len(events) > len(findings)  # compliant ones too
    assert all(not list(validator.iter_errors(e)) for e in events)
    assert {e["finding_info"]["uid"] for e in events} >= {f["Id"] for f in findings}

    assert report.main([*common, "--format", "asff", "history", endpoint]) == 2
    assert "exports findings" in capsys.readouterr().err
