"""Least privilege: each function's role in template.yaml allows exactly the AWS calls its code makes.

Two readings of "what the code calls" (tests/support/iam_actions.py):
- recorded: every call a function makes while it handles every event file in events/ (plus dry-run and,
  when the template wires spokes, a member account through its assumed role), seen by a botocore hook;
- static: every operation the layer and handlers name in their source (a superset across functions).

Every recorded call must be allowed; every granted action must be recorded, or be listed below with the
reason the scenarios cannot reach it (and still be in the static set, so the code can call it at all),
or be one the Lambda service itself uses for the function's event sources.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devkit import template
from devkit.seed import (
    PLACEHOLDERS,
    ServiceWorld,
    account_ec2,
    confined_policy,
    connect,
    event_files,
    render_event,
    seed_endpoint_service,
    seed_vpc,
)
from tests.support import iam_actions
from tests.support.faults import FaultInjector

from .conftest import REGION, WarmHandler
from .test_handler_fuzz import cloudtrail_functions

TEMPLATE = template.load()
FUNCTIONS = template.functions(TEMPLATE)
CLOUDTRAIL_FUNCTIONS = set(cloudtrail_functions(TEMPLATE))
SPOKE = "111111111111"
GONE_RTB = "rtb-0123456789abcdef0"

#: Granted actions the scenarios here cannot reach, per function, with the reason. Keep this short.
UNREACHED: dict[str, dict[str, str]] = {
    "OnChangeFunction": {
        "dynamodb:GetItem": "Powertools Idempotency reads its record only for a redelivered event whose conditional "
                            "put returned no item; each scenario here is delivered once (redelivery: test_safety.py)",
        "dynamodb:DeleteItem": "Powertools Idempotency deletes its record when a run raises, so the retry runs; "
                               "every scenario here succeeds (failing runs: test_faults.py, test_safety.py)",
        "organizations:ListParents": "looked up only when an OU-scoped exemption exists (test_safety.py)",
        "sns:Publish": "the notification topic hears only of fixes that failed, flapping or conflicts; no scenario "
                       "here fails (test_findings_publish.py does)",
        "dynamodb:BatchWriteItem": "history of a ledger write over 100 items (an event about a VPC with dozens of "
                                   "endpoints; test_reliability.py) and intake records of events that never reach "
                                   "the rules (test_forged_events.py)",
    },
}
#: Parameters that turn on a fix that is off by default; each grants its permissions only then (Conditions).
OPT_INS = {"CreateMissingEndpoints": "true", "AddEndpointIngress": "true", "RemoveOutsidePrincipals": "true",
           "RejectOutsideConnections": "true"}
OUTSIDER = "999988887777"
#: Permissions a call needs besides its own action (tag-on-create: CreateVpcEndpoint with TagSpecifications;
#: publishing to a topic encrypted with a customer managed key: SNS uses the key as the publisher).
IMPLIED = {"ec2:CreateTags": "ec2:CreateVpcEndpoint", "kms:GenerateDataKey": "sns:Publish",
           "kms:Decrypt": "sns:Publish"}


def _props(function: str) -> dict[str, Any]:
    return TEMPLATE["Resources"][function]["Properties"]


def _statements(function: str, **parameters: str) -> list[dict[str, Any]]:
    """The function's statements as deployed with these parameters (template defaults otherwise)."""
    props = template.resolve_if(_props(function), template.conditions(TEMPLATE, parameters))
    statements, unknown = iam_actions.policy_statements(props)
    assert not unknown, f"{function}: policies this test cannot read (teach tests/support/iam_actions.py): {unknown}"
    return statements


def _platform_actions(function: str) -> set[str]:
    out: set[str] = set()
    for source in _props(function).get("Events", {}).values():
        out |= iam_actions.PLATFORM_ACTIONS_BY_EVENT_TYPE.get(source.get("Type", ""), frozenset())
    return out


def _spoke_role_env(function: str) -> bool:
    env = TEMPLATE.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return "SPOKE_ROLE_NAME" in {**env, **_props(function).get("Environment", {}).get("Variables", {})}


# --------------------------------------------------------------------------------------------- static
@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_wildcard_actions_and_writes_are_scoped_to_resources(function: str) -> None:
    for stmt in _statements(function, **OPT_INS):
        actions = [str(a) for a in iam_actions._listify(stmt.get("Action", []))]
        assert "NotAction" not in stmt and "NotResource" not in stmt, stmt
        assert not [a for a in actions if "*" in a.split(":", 1)[-1] and not a.startswith("sqs:SendMessage")], stmt
        writes = [a for a in actions if not a.split(":", 1)[1].startswith(
            ("Describe", "Get", "List", "Query", "Scan", "BatchGet"))]
        if writes and stmt.get("Effect") == "Allow":
            assert stmt.get("Resource") not in ("*", ["*"]), f"{function}: {writes} granted on every resource"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_granted_action_is_one_the_code_can_call(function: str) -> None:
    """Whatever the function is, an action no line of the layer or handlers can call is extra."""
    static = iam_actions.static_operations()
    granted = iam_actions.granted_actions(_statements(function, **OPT_INS))
    extra = {a for a in granted if not any(iam_actions.allows([a], s) for s in static)} - _platform_actions(function)
    extra -= {a for a, needed_by in IMPLIED.items() if needed_by in static}
    assert not extra, f"{function} is granted actions no code calls: {sorted(extra)}"


def test_static_scan_sees_the_calls_we_know_the_code_makes() -> None:
    static = iam_actions.static_operations()
    assert {"ec2:DescribeVpcEndpoints", "ec2:ModifyVpcEndpoint", "ec2:DescribeRouteTables",
            "dynamodb:BatchWriteItem", "dynamodb:Query", "organizations:DescribeOrganization",
            "sts:AssumeRole"} <= static


# --------------------------------------------------------------------------------------------- recorded
def _delivery(event: dict[str, Any]) -> dict[str, Any]:
    """Each call is a separate delivery: a new EventBridge id (the same id is answered by idempotency)."""
    return {**event, "id": str(uuid.uuid4())}



def _open_service(ec2: Any) -> ServiceWorld:
    """An endpoint service open to `*` and an outside account, acceptance off, with a stranger's request pending
    (made while acceptance was on)."""
    service = seed_endpoint_service(ec2, boto3.client("elbv2", region_name=REGION), REGION, acceptance_required=True,
                                    principals=("*", f"arn:aws:iam::{OUTSIDER}:root"))
    connect(account_ec2(OUTSIDER, REGION), service)
    ec2.modify_vpc_endpoint_service_configuration(ServiceId=service.ids["service"], AcceptanceRequired=False)
    return service


def _record_cloudtrail_function(function: str, warm: Callable[..., WarmHandler], ec2: Any) -> set[str]:
    world = seed_vpc(ec2, REGION)
    service = _open_service(ec2)
    recorder = FaultInjector()
    with recorder.installed():
        for mode in ("enforce", "dry_run"):  # settings are read at the first call: one loaded handler per mode
            handler = warm(function, MODE=mode)
            for name in event_files():
                handler(_delivery(render_event(name, {**world.mapping(), **service.mapping()})))
        # A route table deleted before the event is read: the subnet it named leads to the VPC.
        handler(_delivery(render_event("associate-route-table.json", {
            **world.mapping(), PLACEHOLDERS["rt1"]: GONE_RTB, PLACEHOLDERS["rt2"]: GONE_RTB})))
        if _spoke_role_env(function):
            creds = boto3.client("sts", region_name=REGION).assume_role(
                RoleArn=f"arn:aws:iam::{SPOKE}:role/seed", RoleSessionName="seed")["Credentials"]
            spoke_ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"])
            spoke_world = seed_vpc(spoke_ec2, REGION)
            warm(function)(_delivery(render_event("modify-vpc-endpoint.json", spoke_world.mapping(), account=SPOKE)))
    return {a for c in recorder.calls if c.stage == "call" for a in iam_actions.call_actions(c.service, c.operation,
                                                                                            c.params)}


@pytest.mark.parametrize("function", sorted(CLOUDTRAIL_FUNCTIONS))
def test_cloudtrail_function_is_allowed_every_call_it_makes_and_nothing_more(
        function: str, warm: Callable[..., WarmHandler], ec2: Any) -> None:
    recorded = _record_cloudtrail_function(function, warm, ec2) - iam_actions.NO_PERMISSION_NEEDED
    granted = iam_actions.granted_actions(_statements(function))

    missing = {a for a in recorded if not iam_actions.allows(granted, a)}
    assert not missing, f"{function} calls {sorted(missing)} but template.yaml does not allow them"

    unreached = UNREACHED.get(function, {})
    extra = {a for a in granted if not any(iam_actions.allows([a], r) for r in recorded)}
    extra -= set(unreached) | _platform_actions(function)
    extra -= {a for a, needed_by in IMPLIED.items() if needed_by in recorded or needed_by in unreached}
    assert not extra, f"{function} is granted {sorted(extra)}, which it never called in any scenario"
    static = iam_actions.static_operations()
    assert set(unreached) <= static, "an action listed as unreached must still be one the code can call"
    assert "ec2:ModifyVpcEndpoint" in recorded and "dynamodb:PutItem" in recorded  # the scenarios ran


def test_opt_in_fixes_are_granted_only_when_opted_in_and_exactly_what_they_call(
        invoke: Callable[..., Any], ec2: Any, org_id: str) -> None:
    """A VPC whose Session Manager profile lacks endpoints and whose endpoint group lacks HTTPS from the VPC, and an
    endpoint service open to outsiders with a stranger's request pending: with every opt-in on, the function
    creates endpoints, adds the rule, removes the outside principals and rejects the request; the role allows
    exactly that."""
    world = seed_vpc(ec2, REGION, s3_policy=confined_policy(org_id), associate_all=True, dns_hostnames=True,
                     https_from_vpc=False, vpc_tags={"vpce-guard:profiles": "ssm-session-manager"})
    service = _open_service(ec2)
    recorder = FaultInjector()
    with recorder.installed():
        invoke(render_event("modify-vpc-attribute.json", world.mapping()), **OPT_INS)
        invoke(render_event("modify-vpc-endpoint-service-permissions.json", service.mapping()), **OPT_INS)
    recorded = {a for c in recorder.calls if c.stage == "call"
                for a in iam_actions.call_actions(c.service, c.operation, c.params)} - iam_actions.NO_PERMISSION_NEEDED
    default = iam_actions.granted_actions(_statements("OnChangeFunction"))
    opted = iam_actions.granted_actions(_statements("OnChangeFunction", **OPT_INS))

    writes = {"ec2:CreateVpcEndpoint", "ec2:AuthorizeSecurityGroupIngress", "ec2:ModifyVpcEndpointServicePermissions",
              "ec2:RejectVpcEndpointConnections"}
    assert writes <= recorded, sorted(recorded)
    assert not {a for a in recorded if not iam_actions.allows(opted, a)}
    only_opted = opted - default
    assert only_opted == writes | {"ec2:CreateTags"}
    assert {a for a in only_opted if not any(iam_actions.allows([a], r) for r in recorded)} <= set(IMPLIED)
    assert all(IMPLIED[a] in recorded for a in only_opted & set(IMPLIED))


def test_security_hub_is_granted_only_when_switched_on_and_exactly_what_it_calls(
        invoke: Callable[..., Any], ec2: Any, org_id: str) -> None:
    """SecurityHubFindings=true: the function imports the findings of its own account's resources, and its role
    gains exactly securityhub:BatchImportFindings on that account's default product (member accounts: the spoke
    role, tests/unit/test_org_templates.py)."""
    world = seed_vpc(ec2, REGION)
    recorder = FaultInjector()
    with recorder.installed():
        invoke(render_event("modify-vpc-endpoint.json", world.mapping()), Mode="dry_run", SecurityHubFindings="true")
    recorded = {iam_actions.iam_action(c.service, c.operation) for c in recorder.calls if c.stage == "call"}
    assert "securityhub:BatchImportFindings" in recorded
    for function in ("OnChangeFunction", "SweepWorkerFunction"):
        default = _statements(function)
        opted = _statements(function, SecurityHubFindings="true")
        assert iam_actions.granted_actions(opted) - iam_actions.granted_actions(default) == {
            "securityhub:BatchImportFindings"}
        [grant] = [s for s in opted if "securityhub:BatchImportFindings" in iam_actions._listify(s["Action"])]
        assert grant["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:product/${AWS::AccountId}/default"}
        assert not any(a.startswith("securityhub:") for a in iam_actions.granted_actions(default))
