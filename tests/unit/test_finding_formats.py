"""What leaves vpce-guard for Security Hub (ASFF), SIEMs (OCSF), the bus (finding events) and people
(notifications), built from ledger records: well-formed against the published schemas for every status, one
stable finding per (account, region, rule, resource), and the lifecycle the issue asks for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.support.asff_schema import asff_schema
from tests.support.ocsf_schema import class_schema
from vpce_guard import asff, finding_events, ledger, notifications, ocsf
from vpce_guard.finding_view import FindingView, partition_of
from vpce_guard.lifecycle import EventKind, event_kind, lifecycle, needs_human, publishes
from vpce_guard.models import Action, Finding, Outcome, Status, Trigger
from vpce_guard.rules import SEVERITIES, all_rules

ACCOUNT, REGION = "111122223333", "eu-west-1"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY_FIX = Action(kind="set_endpoint_policy", resource_id="vpce-0abc", params={"policy_document": "{}"},
                    before={"policy_document": "open"}, after={"policy_document": "confined"})
EXEMPTION = {"scope": "resource", "target": "vpce-0abc", "rule_id": "*", "reason": "vendor appliance needs it",
             "owner": "netops@example.com", "expires": "2026-06-30", "tag_request": False}

ASFF = Draft202012Validator(asff_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
OCSF = Draft202012Validator(class_schema(ocsf.SCHEMA_VERSION, ocsf.CLASS_UID, ("cloud",)),
                            format_checker=Draft202012Validator.FORMAT_CHECKER)


def record(status: Status, *, rule: str = "endpoint-policy-org-confined", resource: str = "vpce-0abc",
           resource_type: str = "vpc-endpoint", reason: str = "the policy allows principals outside the organization",
           actions: tuple[Action, ...] = (POLICY_FIX,), error: str | None = None,
           details: dict[str, Any] | None = None, region: str = REGION, when: datetime = NOW,
           trigger: Trigger | None = None) -> ledger.LedgerRecord:
    finding = Finding(rule_id=rule, resource_id=resource, resource_type=resource_type, vpc_id="vpc-0def",
                      status=Status.NON_COMPLIANT, reason=reason, actions=actions, details=details or {})
    outcome = Outcome(finding=finding, status=status, reason=reason, actions=actions, error=error)
    [rec] = ledger.records_for([outcome], trigger or Trigger(source="event", event_name="ModifyVpcEndpoint"),
                               account=ACCOUNT, region=region, ttl_days=30, now=when)
    return rec


def view(status: Status, previous: Status | str | None = None, **kw: Any) -> FindingView:
    return FindingView.from_record(record(status, **kw), previous)


def errors(validator: Draft202012Validator, instance: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


# ------------------------------------------------------------------------------------------------ lifecycle
@pytest.mark.parametrize(("previous", "current", "published"), [
    (None, Status.NON_COMPLIANT, True),          # a new finding
    (None, Status.DRY_RUN, True),
    (None, Status.EXEMPT, True),
    (None, Status.COMPLIANT, False),             # first seen compliant: nothing to tell Security Hub
    (None, Status.NOT_APPLICABLE, False),
    (None, Status.SKIPPED, False),
    (Status.NON_COMPLIANT, Status.REMEDIATED, True),
    (Status.DRY_RUN, Status.COMPLIANT, True),
    (Status.DRY_RUN, Status.DRY_RUN, False),     # unchanged
    (Status.NON_COMPLIANT, Status.DRY_RUN, False),  # still open
    (Status.FAILED, Status.FLAPPING, False),
    (Status.REMEDIATED, Status.COMPLIANT, False),   # still passed
    (Status.DRY_RUN, Status.EXEMPT, True),
    (Status.EXEMPT, Status.NON_COMPLIANT, True),
    (Status.DRY_RUN, Status.NOT_APPLICABLE, True),  # the resource is gone: archive
    (Status.NOT_APPLICABLE, Status.DRY_RUN, True),  # back again
    (Status.NOT_APPLICABLE, Status.COMPLIANT, False),
    (Status.DRY_RUN, Status.SKIPPED, False),        # skipped judges nothing
])
def test_security_hub_hears_only_of_lifecycle_changes(previous: Status | None, current: Status,
                                                      published: bool) -> None:
    assert publishes(previous, current) is published


@pytest.mark.parametrize(("previous", "current", "kind"), [
    (None, Status.NON_COMPLIANT, EventKind.OPENED),
    (Status.COMPLIANT, Status.DRY_RUN, EventKind.OPENED),
    (Status.NON_COMPLIANT, Status.DRY_RUN, None),
    (Status.DRY_RUN, Status.REMEDIATED, EventKind.REMEDIATED),
    (None, Status.REMEDIATED, EventKind.REMEDIATED),
    (Status.NON_COMPLIANT, Status.FAILED, EventKind.FAILED),
    (Status.FAILED, Status.FAILED, None),
    (Status.REMEDIATED, Status.FLAPPING, EventKind.FLAPPING),
    (Status.DRY_RUN, "conflict", EventKind.CONFLICT),
    (Status.DRY_RUN, Status.EXEMPT, EventKind.EXEMPTED),
    (Status.DRY_RUN, Status.COMPLIANT, EventKind.CLOSED),
    (Status.EXEMPT, Status.NOT_APPLICABLE, EventKind.CLOSED),
    (Status.REMEDIATED, Status.COMPLIANT, None),
    (None, Status.COMPLIANT, None),
    (Status.NON_COMPLIANT, Status.PENDING, None),
])
def test_each_status_change_maps_to_one_event_kind(previous: Status | None, current: Status | str,
                                                   kind: EventKind | None) -> None:
    assert event_kind(previous, current) == kind


def test_people_hear_of_failed_flapping_and_conflicts_once_when_they_start() -> None:
    assert needs_human(Status.DRY_RUN, Status.FAILED) and needs_human(None, Status.FLAPPING)
    assert needs_human(Status.NON_COMPLIANT, "conflict")
    assert not needs_human(Status.FAILED, Status.FAILED)
    assert not needs_human(Status.NON_COMPLIANT, Status.REMEDIATED)
    assert not needs_human(None, Status.DRY_RUN)


def test_every_status_has_a_lifecycle_or_judges_nothing() -> None:
    judged_nothing = {Status.SKIPPED, Status.REJECTED}
    for status in Status:
        assert (lifecycle(status) is None) == (status in judged_nothing), status


# ------------------------------------------------------------------------------------------------ ASFF
@pytest.mark.parametrize("status", [s for s in Status if lifecycle(s) is not None])
def test_every_status_gives_an_asff_finding_valid_against_the_security_hub_model(status: Status) -> None:
    finding = asff.to_asff(view(status, Status.NON_COMPLIANT))
    assert errors(ASFF, finding) == []


def test_the_asff_schema_check_bites() -> None:
    good = asff.to_asff(view(Status.DRY_RUN))
    broken = {k: v for k, v in good.items() if k != "Title"}
    broken["Types"] = ["Made Up Namespace/x"]
    broken["Compliance"] = {"Status": "BROKEN"}
    broken["CreatedAt"] = "yesterday"
    broken["ProductFields"] = {f"k{i}": "v" for i in range(51)}
    found = "\n".join(errors(ASFF, broken))
    for expected in ("'Title' is a required property", "Types/0", "Compliance/Status", "CreatedAt",
                     "ProductFields"):
        assert expected in found, found


def test_asff_finding_carries_every_required_field_and_the_ledger_key() -> None:
    rec = record(Status.DRY_RUN)
    f = asff.to_asff(FindingView.from_record(rec, None))
    assert f["SchemaVersion"] == "2018-10-08"
    assert f["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert f["GeneratorId"] == "endpoint-policy-org-confined" and f["AwsAccountId"] == ACCOUNT
    assert all(t.startswith("Software and Configuration Checks/") for t in f["Types"])
    assert f["CreatedAt"] == f["UpdatedAt"] == f["FirstObservedAt"] == f["LastObservedAt"] == rec.time
    assert f["Severity"]["Label"] == "HIGH" == f["FindingProviderFields"]["Severity"]["Label"]
    assert "outside the organization" in f["Description"]
    [resource] = f["Resources"]
    assert resource["Id"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-endpoint/vpce-0abc"
    assert resource["Region"] == REGION and resource["Type"] == "Other"
    assert f["ProductFields"]["vpce-guard/LedgerKey"] == f"{rec.pk} {rec.sk}"


def test_the_finding_id_is_stable_per_account_region_rule_and_resource() -> None:
    first = asff.to_asff(view(Status.DRY_RUN))["Id"]
    later = asff.to_asff(view(Status.REMEDIATED, Status.DRY_RUN, when=NOW + timedelta(hours=3)))["Id"]
    assert first == later
    others = {asff.to_asff(view(Status.DRY_RUN, rule="gateway-endpoint-route-tables"))["Id"],
              asff.to_asff(view(Status.DRY_RUN, resource="vpce-0other"))["Id"],
              asff.to_asff(view(Status.DRY_RUN, region="us-east-1"))["Id"]}
    assert first not in others and len(others) == 3
    long = asff.finding_id(ACCOUNT, REGION, "r" * 300, "x" * 300)
    assert len(long) <= asff.ID_MAX and long != asff.finding_id(ACCOUNT, REGION, "r" * 300, "x" * 299 + "y")


@pytest.mark.parametrize(("status", "compliance", "workflow", "record_state"), [
    (Status.NON_COMPLIANT, "FAILED", "NEW", "ACTIVE"),
    (Status.DRY_RUN, "FAILED", "NEW", "ACTIVE"),
    (Status.FAILED, "FAILED", "NEW", "ACTIVE"),
    (Status.FLAPPING, "FAILED", "NEW", "ACTIVE"),
    (Status.REMEDIATED, "PASSED", "RESOLVED", "ACTIVE"),
    (Status.COMPLIANT, "PASSED", "RESOLVED", "ACTIVE"),
    (Status.EXEMPT, "FAILED", "SUPPRESSED", "ACTIVE"),
    (Status.NOT_APPLICABLE, "NOT_AVAILABLE", "RESOLVED", "ARCHIVED"),
])
def test_lifecycle_in_asff(status: Status, compliance: str, workflow: str, record_state: str) -> None:
    f = asff.to_asff(view(status, Status.NON_COMPLIANT))
    assert (f["Compliance"]["Status"], f["Workflow"]["Status"], f["RecordState"]) == (
        compliance, workflow, record_state)


def test_a_dry_run_finding_says_what_would_change_and_a_fixed_one_what_changed() -> None:
    dry = asff.to_asff(view(Status.DRY_RUN))["Remediation"]["Recommendation"]["Text"]
    assert dry.startswith("vpce-guard would add a Deny statement to the policy of vpce-0abc")
    assert "nothing was changed" in dry
    fixed = asff.to_asff(view(Status.REMEDIATED, Status.DRY_RUN))["Remediation"]["Recommendation"]["Text"]
    assert fixed.startswith("Fixed by vpce-guard: add a Deny statement")
    assert asff.to_asff(view(Status.REMEDIATED))["Severity"]["Label"] == "INFORMATIONAL"


def test_an_exempt_finding_is_suppressed_with_the_exemptions_reason() -> None:
    f = asff.to_asff(view(Status.EXEMPT, Status.DRY_RUN, details={"exemption": EXEMPTION}))
    assert f["Workflow"]["Status"] == "SUPPRESSED"
    assert f["ProductFields"]["vpce-guard/ExemptionReason"] == "vendor appliance needs it"
    assert "vendor appliance needs it" in f["Remediation"]["Recommendation"]["Text"]


def test_an_unfixable_finding_says_why_no_fix_is_made() -> None:
    v = view(Status.FAILED, actions=(), error="cannot fix safely: the policy would exceed 20,480 characters",
             details={"unfixable": "the policy would exceed 20,480 characters"})
    text = asff.to_asff(v)["Remediation"]["Recommendation"]["Text"]
    assert text.startswith("No safe automatic fix (the policy would exceed 20,480 characters)")


def test_long_texts_are_cut_to_asff_limits_and_still_valid() -> None:
    f = asff.to_asff(view(Status.FAILED, reason="x" * 5000, error="y" * 5000))
    assert len(f["Description"]) == asff.DESCRIPTION_MAX and len(f["Remediation"]["Recommendation"]["Text"]) <= 512
    assert errors(ASFF, f) == []


def test_resources_carry_their_partition_and_asff_type() -> None:
    v = view(Status.DRY_RUN, resource="vpc-0def", resource_type="vpc", region="cn-north-1",
             rule="gateway-endpoint-dns-support")
    [resource] = asff.to_asff(v)["Resources"]
    assert resource["Type"] == "AwsEc2Vpc" and resource["Partition"] == "aws-cn"
    assert resource["Id"] == f"arn:aws-cn:ec2:cn-north-1:{ACCOUNT}:vpc/vpc-0def"
    assert asff.to_asff(v)["ProductArn"].startswith("arn:aws-cn:securityhub:cn-north-1:")
    assert partition_of("us-gov-west-1") == "aws-us-gov"


def test_batches_hold_at_most_one_hundred_findings() -> None:
    findings = [{"Id": str(i)} for i in range(250)]
    sizes = [len(b) for b in asff.batches(findings)]
    assert sizes == [100, 100, 50]
    with pytest.raises(ValueError, match=r"1\.\.100"):
        list(asff.batches(findings, 101))


def test_a_run_that_changed_one_finding_twice_sends_where_it_ended() -> None:
    intent = asff.to_asff(view(Status.PENDING, Status.NON_COMPLIANT))
    outcome = asff.to_asff(view(Status.REMEDIATED, Status.PENDING, when=NOW + timedelta(seconds=1)))
    [kept] = asff.latest_per_finding([outcome, intent])
    assert kept["Compliance"]["Status"] == "PASSED"


# ------------------------------------------------------------------------------------------------ severity
def test_every_registered_rule_has_a_severity_security_hub_knows() -> None:
    rules = all_rules()
    assert rules
    for rule in rules:
        assert rule.severity in SEVERITIES, rule.id
    assert {r.id: r.severity for r in rules}["endpoint-policy-org-confined"] == "HIGH"


# ------------------------------------------------------------------------------------------------ OCSF
@pytest.mark.parametrize("status", [s for s in Status if lifecycle(s) is not None])
def test_every_status_gives_an_ocsf_compliance_finding_valid_against_the_published_schema(status: Status) -> None:
    event = ocsf.to_ocsf(view(status, Status.NON_COMPLIANT, details={"exemption": EXEMPTION}))
    assert errors(OCSF, event) == []
    assert event["class_uid"] == 2003 and event["category_uid"] == 2
    assert event["type_uid"] == 200300 + event["activity_id"]


def test_the_ocsf_schema_check_bites() -> None:
    event = ocsf.to_ocsf(view(Status.DRY_RUN))
    broken = {**event, "class_uid": 2004, "severity_id": 42, "compliance": {**event["compliance"], "status_id": 7}}
    del broken["finding_info"]
    found = "\n".join(errors(OCSF, broken))
    for expected in ("'finding_info' is a required property", "class_uid", "severity_id", "compliance/status_id"):
        assert expected in found, found


def test_ocsf_and_asff_name_the_same_finding_and_lifecycle() -> None:
    v = view(Status.DRY_RUN)
    event = ocsf.to_ocsf(v)
    assert event["finding_info"]["uid"] == asff.to_asff(v)["Id"]
    assert (event["activity_name"], event["status"], event["compliance"]["status"]) == ("Create", "New", "Fail")
    assert event["time"] == int(NOW.timestamp() * 1000)
    assert event["cloud"]["account"]["uid"] == ACCOUNT and event["cloud"]["region"] == REGION
    closed = ocsf.to_ocsf(view(Status.REMEDIATED, Status.DRY_RUN))
    assert (closed["activity_name"], closed["status"], closed["compliance"]["status"]) == ("Close", "Resolved", "Pass")
    gone = ocsf.to_ocsf(view(Status.NOT_APPLICABLE, Status.DRY_RUN))
    assert gone["status"] == "Archived"
    assert ocsf.to_ocsf(view(Status.EXEMPT, Status.DRY_RUN))["status"] == "Suppressed"


# ------------------------------------------------------------------------------------------------ events
def test_a_finding_event_carries_the_ledger_records_essentials() -> None:
    e = finding_events.entry(view(Status.REMEDIATED, Status.DRY_RUN), EventKind.REMEDIATED, "vpce-guard-hub")
    assert (e["Source"], e["DetailType"], e["EventBusName"]) == ("vpce-guard", finding_events.DETAIL_TYPE,
                                                                 "vpce-guard-hub")
    d = json.loads(e["Detail"])
    assert d["change"] == "remediated" and d["status"] == "remediated" and d["previous_status"] == "dry_run"
    assert d["finding_id"] == f"vpce-guard/{ACCOUNT}/{REGION}/endpoint-policy-org-confined/vpce-0abc"
    assert d["resource_arn"] == e["Resources"][0] and d["ledger"]["pk"].startswith("RES#")
    assert e["Time"] == NOW


def test_put_events_batches_hold_at_most_ten_entries_and_256_kb() -> None:
    small = [finding_events.entry(view(Status.DRY_RUN), EventKind.OPENED, "bus")] * 23
    assert [len(b) for b in finding_events.batches(small)] == [10, 10, 3]
    big = {**small[0], "Detail": json.dumps({"x": "y" * 100_000})}
    batches = list(finding_events.batches([big] * 5))
    assert all(sum(finding_events.entry_size(e) for e in b) <= finding_events.MAX_REQUEST_BYTES for b in batches)
    assert sum(len(b) for b in batches) == 5


# ------------------------------------------------------------------------------------------------ notifications
def test_one_message_lists_what_needs_a_human_and_says_unfixable() -> None:
    unfixable = view(Status.FAILED, Status.NON_COMPLIANT, actions=(), error="cannot fix safely: policy too large",
                     details={"unfixable": "policy too large"})
    flapping = view(Status.FLAPPING, Status.REMEDIATED, resource="vpce-0other")
    note = notifications.findings_message([(unfixable, EventKind.FAILED), (flapping, EventKind.FLAPPING)])
    assert note is not None
    assert note.subject.isascii() and len(note.subject) <= notifications.SUBJECT_MAX
    assert "2 finding(s)" in note.subject and "unfixable" in note.subject and "flapping" in note.subject
    assert "UNFIXABLE [HIGH]" in note.message and "policy too large" in note.message
    assert "vpce-0other" in note.message and note.attributes == {"kind": "findings", "severity": "HIGH"}
    assert notifications.findings_message([]) is None


def test_a_long_list_is_cut_with_a_count_of_the_rest() -> None:
    items = [(view(Status.FAILED, resource=f"vpce-{i:04d}"), EventKind.FAILED) for i in range(60)]
    note = notifications.findings_message(items)
    assert note is not None and "... and 10 more" in note.message
