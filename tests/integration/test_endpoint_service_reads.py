"""The endpoint-service reads and writes on what AWS answers and moto does not produce, with botocore's Stubber
on the one call concerned (moto ignores MaxResults, so never pages; the connection calls come from
devkit/moto_privatelink.py, which never answers a partial `Unsuccessful` for a real connection), and the
membership lookups of org_accounts.py against moto's Organizations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from devkit.api_calls import count_api_calls
from devkit.seed import account_ec2, connect, seed_endpoint_service
from tests.support.botocore_hooks import FailTimes, ec2_response, install
from vpce_guard import org_accounts, remediate, service_writes
from vpce_guard.aws import SessionFactory
from vpce_guard.endpoint_services import ServiceReader
from vpce_guard.inventory import Inventory
from vpce_guard.models import Action, Finding, Status
from vpce_guard.plan import Decision, Step

from .conftest import ACCOUNT, REGION

SVC = "vpce-svc-0a1b2c3d4e5f60001"


@pytest.fixture
def reader(aws_env: None) -> tuple[ServiceReader, Any]:
    ctx = SessionFactory().context(ACCOUNT, REGION)
    return ServiceReader(Inventory(ctx)), ctx.client("ec2")


def test_connections_are_read_across_pages_for_every_service_at_once(reader: tuple[ServiceReader, Any]) -> None:
    services, ec2 = reader
    when = datetime(2025, 3, 11, 10, 0, tzinfo=UTC)
    page = {"ServiceId": SVC, "VpcEndpointOwner": "999988887777", "CreationTimestamp": when}
    with Stubber(ec2) as stub:
        stub.add_response("describe_vpc_endpoint_connections", {
            "VpcEndpointConnections": [{**page, "VpcEndpointId": "vpce-01", "VpcEndpointState": "pendingAcceptance"}],
            "NextToken": "page-2"}, {"Filters": [{"Name": "service-id", "Values": [SVC, "vpce-svc-0b"]}]})
        stub.add_response("describe_vpc_endpoint_connections", {
            "VpcEndpointConnections": [{**page, "VpcEndpointId": "vpce-02", "VpcEndpointState": "available"}]},
            {"Filters": [{"Name": "service-id", "Values": [SVC, "vpce-svc-0b"]}], "NextToken": "page-2"})
        got = services.connections([SVC, "vpce-svc-0b"])
        stub.assert_no_pending_responses()
    assert [(c.endpoint_id, c.state, c.owner) for c in got[SVC]] == [
        ("vpce-01", "pendingacceptance", "999988887777"), ("vpce-02", "available", "999988887777")]
    assert got[SVC][0].created == when.isoformat()


def test_allowed_principals_are_read_across_pages(reader: tuple[ServiceReader, Any]) -> None:
    services, ec2 = reader
    with Stubber(ec2) as stub:
        stub.add_response("describe_vpc_endpoint_service_permissions", {
            "AllowedPrincipals": [{"Principal": "*", "PrincipalType": "All"}], "NextToken": "t"}, {"ServiceId": SVC})
        stub.add_response("describe_vpc_endpoint_service_permissions", {
            "AllowedPrincipals": [{"Principal": "arn:aws:iam::999988887777:root", "PrincipalType": "Account"}]},
            {"ServiceId": SVC, "NextToken": "t"})
        got = services.allowed_principals(SVC)
    assert [(p.principal, p.principal_type) for p in got or ()] == [
        ("*", "All"), ("arn:aws:iam::999988887777:root", "Account")]


def test_a_refused_rejection_is_the_writes_error(reader: tuple[ServiceReader, Any]) -> None:
    """RejectVpcEndpointConnections answers 200 with the endpoints it could not reject in `Unsuccessful`."""
    _, ec2 = reader
    action = Action(kind="reject_connection", resource_id=SVC, params={"endpoint_id": "vpce-01"})
    with Stubber(ec2) as stub:
        stub.add_response("reject_vpc_endpoint_connections", {"Unsuccessful": [
            {"ResourceId": "vpce-01", "Error": {"Code": "InvalidState", "Message": "endpoint is deleting"}}]},
            {"ServiceId": SVC, "VpcEndpointIds": ["vpce-01"]})
        with pytest.raises(ClientError) as raised:
            service_writes.WRITERS["reject_connection"](ec2, action)
    assert raised.value.response["Error"]["Code"] == "InvalidState"
    assert "vpce-01: endpoint is deleting" in str(raised.value)


def test_a_rejection_aws_refused_is_recorded_failed_with_the_request_still_pending(
        ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The write's answer is AWS's (an `Unsuccessful` item, injected for that one call); the read-back is moto's,
    which still shows the request pending: `failed`, with AWS's error, and the state AWS shows."""
    elbv2 = boto3.client("elbv2", region_name=REGION)
    service = seed_endpoint_service(ec2, elbv2, REGION, acceptance_required=True, principals=("*",))
    stranger = connect(account_ec2("999988887777", REGION), service)
    action = Action(kind="reject_connection", resource_id=service.ids["service"], params={"endpoint_id": stranger},
                    before={"endpoint_id": stranger, "state": "pendingacceptance"},
                    after={"endpoint_id": stranger, "state": "rejected"})
    finding = Finding(rule_id="endpoint-service-pending-connections", resource_id=service.ids["service"],
                      resource_type="vpc-endpoint-service", status=Status.NON_COMPLIANT, reason="asked",
                      actions=(action,))
    unsuccessful = (f"<unsuccessful><item><error><code>InvalidState</code><message>busy</message></error>"
                    f"<resourceId>{stranger}</resourceId></item></unsuccessful>")
    install(monkeypatch, "before-send.ec2.RejectVpcEndpointConnections",  # answered here, never reaches moto
            FailTimes(1, lambda request: ec2_response(request, "RejectVpcEndpointConnections", unsuccessful)))
    ctx = SessionFactory().context(ACCOUNT, REGION)

    (outcome,) = remediate.execute([Step(finding, Decision.APPLY)], ctx)

    assert outcome.status is Status.FAILED and "InvalidState" in (outcome.error or "")
    assert outcome.after == {"endpoint_id": stranger, "state": "pendingacceptance"}


# ------------------------------------------------------------------------------------------- membership lookups
def test_members_are_remembered_and_outsiders_asked_again(org_id: str, aws_env: None) -> None:
    orgs = boto3.client("organizations", region_name=REGION)
    member = orgs.create_account(AccountName="m", Email="m@example.com")["CreateAccountStatus"]["AccountId"]
    now = [1000.0]
    with count_api_calls() as first:
        found, unread = org_accounts.organizations_of(lambda: orgs, [member, "999988887777"], clock=lambda: now[0])
    assert found == {member: org_id, "999988887777": None} and unread is None
    assert first.count("organizations", "DescribeAccount") == 2
    with count_api_calls() as again:
        org_accounts.organizations_of(lambda: orgs, [member, "999988887777"], clock=lambda: now[0])
    assert again.count("organizations", "DescribeAccount") == 1  # the outsider only: it may have joined since
    now[0] += org_accounts.MEMBER_CACHE_SECONDS
    with count_api_calls() as later:
        org_accounts.organizations_of(lambda: orgs, [member], clock=lambda: now[0])
    assert later.count("organizations", "DescribeAccount") == 1
