"""devkit/moto_privatelink.py: the endpoint-service connection calls moto lacks behave as AWS documents them,
computed from moto's own state (so the tests and the demo that rely on them see a consistent world)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devkit.seed import ServiceWorld, account_ec2, connect, seed_endpoint_service

from .conftest import REGION

CONSUMER = "999988887777"



def _service(ec2: Any, acceptance: bool, name: str = "orders-api", cidr: str = "10.200.0.0/16") -> ServiceWorld:
    return seed_endpoint_service(ec2, boto3.client("elbv2", region_name=REGION), REGION, principals=("*",),
                                 acceptance_required=acceptance, name=name, cidr=cidr)


def _state(consumer: Any, endpoint: str) -> str:
    return consumer.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"]


def test_a_request_waits_for_acceptance_and_the_owners_decision_shows_on_both_sides(ec2: Any) -> None:
    service, consumer = _service(ec2, acceptance=True), account_ec2(CONSUMER, REGION)
    first, second = connect(consumer, service), connect(consumer, service, cidr="10.202.0.0/16")
    listed = ec2.describe_vpc_endpoint_connections(
        Filters=[{"Name": "service-id", "Values": [service.ids["service"]]}])["VpcEndpointConnections"]
    assert {(c["VpcEndpointId"], c["VpcEndpointOwner"], c["VpcEndpointState"]) for c in listed} == {
        (first, CONSUMER, "pendingAcceptance"), (second, CONSUMER, "pendingAcceptance")}

    assert ec2.accept_vpc_endpoint_connections(ServiceId=service.ids["service"],
                                               VpcEndpointIds=[first])["Unsuccessful"] == []
    assert ec2.reject_vpc_endpoint_connections(ServiceId=service.ids["service"],
                                               VpcEndpointIds=[second])["Unsuccessful"] == []
    assert (_state(consumer, first), _state(consumer, second)) == ("available", "rejected")
    pending = ec2.describe_vpc_endpoint_connections(Filters=[
        {"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance"]}])["VpcEndpointConnections"]
    assert pending == []


def test_without_acceptance_a_connection_is_live_at_once(ec2: Any) -> None:
    service = _service(ec2, acceptance=False)
    endpoint = connect(account_ec2(CONSUMER, REGION), service)
    (listed,) = ec2.describe_vpc_endpoint_connections()["VpcEndpointConnections"]
    assert (listed["VpcEndpointId"], listed["VpcEndpointState"]) == (endpoint, "available")


def test_unknown_endpoints_come_back_unsuccessful_and_an_unknown_service_fails_the_call(ec2: Any) -> None:
    service = _service(ec2, acceptance=True)
    other = _service(ec2, acceptance=True, name="billing-api", cidr="10.210.0.0/16")
    endpoint = connect(account_ec2(CONSUMER, REGION), other)  # a connection to another service is not one to this one
    failed = ec2.reject_vpc_endpoint_connections(ServiceId=service.ids["service"], VpcEndpointIds=[endpoint])
    assert [(u["ResourceId"], u["Error"]["Code"]) for u in failed["Unsuccessful"]] == [
        (endpoint, "InvalidVpcEndpointId.NotFound")]
    with pytest.raises(ClientError, match=r"InvalidVpcEndpointServiceId\.NotFound"):
        ec2.accept_vpc_endpoint_connections(ServiceId="vpce-svc-0123456789abcdef0", VpcEndpointIds=[endpoint])
