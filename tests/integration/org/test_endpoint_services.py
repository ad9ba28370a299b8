"""Endpoint services in member accounts: the sweep and the forwarded events reach them through the spoke role,
and place their principals' accounts with AWS Organizations from the hub."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.org import OrgWorld
from devkit.seed import account_ec2, connect, render_event, seed_endpoint_service
from tests.support.sts_gate import AssumeRoleGate
from vpce_guard.ledger import Ledger

from ..conftest import REGION
from .conftest import Hub

OUTSIDER = "999988887777"


def _service_in(org: OrgWorld, account: str, principals: tuple[str, ...], **kw: Any) -> Any:
    session = org.session(account, REGION)
    return seed_endpoint_service(session.client("ec2"), session.client("elbv2"), REGION, principals=principals, **kw)


def _principals(org: OrgWorld, account: str, service_id: str) -> set[str]:
    return {p["Principal"] for p in org.ec2(account, REGION).describe_vpc_endpoint_service_permissions(
        ServiceId=service_id)["AllowedPrincipals"]}


def test_the_sweep_finds_and_fixes_a_members_open_service_through_the_spoke_role(
        hub: Hub, org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any) -> None:
    member, other = org.members
    service = _service_in(org, member, ("*", f"arn:aws:iam::{OUTSIDER}:root", f"arn:aws:iam::{other}:root"),
                          acceptance_required=True)
    stranger = connect(account_ec2(OUTSIDER, REGION), service)
    hub.overrides.update(RemoveOutsidePrincipals="true", RejectOutsideConnections="true")

    hub.sweep()
    report = hub.drain_worker()
    assert report.failed_deliveries == []

    sid = service.ids["service"]
    # Exactly the outsiders are gone; the other member of the organization stays allowed.
    assert _principals(org, member, sid) == {f"arn:aws:iam::{other}:root"}
    assert account_ec2(OUTSIDER, REGION).describe_vpc_endpoints(VpcEndpointIds=[stranger])["VpcEndpoints"][0]["State"] == "rejected"
    history = Ledger(org_ledger).history(member, REGION, sid)
    removed = [i for i in history if i["rule_id"] == "endpoint-service-allowed-principals"
               and i["status"] == "remediated"]
    assert sorted(i["before"]["principal"] for i in removed) == sorted(["*", f"arn:aws:iam::{OUTSIDER}:root"])
    assert {i["resource_type"] for i in history} == {"vpc-endpoint-service"}
    # The member was reached through its spoke role only.
    assert {c.role_arn for c in gate.calls_for(member)} == {f"arn:aws:iam::{member}:role/{org.spoke_role_name}"}


@pytest.mark.parametrize("remove", ["false", "true"])
def test_a_forwarded_permissions_event_from_a_member_is_judged_in_that_member(
        hub: Hub, org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any, remove: str) -> None:
    member = org.members[0]
    service = _service_in(org, member, ("*",))
    hub.overrides.update(RemoveOutsidePrincipals=remove)

    out = hub.call("OnChangeFunction", render_event("modify-vpc-endpoint-service-permissions.json",
                                                    service.mapping(), account=member))

    statuses = {(r["rule_id"], r["status"]) for r in out["results"]}
    assert ("endpoint-service-acceptance", "remediated") in statuses
    expected = "remediated" if remove == "true" else "non_compliant"
    assert ("endpoint-service-allowed-principals", expected) in statuses
    assert _principals(org, member, service.ids["service"]) == (set() if remove == "true" else {"*"})

