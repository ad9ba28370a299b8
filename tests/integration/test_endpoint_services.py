"""Endpoint services (the provider side of PrivateLink) under moto, through the real on-change handler and the
pipeline: who may connect, acceptance, and who asked or connected from outside the organization.

moto simulates service configurations, AcceptanceRequired and ModifyVpcEndpointServicePermissions; the
connection calls it lacks come from devkit/moto_privatelink.py (installed for every test in tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devkit.seed import ServiceWorld, account_ec2, connect, render_event, seed_endpoint_service
from tests.support.botocore_hooks import install
from vpce_guard import pipeline
from vpce_guard.config import Settings
from vpce_guard.ledger import Ledger
from vpce_guard.models import Targets, Trigger

from .conftest import ACCOUNT, REGION, TABLE, WarmHandler

OUTSIDER = "999988887777"
PARTNER = "555566667777"
ALLOWED = "endpoint-service-allowed-principals"
ACCEPTANCE = "endpoint-service-acceptance"
PENDING = "endpoint-service-pending-connections"
ACCEPTED = "endpoint-service-accepted-connections"


@pytest.fixture
def member(org_id: str) -> str:
    """An account of the organization (created in it, as AWS Organizations does)."""
    orgs = boto3.client("organizations", region_name=REGION)
    return orgs.create_account(AccountName="payments", Email="payments@example.com")["CreateAccountStatus"]["AccountId"]


@pytest.fixture
def elbv2(aws_env: None) -> Any:
    return boto3.client("elbv2", region_name=REGION)


def _principals(ec2: Any, service: ServiceWorld) -> set[str]:
    return {p["Principal"] for p in ec2.describe_vpc_endpoint_service_permissions(
        ServiceId=service.ids["service"])["AllowedPrincipals"]}


def _acceptance(ec2: Any, service: ServiceWorld) -> bool:
    return ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[service.ids["service"]])[
        "ServiceConfigurations"][0]["AcceptanceRequired"]


def _by_rule(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in result["results"]:
        out.setdefault(r["rule_id"], []).append(r)
    return out


def _history(ledger_table: Any, service: ServiceWorld, rule: str) -> list[dict[str, Any]]:
    return [i for i in Ledger(ledger_table).history(ACCOUNT, REGION, service.ids["service"])
            if i.get("rule_id") == rule and i.get("record_type", "evaluation") == "evaluation"]



# ------------------------------------------------------------------------------------------- who may connect
def test_a_permissions_event_reports_outsiders_and_turns_acceptance_on_leaving_every_principal(
        ec2: Any, elbv2: Any, member: str, warm: Callable[..., WarmHandler]) -> None:
    service = seed_endpoint_service(ec2, elbv2, REGION, principals=(
        "*", f"arn:aws:iam::{OUTSIDER}:root", f"arn:aws:iam::{member}:root", f"arn:aws:iam::{ACCOUNT}:role/app"))
    before = _principals(ec2, service)

    result = warm()(render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()))

    rules = _by_rule(result)
    assert [r["status"] for r in rules[ALLOWED]] == ["non_compliant"]
    reason = rules[ALLOWED][0]["reason"]
    assert "'*' lets any principal of any account connect" in reason
    assert f"account {OUTSIDER} is not in the organization" in reason
    assert member not in reason and f"{ACCOUNT}:role/app" not in reason
    assert _principals(ec2, service) == before  # detect only by default
    assert [r["status"] for r in rules[ACCEPTANCE]] == ["remediated"]
    assert _acceptance(ec2, service) is True
    assert {r["status"] for r in rules[PENDING] + rules[ACCEPTED]} == {"compliant"}


def test_the_opt_in_fix_removes_exactly_the_outsiders_in_the_same_invocation_one_record_each(
        ec2: Any, elbv2: Any, member: str, warm: Callable[..., WarmHandler], ledger_table: Any) -> None:
    insiders = {f"arn:aws:iam::{member}:root", f"arn:aws:iam::{ACCOUNT}:role/app"}
    outsiders = {"*", f"arn:aws:iam::{OUTSIDER}:root"}
    service = seed_endpoint_service(ec2, elbv2, REGION, principals=tuple(sorted(insiders | outsiders)))

    result = warm(REMOVE_OUTSIDE_PRINCIPALS="true")(
        render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()))

    assert _principals(ec2, service) == insiders
    assert _acceptance(ec2, service) is True
    removed = [r for r in result["results"] if r["rule_id"] == ALLOWED]
    assert [r["status"] for r in removed] == ["remediated", "remediated"]
    records = [r for r in _history(ledger_table, service, ALLOWED) if r["status"] == "remediated"]
    assert len(records) == 2  # one per principal removed
    assert {r["before"]["principal"] for r in records} == outsiders
    for record in records:
        assert record["before"]["allowed"] is True and record["after"]["allowed"] is False
        assert set(record["before"]["allowed_principals"]) == insiders | outsiders
        assert set(record["after"]["allowed_principals"]) == insiders
        assert [a["kind"] for a in record["actions"]] == ["remove_allowed_principal"]


def test_partners_stay_but_still_need_acceptance(ec2: Any, elbv2: Any, member: str,
                                                 warm: Callable[..., WarmHandler]) -> None:
    partner = f"arn:aws:iam::{PARTNER}:root"
    service = seed_endpoint_service(ec2, elbv2, REGION, principals=(partner, f"arn:aws:iam::{member}:root"))

    result = warm(REMOVE_OUTSIDE_PRINCIPALS="true", ENDPOINT_SERVICE_PARTNERS=PARTNER)(
        render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()))

    rules = _by_rule(result)
    assert [r["status"] for r in rules[ALLOWED]] == ["compliant"]
    assert partner in _principals(ec2, service)
    assert [r["status"] for r in rules[ACCEPTANCE]] == ["remediated"]  # a partner asks; the owner decides


def test_accounts_nobody_could_place_are_reported_and_never_removed(
        ec2: Any, elbv2: Any, warm: Callable[..., WarmHandler], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.botocore_hooks import FailTimes, json_error

    service = seed_endpoint_service(ec2, elbv2, REGION, principals=("*", f"arn:aws:iam::{OUTSIDER}:root"))
    handler = warm(REMOVE_OUTSIDE_PRINCIPALS="true")

    install(monkeypatch, "before-send.organizations.DescribeAccount", FailTimes(99, lambda request: json_error(
        request, "AccessDeniedException", "not a delegated administrator")))
    result = handler(render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()))

    allowed = [r for r in result["results"] if r["rule_id"] == ALLOWED]
    assert [r["status"] for r in allowed] == ["remediated"]  # `*` needs no lookup: it is never an insider
    assert "AccessDeniedException" in allowed[0]["reason"] and OUTSIDER in allowed[0]["reason"]
    assert _principals(ec2, service) == {f"arn:aws:iam::{OUTSIDER}:root"}


def test_a_service_deleted_before_the_event_is_read_is_recorded_as_gone(
        ec2: Any, elbv2: Any, warm: Callable[..., WarmHandler]) -> None:
    service = seed_endpoint_service(ec2, elbv2, REGION, principals=("*",))
    ec2.delete_vpc_endpoint_service_configurations(ServiceIds=[service.ids["service"]])

    result = warm()(render_event("modify-vpc-endpoint-service-configuration.json", service.mapping()))

    assert [(r["rule_id"], r["resource_id"], r["status"]) for r in result["results"]] == [
        ("resource-exists", service.ids["service"], "skipped")]


# ------------------------------------------------------------------------------------------- who asked, who is in
def _sweep(**settings: Any) -> pipeline.RunResult:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, **settings))
    return pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True), Trigger(source="sweep"))


def _outcomes(result: pipeline.RunResult, rule: str) -> list[Any]:
    return [o for o in result.outcomes if o.finding.rule_id == rule]


def test_the_sweep_reports_who_asked_from_outside_and_rejects_only_with_the_opt_in(
        ec2: Any, elbv2: Any, member: str, ledger_table: Any) -> None:
    service = seed_endpoint_service(ec2, elbv2, REGION, acceptance_required=True,
                                    principals=("*",))
    stranger = connect(account_ec2(OUTSIDER, REGION), service)
    insider = connect(account_ec2(member, REGION), service, cidr="10.202.0.0/16")

    detected = _sweep()
    (finding,) = [o.finding for o in _outcomes(detected, PENDING)]
    assert finding.status.value == "non_compliant"
    assert f"{stranger} from account {OUTSIDER}" in finding.reason and insider not in finding.reason
    assert {(c["endpoint_id"], c["owner"], c["standing"]) for c in finding.details["pending"]} == {
        (stranger, OUTSIDER, "outsider"), (insider, member, "insider")}
    assert account_ec2(OUTSIDER, REGION).describe_vpc_endpoints(VpcEndpointIds=[stranger])["VpcEndpoints"][0][
        "State"] == "pendingAcceptance"

    fixed = _sweep(reject_outside_connections=True)
    (outcome,) = _outcomes(fixed, PENDING)
    assert outcome.status.value == "remediated"
    assert outcome.before == {"endpoint_id": stranger, "owner": OUTSIDER, "state": "pendingacceptance"}
    assert outcome.after == {"endpoint_id": stranger, "state": "rejected"}
    assert account_ec2(OUTSIDER, REGION).describe_vpc_endpoints(VpcEndpointIds=[stranger])["VpcEndpoints"][0][
        "State"] == "rejected"
    assert account_ec2(member, REGION).describe_vpc_endpoints(VpcEndpointIds=[insider])["VpcEndpoints"][0][
        "State"] == "pendingAcceptance"  # an insider's request is the owner's to decide


def test_an_accepted_connection_from_outside_is_reported_and_never_dropped(
        ec2: Any, elbv2: Any, org_id: str, ledger_table: Any) -> None:
    service = seed_endpoint_service(ec2, elbv2, REGION, acceptance_required=False, principals=("*",))
    stranger = connect(account_ec2(OUTSIDER, REGION), service)

    result = _sweep(reject_outside_connections=True, remove_outside_principals=True)

    (accepted,) = _outcomes(result, ACCEPTED)
    assert accepted.status.value == "non_compliant" and not accepted.finding.actions
    assert f"{stranger} from account {OUTSIDER}" in accepted.reason
    assert account_ec2(OUTSIDER, REGION).describe_vpc_endpoints(VpcEndpointIds=[stranger])["VpcEndpoints"][0][
        "State"] == "available"
    # The principal is removed and acceptance turned on; the live connection stays as it was.
    assert _principals(ec2, service) == set() and _acceptance(ec2, service) is True
    assert {o.status.value for o in _outcomes(result, PENDING)} == {"compliant"}


# ------------------------------------------------------------------------------------------- concurrent edits
def _owner_edits_after_first_read(monkeypatch: pytest.MonkeyPatch, edit: Callable[[], None]) -> list[int]:
    """The owner changes the service right after vpce-guard's first read of who may connect."""
    done: list[int] = []

    def after(**_: Any) -> None:
        if not done:
            done.append(1)
            edit()

    install(monkeypatch, "after-call.ec2.DescribeVpcEndpointServicePermissions", after)
    return done


def test_a_principal_the_owner_adds_meanwhile_survives_the_removal_of_the_outsiders(
        ec2: Any, elbv2: Any, member: str, warm: Callable[..., WarmHandler], monkeypatch: pytest.MonkeyPatch) -> None:
    service = seed_endpoint_service(ec2, elbv2, REGION, principals=("*",))
    handler = warm(REMOVE_OUTSIDE_PRINCIPALS="true")
    added = f"arn:aws:iam::{member}:role/new-consumer"
    edited = _owner_edits_after_first_read(monkeypatch, lambda: ec2.modify_vpc_endpoint_service_permissions(
        ServiceId=service.ids["service"], AddAllowedPrincipals=[added]))

    handler(render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()))

    assert edited and _principals(ec2, service) == {added}  # a delta: only `*` was removed


def test_an_outsider_the_owner_removes_meanwhile_is_not_written_again(
        ec2: Any, elbv2: Any, warm: Callable[..., WarmHandler], ledger_table: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = f"arn:aws:iam::{OUTSIDER}:root"
    service = seed_endpoint_service(ec2, elbv2, REGION, principals=("*", stranger))
    handler = warm(REMOVE_OUTSIDE_PRINCIPALS="true")
    edited = _owner_edits_after_first_read(monkeypatch, lambda: ec2.modify_vpc_endpoint_service_permissions(
        ServiceId=service.ids["service"], RemoveAllowedPrincipals=["*"]))
    removals: list[list[str]] = []
    install(monkeypatch, "provide-client-params.ec2.ModifyVpcEndpointServicePermissions",
            lambda params, **_: removals.append(list(params.get("RemoveAllowedPrincipals", []))))

    result = handler(render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()))

    assert edited and _principals(ec2, service) == set()
    # Re-read right before writing: `*` was already gone, so the fix was planned again on what AWS showed and
    # removed the stranger only (the hook sees vpce-guard's clients, created after it; the owner's predates it).
    assert removals == [[stranger]]
    removed = [r for r in _history(ledger_table, service, ALLOWED) if r["status"] == "remediated"]
    assert [r["before"]["principal"] for r in removed] == [stranger]
    assert {r["status"] for r in result["results"] if r["rule_id"] == ALLOWED} == {"remediated"}
