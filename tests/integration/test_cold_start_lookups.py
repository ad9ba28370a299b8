"""What a cold start asks AWS before its first result, counted under moto with the real on-change handler.

A deployed function knows its own account and partition from its ARN (the Lambda context), and its
organization from the template (OrganizationId), so the first event costs no sts:GetCallerIdentity and no
organizations:DescribeOrganization. STS is still asked where only the function's own role name can tell a
change of ours from another's (a hub-account role session whose role path the event does not show), and
wherever the context cannot be trusted to name the credentials' account (outside Lambda).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devkit import template
from devkit.api_calls import count_api_calls
from devkit.caches import reset_process_caches
from devkit.lambda_context import LocalLambdaContext
from devkit.seed import confined_policy, render_event, seed_vpc

from .conftest import ACCOUNT, REGION, TABLE


def _first_event(monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], *, in_lambda: bool,
                 **overrides: str) -> tuple[dict[str, Any], dict[str, int]]:
    spec = template.function_spec("OnChangeFunction", resources={"LedgerTable": TABLE}, overrides=overrides)
    for k, v in spec.environment.items():
        monkeypatch.setenv(k, v)
    if in_lambda:  # set by the Lambda service in every execution environment
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    else:
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    reset_process_caches()
    handler = spec.load_handler()
    with count_api_calls() as calls:
        result = handler(event, LocalLambdaContext(function_name="OnChangeFunction", account=ACCOUNT))
    return result, calls.by_operation()


@pytest.fixture
def event(ec2: Any, org_id: str, ledger_table: Any) -> dict[str, Any]:
    world = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True)
    return render_event("modify-vpc-endpoint.json", world.mapping())


def test_a_deployed_functions_first_event_asks_neither_sts_nor_organizations(
        event: dict[str, Any], org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = _first_event(monkeypatch, event, in_lambda=True, OrganizationId=org_id)
    assert {r["status"] for r in result["results"]} == {"compliant"}, result
    assert "sts:GetCallerIdentity" not in calls, calls
    assert not [op for op in calls if op.startswith("organizations:")], calls


def test_allowed_org_ids_when_given_are_used_instead_of_organization_id(
        event: dict[str, Any], org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The endpoint is confined to the moto organization; allowing only another one makes it non-compliant.
    result, calls = _first_event(monkeypatch, {**event, "id": event["id"][:-4] + "0001"}, in_lambda=True,
                                 OrganizationId=org_id, AllowedOrgIds="o-aaaaaaaaaa", Mode="dry_run")
    assert "dry_run" in {r["status"] for r in result["results"]}, result
    assert not [op for op in calls if op.startswith("organizations:")], calls


def test_a_hub_role_session_without_its_path_makes_sts_name_the_functions_own_role(
        event: dict[str, Any], org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pathless = copy.deepcopy(event)
    pathless["id"] = event["id"][:-4] + "0002"
    pathless["detail"]["userIdentity"].pop("sessionContext")  # no session issuer: the role's path is unknown
    result, calls = _first_event(monkeypatch, pathless, in_lambda=True, OrganizationId=org_id)
    assert calls.get("sts:GetCallerIdentity") == 1, calls
    assert {r["status"] for r in result["results"]} == {"compliant"}, result


def test_outside_lambda_the_contexts_account_is_not_trusted(
        event: dict[str, Any], org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = _first_event(monkeypatch, {**event, "id": event["id"][:-4] + "0003"}, in_lambda=False,
                                 OrganizationId=org_id)
    assert calls.get("sts:GetCallerIdentity") == 1, calls
    assert {r["status"] for r in result["results"]} == {"compliant"}, result


def test_the_function_arn_gives_the_account_and_partition_only_inside_lambda(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from vpce_guard import aws

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    factory = aws.SessionFactory(base_session=aws.new_session(region_name=REGION))
    factory.adopt_function_arn("arn:aws-us-gov:lambda:us-gov-west-1:210987654321:function:f:live")
    assert (factory.own_account, factory.partition) == ("210987654321", "aws-us-gov")
    for bad in ("", "arn:aws:sts::210987654321:assumed-role/r/s", "arn:aws:lambda:us-east-1:12345:function:f"):
        other = aws.SessionFactory(base_session=aws.new_session(region_name=REGION))
        other.adopt_function_arn(bad)
        assert other._identity is None, bad
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE")
    outside = aws.SessionFactory(base_session=aws.new_session(region_name=REGION))
    outside.adopt_function_arn("arn:aws:lambda:us-east-1:210987654321:function:f")
    assert outside._identity is None
