"""SessionFactory: acting in member accounts through the spoke role, credentials fetched once per account for
their lifetime, and never a silent fallback to the hub's own credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devkit.org import HUB_FUNCTION_ROLES, OrgWorld, hub_function_env
from tests.support.sts_gate import AssumeRoleGate
from vpce_guard import aws, pipeline
from vpce_guard.config import Settings
from vpce_guard.models import Targets, Trigger

from .conftest import TABLE, is_confined


@pytest.fixture
def as_worker(org: OrgWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as the sweep worker's execution role, as Lambda would."""
    for k, v in hub_function_env(org.hub, HUB_FUNCTION_ROLES[1]).items():
        monkeypatch.setenv(k, v)


def test_each_member_is_reached_through_its_spoke_role_assumed_once(
        org: OrgWorld, gate: AssumeRoleGate, as_worker: None) -> None:
    factory = aws.SessionFactory(spoke_role_name=org.spoke_role_name)
    for member in org.members:
        for region in ("us-east-1", "eu-west-1", "us-east-1"):
            ctx = factory.context(member, region)
            ctx.client("ec2").describe_vpcs()
            identity = ctx.client("sts").get_caller_identity()
            assert identity["Account"] == member
            assert identity["Arn"] == f"arn:aws:sts::{member}:assumed-role/{org.spoke_role_name}/vpce-guard"
        assert [c.allowed for c in gate.calls_for(member)] == [True]
    own = factory.context(org.hub, "us-east-1").client("sts").get_caller_identity()
    assert own["Arn"].startswith(f"arn:aws:sts::{org.hub}:assumed-role/{HUB_FUNCTION_ROLES[1]}/")
    assert gate.calls_for(org.hub) == []
    assert factory.spoke_role_arn(org.members[0]) == f"arn:aws:iam::{org.members[0]}:role/{org.spoke_role_name}"


def test_credentials_are_fetched_again_only_when_they_near_expiry(
        org: OrgWorld, gate: AssumeRoleGate, as_worker: None) -> None:
    factory = aws.SessionFactory(spoke_role_name=org.spoke_role_name)
    member = org.members[0]
    ec2 = factory.context(member, "us-east-1").client("ec2")
    ec2.describe_vpcs()
    ec2.describe_vpcs()
    assert len(gate.calls_for(member)) == 1
    credentials = factory.context(member, "us-east-1").session._session.get_credentials()
    credentials._expiry_time = datetime.now(UTC) + timedelta(minutes=5)  # inside botocore's refresh window
    ec2.describe_vpcs()
    assert len(gate.calls_for(member)) == 2
    ec2.describe_vpcs()
    assert len(gate.calls_for(member)) == 2


def test_refused_assume_role_is_told_apart_from_a_failed_call(
        org: OrgWorld, gate: AssumeRoleGate, as_worker: None) -> None:
    stranger = org.add_member("stranger", with_spoke_role=False, seed=False)
    factory = aws.SessionFactory(spoke_role_name=org.spoke_role_name)
    with pytest.raises(ClientError) as refused:
        factory.context(stranger, "us-east-1").client("ec2").describe_vpcs()
    assert aws.is_assume_role_failure(refused.value)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as failed:
        factory.context(org.members[0], "us-east-1").client("ec2").describe_vpc_endpoints(
            VpcEndpointIds=["vpce-0000000000000dead"])
    assert not aws.is_assume_role_failure(failed.value)


def test_without_a_spoke_role_another_account_is_a_recorded_failure_not_the_hub_acting_on_itself(
        org: OrgWorld, org_ledger: Any) -> None:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, allowed_org_ids=(org.org_id,)),
                          aws.SessionFactory(spoke_role_name=""))
    member = org.members[0]
    result = pipeline.run_targets(rt, Targets(account=member, region="us-east-1", everything=True),
                                  Trigger(source="manual"))
    assert result.disposition == "failed" and "SPOKE_ROLE_NAME" in result.reason
    hub_world = org.vpcs[(org.hub, "us-east-1")]
    hub_ep = org.ec2(org.hub, "us-east-1").describe_vpc_endpoints(
        VpcEndpointIds=[hub_world.ids["s3_endpoint"]])["VpcEndpoints"][0]
    assert not is_confined(hub_ep["PolicyDocument"])  # the hub's own drift was not "fixed" for the member
    [item] = org_ledger.scan()["Items"]
    assert (item["account"], item["status"]) == (member, "failed")
