"""remediate.execute on multi-step fixes: the exact AWS calls, in order, one Outcome per change.

botocore's Stubber checks each request against the expected one, in order, so these tests pin what moto
cannot show: one attribute per ModifyVpcAttribute call, support before hostnames before private DNS, and
PrivateDnsEnabled actually sent (moto ignores it on ModifyVpcEndpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from vpce_guard.aws import AwsContext
from vpce_guard.models import Finding, Status
from vpce_guard.plan import Decision, Step
from vpce_guard.remediate import execute
from vpce_guard.rules import gateway_dns_support, private_dns_vpc_dns

from .netsnap import CTX, gateway, interface, snap, vpc

VPC_ID = "vpc-1"
EP_ID = "vpce-ssm"


@pytest.fixture
def stubbed() -> Iterator[tuple[AwsContext, Stubber]]:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1")
    client = session.client("ec2")
    ctx = AwsContext(account="111122223333", region="eu-west-1", session=session)
    ctx._clients["ec2"] = client
    with Stubber(client) as stubber:
        yield ctx, stubber
        stubber.assert_no_pending_responses()


def _finding() -> Finding:
    eps = (interface("ssm", private_dns=False), interface("ssmmessages"), interface("ec2messages"))
    [f] = private_dns_vpc_dns.evaluate(
        snap(*eps, vpcs=(vpc(False, False, tags={"vpce-guard:profiles": "ssm-session-manager"}),)), CTX)
    return f


def _endpoint(private_dns: bool) -> dict[str, Any]:
    return {"VpcEndpoints": [{"VpcEndpointId": EP_ID, "VpcId": VPC_ID, "VpcEndpointType": "Interface",
                              "ServiceName": "com.amazonaws.eu-west-1.ssm", "State": "available",
                              "PrivateDnsEnabled": private_dns}]}


def _attribute(name: str, value: bool) -> dict[str, Any]:
    return {"VpcId": VPC_ID, name[0].upper() + name[1:]: {"Value": value}}


def test_support_then_hostnames_then_private_dns_one_outcome_each(stubbed: tuple[AwsContext, Stubber]) -> None:
    ctx, stub = stubbed
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsSupport": {"Value": True}})
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsHostnames": {"Value": True}})
    stub.add_response("modify_vpc_endpoint", {"Return": True}, {"VpcEndpointId": EP_ID, "PrivateDnsEnabled": True})
    stub.add_response("describe_vpc_endpoints", _endpoint(True), {"VpcEndpointIds": [EP_ID]})
    stub.add_response("describe_vpc_attribute", _attribute("enableDnsSupport", True),
                      {"VpcId": VPC_ID, "Attribute": "enableDnsSupport"})
    stub.add_response("describe_vpc_attribute", _attribute("enableDnsHostnames", True),
                      {"VpcId": VPC_ID, "Attribute": "enableDnsHostnames"})

    outcomes = execute([Step(_finding(), Decision.APPLY)], ctx)

    assert [(o.resource_id, o.status, o.details) for o in outcomes] == [
        (VPC_ID, Status.REMEDIATED, {"step": 1, "steps": 3}),
        (VPC_ID, Status.REMEDIATED, {"step": 2, "steps": 3}),
        (EP_ID, Status.REMEDIATED, {"step": 3, "steps": 3}),
    ]
    assert outcomes[2].resource_type == "vpc-endpoint" and outcomes[2].after == {"private_dns_enabled": True}
    assert "[step 2/3: turn enableDnsHostnames on in vpc-1]" in outcomes[1].reason


def test_a_failed_step_stops_the_later_ones(stubbed: tuple[AwsContext, Stubber]) -> None:
    ctx, stub = stubbed
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsSupport": {"Value": True}})
    stub.add_client_error("modify_vpc_attribute", "UnauthorizedOperation", "not allowed",
                          expected_params={"VpcId": VPC_ID, "EnableDnsHostnames": {"Value": True}})
    stub.add_response("describe_vpc_endpoints", _endpoint(False), {"VpcEndpointIds": [EP_ID]})
    stub.add_response("describe_vpc_attribute", _attribute("enableDnsSupport", True),
                      {"VpcId": VPC_ID, "Attribute": "enableDnsSupport"})
    stub.add_response("describe_vpc_attribute", _attribute("enableDnsHostnames", False),
                      {"VpcId": VPC_ID, "Attribute": "enableDnsHostnames"})

    outcomes = execute([Step(_finding(), Decision.APPLY)], ctx)

    assert [o.status for o in outcomes] == [Status.REMEDIATED, Status.FAILED, Status.FAILED]
    assert "UnauthorizedOperation" in (outcomes[1].error or "")
    assert (outcomes[2].error or "").startswith("not attempted: step 2/3")


def test_a_write_two_rules_need_is_made_once(stubbed: tuple[AwsContext, Stubber]) -> None:
    ctx, stub = stubbed
    s = snap(interface("ssm"), gateway(), vpcs=(vpc(False, True),))
    [dns] = private_dns_vpc_dns.evaluate(s, CTX)
    [gw] = gateway_dns_support.evaluate(s, CTX)
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsSupport": {"Value": True}})
    stub.add_response("describe_vpc_attribute", _attribute("enableDnsSupport", True),
                      {"VpcId": VPC_ID, "Attribute": "enableDnsSupport"})

    outcomes = execute([Step(dns, Decision.APPLY), Step(gw, Decision.APPLY)], ctx)

    assert [(o.finding.rule_id, o.status) for o in outcomes] == [
        ("private-dns-vpc-dns", Status.REMEDIATED), ("gateway-endpoint-dns-support", Status.REMEDIATED)]
    assert outcomes[1].details == {"write_made_by": "private-dns-vpc-dns"}


def test_success_that_aws_does_not_show_is_a_failure(stubbed: tuple[AwsContext, Stubber]) -> None:
    ctx, stub = stubbed
    [gw] = gateway_dns_support.evaluate(snap(gateway(), vpcs=(vpc(False, True),)), CTX)
    stub.add_response("modify_vpc_attribute", {}, {"VpcId": VPC_ID, "EnableDnsSupport": {"Value": True}})
    stub.add_response("describe_vpc_attribute", _attribute("enableDnsSupport", False),
                      {"VpcId": VPC_ID, "Attribute": "enableDnsSupport"})
    [outcome] = execute([Step(gw, Decision.APPLY)], ctx)
    assert outcome.status is Status.FAILED and "does not show" in (outcome.error or "")


def test_dry_run_records_one_would_be_change_per_action() -> None:
    f = _finding()
    outcomes = execute([Step(f, Decision.DRY_RUN, "dry_run mode: nothing was changed")],
                       AwsContext(account="111122223333", region="eu-west-1", session=boto3.Session()))
    assert [(o.resource_id, o.status, o.after) for o in outcomes] == [
        (VPC_ID, Status.DRY_RUN, {"enableDnsSupport": True}),
        (VPC_ID, Status.DRY_RUN, {"enableDnsHostnames": True}),
        (EP_ID, Status.DRY_RUN, {"private_dns_enabled": True}),
    ]
