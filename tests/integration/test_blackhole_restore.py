"""A blackholed gateway endpoint route is rewritten by dropping the association and adding it again. Between
the two calls the subnets have no route to the service: an add that fails must be tried again at once, and a
fix that still cannot restore it says which tables were left without the route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devkit.seed import seed_vpc
from tests.support import faults
from tests.support.faults import Call, Fault, FaultInjector
from vpce_guard.aws import AwsContext
from vpce_guard.models import Action, Finding, Status
from vpce_guard.plan import Decision, Step
from vpce_guard.remediate import execute

from .conftest import ACCOUNT, REGION


@pytest.fixture
def injector() -> Iterator[FaultInjector]:
    inj = FaultInjector()
    with inj.installed(), faults.no_backoff():
        yield inj


def _adds(call: Call) -> bool:
    return any(k.startswith("AddRouteTableId") for k in call.params)


def _step(endpoint: str, table: str) -> Step:
    action = Action(kind="reassociate_route_tables", resource_id=endpoint, params={"route_table_ids": [table]},
                    before={"route_table_ids": [table], "blackholed_route_tables": [table]},
                    after={"route_table_ids": [table]})
    finding = Finding(rule_id="gateway-endpoint-route-tables", resource_id=endpoint, resource_type="vpc-endpoint",
                      status=Status.NON_COMPLIANT, reason=f"route to the service in {table} is a blackhole",
                      actions=(action,))
    return Step(finding, Decision.APPLY)


def _tables(ec2: Any, endpoint: str) -> list[str]:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["RouteTableIds"]


def test_an_add_that_fails_once_is_retried_and_the_association_is_back(
        ec2: Any, injector: FaultInjector) -> None:
    world = seed_vpc(ec2, REGION)
    endpoint, table = world.ids["s3_endpoint"], world.ids["rt1"]
    injector.add(Fault("ec2.ModifyVpcEndpoint", "InternalError", status=500, times=1, when=_adds))

    [outcome] = execute([_step(endpoint, table)], AwsContext(account=ACCOUNT, region=REGION,
                                                             session=boto3.Session(region_name=REGION)))

    assert outcome.status is Status.REMEDIATED, outcome
    assert table in _tables(ec2, endpoint)
    assert sum(1 for c in injector.calls if c.name == "ec2.ModifyVpcEndpoint" and c.stage == "call" and _adds(c)) == 2


def test_an_association_that_cannot_be_restored_fails_naming_the_tables_left_without_a_route(
        ec2: Any, injector: FaultInjector) -> None:
    world = seed_vpc(ec2, REGION)
    endpoint, table = world.ids["s3_endpoint"], world.ids["rt1"]
    injector.add(Fault("ec2.ModifyVpcEndpoint", "InternalError", status=500, times=2, when=_adds))

    [outcome] = execute([_step(endpoint, table)], AwsContext(account=ACCOUNT, region=REGION,
                                                             session=boto3.Session(region_name=REGION)))

    assert outcome.status is Status.FAILED
    assert outcome.error and table in outcome.error and "no route to the service" in outcome.error
    assert table not in _tables(ec2, endpoint)
