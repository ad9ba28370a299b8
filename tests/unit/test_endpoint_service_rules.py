"""The endpoint-service rules as pure functions: snapshot in, findings (and the fixes they propose) out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vpce_guard.config import Perimeter
from vpce_guard.models import AllowedPrincipal, Endpoint, EndpointConnection, ServiceConfiguration, Snapshot, Status
from vpce_guard.rules import RuleContext, all_rules
from vpce_guard.rules import endpoint_policy as policy_rule
from vpce_guard.rules._service_principals import (
    INSIDER,
    OUTSIDER,
    PARTNER,
    SERVICE,
    UNVERIFIED,
    accounts_to_look_up,
    classify,
)

ACCOUNT = "123456789012"
MEMBER = "210987654321"
OUTSIDE = "999988887777"
PARTNER_ACCT = "555566667777"
ORG = "o-aaaaaaaaaa"
OTHER_ORG = "o-cccccccccc"
SVC = "vpce-svc-0a1b2c3d4e5f60001"

all_rules()  # registration
RULES = {r.id: r for r in all_rules()}


def _ctx(**kw: Any) -> RuleContext:
    return RuleContext(allowed_org_ids=frozenset({ORG}), **kw)


def _service(principals: tuple[str, ...] = (), *, acceptance: bool = False, state: str = "available",
             connections: tuple[EndpointConnection, ...] | None = (), types: dict[str, str] | None = None,
             read: bool = True) -> ServiceConfiguration:
    allowed = tuple(AllowedPrincipal(principal=p, principal_type=(types or {}).get(p)) for p in principals)
    return ServiceConfiguration(id=SVC, name=f"com.amazonaws.vpce.us-east-1.{SVC}", state=state,
                                acceptance_required=acceptance, allowed_principals=allowed if read else None,
                                connections=connections)


def _snap(service: ServiceConfiguration, orgs: dict[str, str | None] | None = None,
          unread: str | None = None) -> Snapshot:
    return Snapshot(account=ACCOUNT, region="us-east-1", service_configurations={service.id: service},
                    account_orgs=orgs if orgs is not None else {MEMBER: ORG, OUTSIDE: None},
                    account_orgs_unread=unread)


def _run(rule_id: str, snap: Snapshot, ctx: RuleContext | None = None) -> Any:
    (finding,) = RULES[rule_id].evaluate(snap, ctx or _ctx())
    return finding


def _conn(endpoint: str, owner: str | None, state: str) -> EndpointConnection:
    return EndpointConnection(endpoint_id=endpoint, owner=owner, state=state)


# ------------------------------------------------------------------------------------------- who is who
@pytest.mark.parametrize(("principal", "kind"), [
    ("*", OUTSIDER),
    (f"arn:aws:iam::{OUTSIDE}:root", OUTSIDER),
    (f"arn:aws:iam::{OUTSIDE}:role/reader", OUTSIDER),
    (f"arn:aws:iam::{MEMBER}:root", INSIDER),
    (f"arn:aws:iam::{MEMBER}:user/ops", INSIDER),
    (f"arn:aws:iam::{ACCOUNT}:role/app", INSIDER),  # the service's own account
    (f"arn:aws:iam::{PARTNER_ACCT}:root", PARTNER),
    (f"arn:aws:iam::{PARTNER_ACCT}:role/any", PARTNER),  # a partner account covers its principals
    ("elasticloadbalancing.amazonaws.com", SERVICE),
    (f"arn:aws:organizations::{ACCOUNT}:organization/{ORG}", INSIDER),
    (f"arn:aws:organizations::{ACCOUNT}:ou/{ORG}/ou-ab12-cdef3456", INSIDER),
    (f"arn:aws:organizations::111122223333:organization/{OTHER_ORG}", OUTSIDER),
    ("arn:aws:iam::444455556666:root", UNVERIFIED),  # nobody looked this account up
    ("arn:aws:sts::*:assumed-role/x", UNVERIFIED),  # a form vpce-guard does not recognise
])
def test_each_principal_is_placed(principal: str, kind: str) -> None:
    snap = _snap(_service())
    assert classify(principal, None, snap, _ctx(endpoint_service_partners=(PARTNER_ACCT,))).kind == kind


def test_a_partner_named_by_one_principal_covers_only_that_principal() -> None:
    ctx = _ctx(endpoint_service_partners=(f"arn:aws:iam::{PARTNER_ACCT}:role/integration",))
    snap = _snap(_service(), orgs={PARTNER_ACCT: None})
    assert classify(f"arn:aws:iam::{PARTNER_ACCT}:role/integration", None, snap, ctx).kind == PARTNER
    assert classify(f"arn:aws:iam::{PARTNER_ACCT}:root", None, snap, ctx).kind == OUTSIDER


def test_principal_type_all_is_star_and_service_type_is_a_service() -> None:
    snap = _snap(_service())
    assert classify("anything", "All", snap, _ctx()).kind == OUTSIDER
    assert classify("vpc-lattice.amazonaws.com", "Service", snap, _ctx()).kind == SERVICE


def test_only_accounts_the_configuration_cannot_place_are_looked_up() -> None:
    service = _service((f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{MEMBER}:root", f"arn:aws:iam::{OUTSIDE}:root",
                        f"arn:aws:iam::{PARTNER_ACCT}:root", "*"),
                       connections=(_conn("vpce-0a", "444455556666", "pendingacceptance"),))
    ctx = _ctx(org_account_ids=frozenset({MEMBER}), endpoint_service_partners=(PARTNER_ACCT,))
    assert accounts_to_look_up(_snap(service, orgs={}), ctx) == {OUTSIDE, "444455556666"}


# ------------------------------------------------------------------------------------------- allowed principals
ALLOWED = "endpoint-service-allowed-principals"


def test_outsiders_are_reported_and_removed_only_with_the_opt_in_one_action_each() -> None:
    principals = ("*", f"arn:aws:iam::{OUTSIDE}:root", f"arn:aws:iam::{MEMBER}:root")
    detected = _run(ALLOWED, _snap(_service(principals)))
    assert detected.status is Status.NON_COMPLIANT and detected.actions == ()
    assert detected.details["outside_principals"] == ["*", f"arn:aws:iam::{OUTSIDE}:root"]
    assert detected.resource_type == "vpc-endpoint-service" and detected.vpc_id is None

    fixing = _run(ALLOWED, _snap(_service(principals)), _ctx(remove_outside_principals=True))
    assert [(a.kind, a.params) for a in fixing.actions] == [
        ("remove_allowed_principal", {"principal": "*"}),
        ("remove_allowed_principal", {"principal": f"arn:aws:iam::{OUTSIDE}:root"})]
    assert all(a.before["allowed_principals"] == sorted(principals) and a.after["allowed"] is False
               for a in fixing.actions)


def test_principals_nobody_could_place_are_reported_never_removed() -> None:
    snap = _snap(_service(("*", f"arn:aws:iam::{OUTSIDE}:root")), orgs={},
                 unread="cannot ask AWS Organizations (AccessDeniedException)")
    finding = _run(ALLOWED, snap, _ctx(remove_outside_principals=True))
    assert finding.status is Status.NON_COMPLIANT
    assert [a.params["principal"] for a in finding.actions] == ["*"]
    assert finding.details["unverified_principals"] == [f"arn:aws:iam::{OUTSIDE}:root"]
    assert "AccessDeniedException" in finding.reason


def test_insiders_partners_and_services_are_compliant() -> None:
    service = _service((f"arn:aws:iam::{MEMBER}:root", f"arn:aws:iam::{PARTNER_ACCT}:root",
                        "elasticloadbalancing.amazonaws.com"))
    finding = _run(ALLOWED, _snap(service), _ctx(endpoint_service_partners=(PARTNER_ACCT,)))
    assert finding.status is Status.COMPLIANT and "named partners (1)" in finding.reason


def test_a_deleted_service_is_not_applicable_and_unread_permissions_are_skipped() -> None:
    assert _run(ALLOWED, _snap(_service(("*",), state="deleted"))).status is Status.NOT_APPLICABLE
    assert _run(ALLOWED, _snap(_service(read=False))).status is Status.SKIPPED


# ------------------------------------------------------------------------------------------- acceptance
ACCEPTANCE = "endpoint-service-acceptance"


@pytest.mark.parametrize(("principals", "acceptance", "status"), [
    ((f"arn:aws:iam::{MEMBER}:root",), False, Status.COMPLIANT),  # only insiders: the owner's choice
    (("*",), True, Status.COMPLIANT),
    (("*",), False, Status.NON_COMPLIANT),
    ((f"arn:aws:iam::{PARTNER_ACCT}:root",), False, Status.NON_COMPLIANT),  # partners ask; the owner decides
    (("arn:aws:iam::444455556666:root",), False, Status.NON_COMPLIANT),  # unplaced: not proven inside
    ((), False, Status.COMPLIANT),
])
def test_acceptance_is_required_when_anyone_outside_may_connect(principals: tuple[str, ...], acceptance: bool,
                                                                 status: Status) -> None:
    finding = _run(ACCEPTANCE, _snap(_service(principals, acceptance=acceptance)),
                   _ctx(endpoint_service_partners=(PARTNER_ACCT,)))
    assert finding.status is status
    if status is Status.NON_COMPLIANT:
        assert [(a.kind, a.params) for a in finding.actions] == [("require_acceptance",
                                                                   {"acceptance_required": True})]


def test_acceptance_is_the_only_endpoint_service_fix_on_by_default() -> None:
    services = {r.id: r.fix_by_default for r in all_rules() if r.id.startswith("endpoint-service-")}
    assert services == {ACCEPTANCE: True, ALLOWED: False, "endpoint-service-pending-connections": False,
                        "endpoint-service-accepted-connections": False}


# ------------------------------------------------------------------------------------------- connections
PENDING = "endpoint-service-pending-connections"
ACCEPTED = "endpoint-service-accepted-connections"
CONNECTIONS = (
    _conn("vpce-0stranger", OUTSIDE, "pendingacceptance"),
    _conn("vpce-0insider", MEMBER, "pendingacceptance"),
    _conn("vpce-0partner", PARTNER_ACCT, "pendingacceptance"),
    _conn("vpce-0unknown", "444455556666", "pendingacceptance"),
    _conn("vpce-0live", OUTSIDE, "available"),
    _conn("vpce-0gone", OUTSIDE, "rejected"),
)


def test_pending_requests_from_outside_are_reported_with_who_asked_and_rejected_only_when_opted_in() -> None:
    ctx = _ctx(endpoint_service_partners=(PARTNER_ACCT,))
    finding = _run(PENDING, _snap(_service(("*",), acceptance=True, connections=CONNECTIONS)), ctx)
    assert finding.status is Status.NON_COMPLIANT and finding.actions == ()
    assert f"vpce-0stranger from account {OUTSIDE}" in finding.reason
    assert "vpce-0unknown from account 444455556666" in finding.reason
    assert "vpce-0insider" not in finding.reason and "vpce-0partner" not in finding.reason
    standing = {c["endpoint_id"]: c["standing"] for c in finding.details["pending"]}
    assert standing == {"vpce-0stranger": OUTSIDER, "vpce-0insider": INSIDER, "vpce-0partner": PARTNER,
                        "vpce-0unknown": UNVERIFIED}

    opted = _ctx(endpoint_service_partners=(PARTNER_ACCT,), reject_outside_connections=True)
    fixing = _run(PENDING, _snap(_service(("*",), acceptance=True, connections=CONNECTIONS)), opted)
    assert [(a.kind, a.params) for a in fixing.actions] == [("reject_connection", {"endpoint_id": "vpce-0stranger"})]


def test_accepted_connections_from_outside_are_reported_and_never_get_an_action() -> None:
    opted = _ctx(reject_outside_connections=True, remove_outside_principals=True)
    finding = _run(ACCEPTED, _snap(_service(("*",), connections=CONNECTIONS)), opted)
    assert finding.status is Status.NON_COMPLIANT and finding.actions == ()
    assert f"vpce-0live from account {OUTSIDE}" in finding.reason and "never drops" in finding.reason
    assert [c["endpoint_id"] for c in finding.details["connections"]] == ["vpce-0live"]


def test_unread_connections_are_skipped_not_called_empty() -> None:
    assert _run(PENDING, _snap(_service(("*",), connections=None))).status is Status.SKIPPED
    assert _run(ACCEPTED, _snap(_service(("*",), connections=()))).status is Status.COMPLIANT


# ------------------------------------------------------------------------------------------- perimeter mode
def _endpoint(service: str, policy: dict[str, Any], kind: str = "Gateway") -> Endpoint:
    return Endpoint(id="vpce-0a1b2c3d4e5f60001", vpc_id="vpc-1", type=kind, state="available",
                    service_name=f"com.amazonaws.eu-west-1.{service}", policy_document=json.dumps(policy))


IDENTITY_CONFINED = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}}]}


@pytest.mark.parametrize(("service", "kind", "guarded"), [
    ("s3", "Gateway", True), ("dynamodb", "Gateway", True), ("s3", "Interface", True),
    ("ssm", "Interface", False), ("ecr.api", "Interface", False), ("s3express", "Gateway", False)])
def test_identity_and_resource_mode_guards_the_resources_of_s3_and_dynamodb_endpoints_only(
        service: str, kind: str, guarded: bool) -> None:
    ep = _endpoint(service, IDENTITY_CONFINED, kind)
    snap = Snapshot(account=ACCOUNT, region="eu-west-1", endpoints={ep.id: ep})
    repos = ("arn:aws:s3:::al2023-repos-<region>-de612dc2/*",)
    identity = policy_rule.evaluate(snap, _ctx(aws_owned_resource_arns=repos))
    assert [f.status for f in identity] == [Status.COMPLIANT]
    (finding,) = policy_rule.evaluate(snap, _ctx(aws_owned_resource_arns=repos,
                                                 perimeter=Perimeter.IDENTITY_AND_RESOURCE))
    if not guarded:
        assert finding.status is Status.COMPLIANT and "perimeter" not in finding.details
        return
    assert finding.status is Status.NON_COMPLIANT and finding.details["perimeter"] == "identity+resource"
    appended = json.loads(finding.actions[0].params["policy_document"])["Statement"][-1]
    assert appended["Sid"] == "VpceGuardDenyOutsideOrgResources"
    assert appended["Condition"]["StringNotEqualsIfExists"] == {"aws:ResourceOrgID": [ORG]}
    if service == "s3":  # the AWS-owned repositories stay reachable, as in identity mode
        assert appended["NotResource"] == ["arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*"]
    else:
        assert appended["Resource"] == "*"


def test_a_rule_that_raises_on_one_service_costs_only_that_service_its_verdict() -> None:
    from vpce_guard.rules import Rule, evaluate_all

    good = _service(("*",))
    bad = good.model_copy(update={"id": "vpce-svc-0bad0bad0bad0bad0"})
    snap = Snapshot(account=ACCOUNT, region="us-east-1", service_configurations={good.id: good, bad.id: bad},
                    account_orgs={})

    def fragile(snapshot: Snapshot, ctx: RuleContext) -> list[Any]:
        if bad.id in snapshot.service_configurations:
            raise ValueError("unexpected shape")
        return RULES[ALLOWED].evaluate(snapshot, ctx)

    findings = evaluate_all(snap, _ctx(), [Rule(ALLOWED, "t", fragile)])
    assert {(f.resource_id, f.status, f.resource_type) for f in findings} == {
        (good.id, Status.NON_COMPLIANT, "vpc-endpoint-service"), (bad.id, Status.FAILED, "vpc-endpoint-service")}
