"""The account-region digest (unit_digest.py): a repeat sweep that finds nothing changed reads no state item back,
and never takes that shortcut when a state item may differ from what it would compare against.

The shortcut is only safe if every state write is counted and a digest is only stored by a sweep that saw the
account-region whole with nobody else writing. Each case below is one way that could go wrong, run through the
real pipeline against moto: another writer between two sweeps, another writer during a sweep, a superseded state
write, a resource gone while its event was lost, a fix, an old digest, and the ledger upgrade.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from devkit.api_calls import count_api_calls
from devkit.seed import confined_policy, seed_vpc
from vpce_guard import ledger as ledger_module
from vpce_guard import pipeline
from vpce_guard.config import Mode, Settings
from vpce_guard.ledger import Ledger
from vpce_guard.models import Finding, Outcome, Status, Targets, Trigger
from vpce_guard.unit_digest import DIGEST_MAX_AGE, DIGEST_SK, unit_pk

from .conftest import ACCOUNT, REGION, TABLE

OPEN = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})


def _sweep(rt: pipeline.Runtime) -> pipeline.RunResult:
    return pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True), Trigger(source="sweep"))


def _ledger_calls(calls: Any) -> Counter[str]:
    return Counter({op: n for (service, op), n in calls.calls.items() if service == "dynamodb"})


def _digest_item(table: Any) -> dict[str, Any]:
    return table.get_item(Key={"pk": unit_pk(ACCOUNT, REGION), "sk": DIGEST_SK}, ConsistentRead=True).get("Item", {})


def _states(table: Any) -> dict[tuple[str, str], tuple[str, str]]:
    ledger = Ledger(table)
    return {(i["resource_id"], i["rule_id"]): (i["status"], i["reason"])
            for status in Status for i in ledger.current(status) if i.get("record_type") == "state"}


def _event_record(resource_id: str, status: Status, *, observed: datetime | None = None) -> list[Any]:
    """What an event's run writes for one endpoint (ledger records through the real writer)."""
    finding = Finding(rule_id="endpoint-policy-org-confined", resource_id=resource_id, resource_type="vpc-endpoint",
                      status=status, reason=f"seen by an event as {status.value}")
    return ledger_module.records_for([Outcome(finding=finding, status=status, reason=finding.reason)],
                                     Trigger(source="event", event_id="e-1", event_name="ModifyVpcEndpoint"),
                                     account=ACCOUNT, region=REGION, ttl_days=30, observed=observed)


@pytest.fixture
def estate(ec2: Any, org_id: str) -> list[Any]:
    """Two VPCs: one all compliant, one whose S3 endpoint keeps the default open policy."""
    return [seed_vpc(ec2, REGION, cidr="10.1.0.0/16", name="ok", s3_policy=confined_policy(org_id),
                     associate_all=True, dns_hostnames=True),
            seed_vpc(ec2, REGION, cidr="10.2.0.0/16", name="open", associate_all=True, dns_hostnames=True)]


def test_a_repeat_sweep_of_an_unchanged_account_region_reads_one_digest_and_writes_one_checks_item(
        estate: list[Any], ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    first = _sweep(rt)
    assert first.digest == "read_back"
    states = _states(ledger_table)
    with count_api_calls() as calls:
        second = _sweep(rt)
    assert second.digest == "vouched"
    assert _ledger_calls(calls) == Counter({"GetItem": 1, "BatchWriteItem": 1}), \
        "no state item read back, no open-findings Query: the digest vouches for both"
    assert [(o.finding.rule_id, o.status) for o in second.outcomes] == [
        (o.finding.rule_id, o.status) for o in first.outcomes]
    assert _states(ledger_table) == states
    # The open dry_run finding is in the checks item, with its reason, and on the activity index.
    [checks] = Ledger(ledger_table).checks(ACCOUNT, REGION)
    endpoint = estate[1].ids["s3_endpoint"]
    assert endpoint in checks["would_fix"]["endpoint-policy-org-confined"]
    since = datetime.now(UTC) - timedelta(minutes=5)
    rows = [r for r in Ledger(ledger_table).activity(Status.DRY_RUN, since, datetime.now(UTC))
            if r["resource_id"] == endpoint and r["rule_id"] == "endpoint-policy-org-confined"]
    assert [r["record_type"] for r in rows] == ["evaluation", "checks"], "first seen (history), then re-checked"
    assert rows[1]["reason"] == rows[0]["reason"] and rows[1]["time"] > rows[0]["time"]


def test_a_state_written_between_two_sweeps_makes_the_next_sweep_read_back(
        estate: list[Any], ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    _sweep(rt)
    version = _digest_item(ledger_table)["version"]
    endpoint = estate[1].ids["s3_endpoint"]
    # An event says the endpoint is compliant (it saw a moment when it was): its state item changes, the estate not.
    Ledger(ledger_table).write(_event_record(endpoint, Status.COMPLIANT))
    assert _digest_item(ledger_table)["version"] == version + 1, "a state write adds one to the version"

    with count_api_calls() as calls:
        result = _sweep(rt)
    assert result.digest == "read_back"
    assert _ledger_calls(calls)["BatchGetItem"] >= 1 and _ledger_calls(calls)["Query"] == 1
    assert _states(ledger_table)[(endpoint, "endpoint-policy-org-confined")][0] == "dry_run", \
        "the sweep compared with the event's state and wrote what it sees"
    assert _sweep(rt).digest == "vouched"


def test_a_state_written_while_the_sweep_runs_keeps_its_digest_from_being_stored(
        estate: list[Any], ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    endpoint = estate[0].ids["s3_endpoint"]
    real_close = Ledger.close_unseen

    def event_meanwhile(self: Ledger, **kwargs: Any) -> Any:
        # After the sweep wrote its states, before it stores its digest: an event records a newer observation.
        Ledger(ledger_table).write(_event_record(endpoint, Status.NON_COMPLIANT))
        return real_close(self, **kwargs)

    Ledger(ledger_table).write(_event_record(endpoint, Status.NON_COMPLIANT))  # the next sweep must read back
    monkeypatch.setattr(Ledger, "close_unseen", event_meanwhile)
    assert _sweep(rt).digest == "read_back"
    monkeypatch.setattr(Ledger, "close_unseen", real_close)
    item = _digest_item(ledger_table)
    assert item["version"] != item.get("digest_version"), "the digest does not vouch for the event's state"

    result = _sweep(rt)
    assert result.digest == "read_back", "so the next sweep reads the event's state back"
    [seen] = [o.status.value for o in result.outcomes
              if (o.finding.resource_id, o.finding.rule_id) == (endpoint, "endpoint-policy-org-confined")]
    assert seen != "non_compliant"
    assert _states(ledger_table)[(endpoint, "endpoint-policy-org-confined")][0] == seen, "and corrects it"
    assert _sweep(rt).digest == "vouched"


def test_a_sweep_whose_state_write_is_superseded_stores_no_digest(
        estate: list[Any], ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    endpoint = estate[0].ids["s3_endpoint"]
    # An event observed the endpoint later than the sweep will: the sweep's write of it is refused.
    Ledger(ledger_table).write(_event_record(endpoint, Status.DRY_RUN,
                                             observed=datetime.now(UTC) + timedelta(hours=1)))
    assert _sweep(rt).digest == "read_back"
    item = _digest_item(ledger_table)
    assert "digest" not in item
    assert _sweep(rt).digest == "read_back"


def test_an_endpoint_deleted_with_its_event_lost_is_closed_by_the_next_sweep(
        ec2: Any, estate: list[Any], ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    assert _sweep(rt).digest == "vouched"
    endpoint = estate[1].ids["s3_endpoint"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    result = _sweep(rt)
    assert result.digest == "read_back"
    status, _ = _states(ledger_table)[(endpoint, "endpoint-policy-org-confined")]
    assert status not in {s.value for s in ledger_module.OPEN_STATUSES}


def test_a_sweep_that_fixes_counts_its_own_writes_and_stores_its_digest(
        estate: list[Any], ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.ENFORCE))
    fixed = _sweep(rt)
    assert any(o.status is Status.REMEDIATED for o in fixed.outcomes)
    item = _digest_item(ledger_table)
    assert item["digest_version"] == item["version"] > 1, "intents and outcomes are its own writes"
    assert _sweep(rt).digest == "read_back", "remediated then compliant: a change"
    assert _sweep(rt).digest == "vouched"


def test_a_digest_older_than_its_maximum_age_is_not_trusted(estate: list[Any], ledger_table: Any) -> None:
    now = [datetime.now(UTC)]
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN), clock=lambda: now[0])
    _sweep(rt)
    now[0] += DIGEST_MAX_AGE - timedelta(minutes=1)
    assert _sweep(rt).digest == "vouched"
    now[0] += timedelta(minutes=2)
    assert _sweep(rt).digest == "read_back"


def test_a_mode_change_changes_the_digest(estate: list[Any], ledger_table: Any) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/test/digest-modes", Type="String", Value=json.dumps({}))
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN,
                                   mode_overrides_parameter="/test/digest-modes"))
    _sweep(rt)
    assert _sweep(rt).digest == "vouched"
    ssm.put_parameter(Name="/test/digest-modes", Type="String", Overwrite=True,
                      Value=json.dumps({"gateway-endpoint-route-tables": "off"}))
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN,
                                   mode_overrides_parameter="/test/digest-modes"))
    assert _sweep(rt).digest == "read_back"


def test_every_transaction_of_a_large_state_write_bumps_the_version_and_fits_dynamodbs_limit(
        ledger_table: Any) -> None:
    records = [r for i in range(250) for r in _event_record(f"vpce-{i:017x}", Status.COMPLIANT)]
    with count_api_calls() as calls:
        report = Ledger(ledger_table).write(records)
    transactions = calls.count("dynamodb", "TransactWriteItems")
    assert transactions == 3  # 250 states, 99 to a transaction beside the digest's bump
    assert report.bumps == Counter({unit_pk(ACCOUNT, REGION): transactions})
    assert _digest_item(ledger_table)["version"] == transactions


def test_the_ledger_upgrade_invalidates_the_digest_of_the_account_regions_it_indexes(
        estate: list[Any], ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    # An open state item as 0.1.0 wrote it: not on the open-by-place index.
    [item] = [i for i in Ledger(ledger_table).current("dry_run")
              if i["resource_id"] == estate[1].ids["s3_endpoint"]]
    ledger_table.update_item(Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="REMOVE open_place, open_key")
    assert Ledger(ledger_table).index_open_states()["indexed"] == 1
    assert _sweep(rt).digest == "read_back"


def test_an_empty_account_region_stores_its_digest_without_any_state_write(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    assert _sweep(rt).digest == "read_back"
    item = _digest_item(ledger_table)
    assert item["digest_version"] == 0 and "version" not in item, "stored on the condition that none was written"
    with count_api_calls() as calls:
        assert _sweep(rt).digest == "vouched"
    assert _ledger_calls(calls) == Counter({"GetItem": 1})


def test_an_open_finding_newer_than_the_sweep_keeps_its_digest_from_being_stored(
        estate: list[Any], ledger_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    _sweep(rt)
    assert _sweep(rt).digest == "vouched"
    real_unit = Ledger.unit

    def event_meanwhile(self: Ledger, account: str, region: str) -> Any:
        # After the sweep began and read AWS, before it reads the digest: an event records an open finding on an
        # endpoint the sweep did not see. Its version bump is in what the sweep reads; the sweep leaves the finding
        # open (written after it began: not its to close), so it must not vouch that nothing else is open.
        Ledger(ledger_table).write(_event_record("vpce-0fromaneventxxxxx", Status.NON_COMPLIANT))
        return real_unit(self, account, region)

    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.create_route_table(VpcId=estate[0].ids["vpc"])  # a change: this sweep reads back
    monkeypatch.setattr(Ledger, "unit", event_meanwhile)
    assert _sweep(rt).digest == "read_back"
    monkeypatch.setattr(Ledger, "unit", real_unit)
    item = _digest_item(ledger_table)
    assert item["version"] != item["digest_version"], "no digest stored while a finding it did not see is open"
    assert _states(ledger_table)[("vpce-0fromaneventxxxxx", "endpoint-policy-org-confined")][0] == "non_compliant"
    # The next sweep began after it: it closes the finding it does not see, and vouches again after that.
    assert _sweep(rt).digest == "read_back"
    assert _states(ledger_table)[("vpce-0fromaneventxxxxx", "endpoint-policy-org-confined")][0] == "not_applicable"
    assert _sweep(rt).digest == "vouched"
