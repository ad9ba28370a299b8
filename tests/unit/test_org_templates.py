"""The organization wiring, read from the templates themselves: who may put events on the hub bus, who may
assume the spoke role, what that role may do, and that hub and spoke stay in step.

The policies are resolved as CloudFormation would resolve them (devkit.template) and judged by the test IAM
evaluator (tests/support/iam_eval.py), so these tests check what the deployed policies allow, not how
they are spelled."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit import template
from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard import sweep

ORG = "o-exampleorg1"
OTHER_ORG = "o-otherorg99"
HUB = "111111111111"
MEMBER = "222222222222"
HUB_ROLES = [f"arn:aws:iam::{HUB}:role/hub-OnChangeFunctionRole-ABC", f"arn:aws:iam::{HUB}:role/hub-SweepWorkerRole-DEF"]
HUB_BUS = f"arn:aws:events:us-east-1:{HUB}:event-bus/vpce-guard-hub"

hub_tpl = template.load()
spoke_tpl = template.load(template.SPOKE_TEMPLATE)


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def _actions(stmt: dict[str, Any]) -> set[str]:
    a = stmt.get("Action", [])
    return {a} if isinstance(a, str) else set(a)


#: Every opt-in fix on: the conditional grants (template Conditions) are compared too.
OPT_INS = {"CreateMissingEndpoints": "true", "AddEndpointIngress": "true"}


def _function_policy_statements(function: str) -> list[dict[str, Any]]:
    props = template.resolve_if(hub_tpl["Resources"][function]["Properties"], template.conditions(hub_tpl, OPT_INS))
    return [s for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]


def _functions_that_assume_the_spoke_role() -> set[str]:
    return {f for f in template.functions(hub_tpl)
            if any("sts:AssumeRole" in _actions(s) for s in _function_policy_statements(f))}


# --- hub bus ---------------------------------------------------------------------------------------------


def _bus_policy() -> dict[str, Any]:
    props = template.resource_properties("HubEventBus", overrides={"OrganizationId": ORG},
                                         resources={"AWS::AccountId": HUB})
    return props["Policy"]


def test_hub_bus_accepts_put_events_from_principals_of_the_organization_only() -> None:
    policy = _bus_policy()
    [stmt] = _statements(policy)
    assert stmt["Effect"] == "Allow" and stmt["Principal"] == "*" and _actions(stmt) == {"events:PutEvents"}
    assert stmt["Resource"] == HUB_BUS
    assert stmt["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}

    def put(principal: str, org: str | None, action: str = "events:PutEvents") -> bool:
        return evaluate(policy, RequestContext.iam(principal, action, resource=HUB_BUS, org_id=org))

    assert put(f"arn:aws:iam::{MEMBER}:role/forwarder", ORG)
    assert not put(f"arn:aws:iam::{MEMBER}:role/forwarder", OTHER_ORG)
    assert not put("arn:aws:iam::333333333333:role/forwarder", None)  # an account in no organization
    assert not put(f"arn:aws:iam::{MEMBER}:role/forwarder", ORG, "events:PutRule")
    assert not evaluate(policy, RequestContext.service("events.amazonaws.com", "events:PutEvents", HUB_BUS))
    assert not evaluate(policy, RequestContext.anonymous("events:PutEvents", HUB_BUS))


def test_bus_name_is_a_parameter_and_the_on_change_rule_listens_on_that_bus() -> None:
    bus = hub_tpl["Resources"]["HubEventBus"]
    assert bus["Properties"]["Name"] == {"Ref": "HubEventBusName"}
    assert hub_tpl["Parameters"]["HubEventBusName"]["Default"]
    events = hub_tpl["Resources"]["OnChangeFunction"]["Properties"]["Events"]
    rules = [e for e in events.values() if e["Type"] == "EventBridgeRule"]
    assert rules and all(r["Properties"]["EventBusName"] == {"Ref": "HubEventBus"} for r in rules)


# --- spoke: remediation role ---------------------------------------------------------------------------


def _spoke_role(hub_roles: list[str] = HUB_ROLES) -> dict[str, Any]:
    return template.resource_properties("RemediationRole", path=template.SPOKE_TEMPLATE, overrides={
        "OrganizationId": ORG, "HubAccountId": HUB, "HubPrincipalArns": ",".join(hub_roles),
        "RoleRegion": "us-east-1", "HubEventBusArn": HUB_BUS, **OPT_INS}, resources={"AWS::AccountId": MEMBER})


def test_spoke_role_trusts_only_the_hub_function_roles_of_the_organization() -> None:
    trust = _spoke_role()["AssumeRolePolicyDocument"]
    [stmt] = _statements(trust)
    assert _actions(stmt) == {"sts:AssumeRole"} and stmt["Effect"] == "Allow"
    assert stmt["Condition"]["ArnEquals"]["aws:PrincipalArn"] == HUB_ROLES
    assert stmt["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG
    role = f"arn:aws:iam::{MEMBER}:role/vpce-guard-spoke"

    def assume(principal: str, org: str | None) -> bool:
        return evaluate(trust, RequestContext.iam(principal, "sts:AssumeRole", resource=role, org_id=org))

    for hub_role in HUB_ROLES:
        assert assume(hub_role, ORG)
    assert not assume(f"arn:aws:iam::{HUB}:role/some-other-role-in-the-hub", ORG)
    assert not assume(f"arn:aws:iam::{HUB}:user/admin", ORG)
    assert not assume(HUB_ROLES[0], OTHER_ORG)
    assert not assume(HUB_ROLES[0], None)
    assert not assume(f"arn:aws:iam::{MEMBER}:role/hub-OnChangeFunctionRole-ABC", ORG)  # same name, wrong account
    assert not evaluate(trust, RequestContext.service("lambda.amazonaws.com", "sts:AssumeRole", role))
    assert not evaluate(trust, RequestContext.iam(HUB_ROLES[0], "sts:TagSession", resource=role, org_id=ORG))


def test_the_stackset_passes_exactly_the_roles_of_the_functions_that_assume_the_spoke_role() -> None:
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in hub_tpl["Resources"]["SpokeStackSet"]["Properties"]["Parameters"]}
    sep, parts = params["HubPrincipalArns"]["Fn::Join"]
    assert sep == ","
    passed = {p["Fn::GetAtt"][0] for p in parts}
    assert passed == {f"{f}Role" for f in _functions_that_assume_the_spoke_role()}
    # The rollback function restores member accounts' resources through the spoke role too.
    assert passed == {"OnChangeFunctionRole", "SweepWorkerFunctionRole", "RollbackFunctionRole"}


def test_hub_functions_may_assume_only_the_spoke_role_and_only_in_the_organization() -> None:
    for function in _functions_that_assume_the_spoke_role():
        [stmt] = [s for s in _function_policy_statements(function) if "sts:AssumeRole" in _actions(s)]
        assert _actions(stmt) == {"sts:AssumeRole"}
        assert stmt["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}"}
        assert stmt["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}


def test_spoke_role_may_do_what_the_hub_does_in_its_own_account_and_nothing_more() -> None:
    statements = [s for p in _spoke_role()["Policies"] for s in _statements(p["PolicyDocument"])]
    spoke_actions = set().union(*(_actions(s) for s in statements))
    hub_ec2 = {a for f in _functions_that_assume_the_spoke_role() for s in _function_policy_statements(f)
               for a in _actions(s) if a.startswith("ec2:")}
    assert spoke_actions == hub_ec2, "keep templates/spoke.yaml RemediationRole in step with the hub functions"
    assert all("*" not in a for a in spoke_actions)
    writes = [s for s in statements if not all(a.startswith("ec2:Describe") for a in _actions(s))]
    for stmt in writes:  # writes only on this account's resources (and the AWS services' endpoint services)
        resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
        assert all(r.startswith(f"arn:aws:ec2:*:{MEMBER}:") or r == "arn:aws:ec2:*:*:vpc-endpoint-service/*"
                   for r in resources), stmt
    ctx = RequestContext.iam(HUB_ROLES[0], "ec2:ModifyVpcEndpoint", resource=f"arn:aws:ec2:eu-west-1:{MEMBER}:vpc-endpoint/vpce-1")
    assert any(evaluate({"Statement": [s]}, ctx) for s in statements)
    for forbidden in ("ec2:DeleteVpcEndpoints", "ec2:CreateRoute", "ec2:DeleteRouteTable", "iam:PassRole"):
        ctx = RequestContext.iam(HUB_ROLES[0], forbidden, resource=f"arn:aws:ec2:eu-west-1:{MEMBER}:vpc-endpoint/vpce-1")
        assert not any(evaluate({"Statement": [s]}, ctx) for s in statements), forbidden


def test_spoke_role_may_import_security_hub_findings_of_its_own_account_only_when_switched_on() -> None:
    """SecurityHubFindings: exactly securityhub:BatchImportFindings on this account's default product, passed by
    the hub's StackSet; nothing of Security Hub otherwise."""
    def statements(switch: str) -> list[dict[str, Any]]:
        props = template.resource_properties("RemediationRole", path=template.SPOKE_TEMPLATE, overrides={
            "OrganizationId": ORG, "HubAccountId": HUB, "HubPrincipalArns": ",".join(HUB_ROLES),
            "RoleRegion": "us-east-1", "HubEventBusArn": HUB_BUS, "SecurityHubFindings": switch},
            resources={"AWS::AccountId": MEMBER})
        return [s for p in props["Policies"] for s in _statements(p["PolicyDocument"])]

    assert spoke_tpl["Parameters"]["SecurityHubFindings"]["Default"] == "false"
    assert not [s for s in statements("false") if any(a.startswith("securityhub:") for a in _actions(s))]
    [grant] = [s for s in statements("true") if any(a.startswith("securityhub:") for a in _actions(s))]
    assert _actions(grant) == {"securityhub:BatchImportFindings"}
    assert grant["Resource"] == f"arn:aws:securityhub:*:{MEMBER}:product/{MEMBER}/default"

    def may_import(product_arn: str) -> bool:
        ctx = RequestContext.iam(HUB_ROLES[0], "securityhub:BatchImportFindings", resource=product_arn)
        return evaluate({"Statement": [grant]}, ctx)

    assert may_import(f"arn:aws:securityhub:eu-west-1:{MEMBER}:product/{MEMBER}/default")
    assert not may_import(f"arn:aws:securityhub:eu-west-1:{HUB}:product/{HUB}/default")  # another account's
    assert not may_import(f"arn:aws:securityhub:eu-west-1:{MEMBER}:product/prowler/prowler")  # a partner product
    ctx = RequestContext.iam(HUB_ROLES[0], "securityhub:BatchUpdateFindings",
                             resource=f"arn:aws:securityhub:eu-west-1:{MEMBER}:hub/default")
    assert not any(evaluate({"Statement": [s]}, ctx) for s in statements("true"))
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in hub_tpl["Resources"]["SpokeStackSet"]["Properties"]["Parameters"]}
    assert params["SecurityHubFindings"] == {"Ref": "SecurityHubFindings"}


def test_spoke_role_is_created_once_per_account_in_the_first_governed_region() -> None:
    role = spoke_tpl["Resources"]["RemediationRole"]
    assert role["Condition"] == "CreateRemediationRole"
    assert spoke_tpl["Conditions"]["CreateRemediationRole"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "RoleRegion"}]}
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in hub_tpl["Resources"]["SpokeStackSet"]["Properties"]["Parameters"]}
    assert params["RoleRegion"] == {"Fn::Select": [0, {"Ref": "SpokeRegions"}]}


# --- spoke: forwarding ---------------------------------------------------------------------------------


def _hub_pattern() -> dict[str, Any]:
    events = hub_tpl["Resources"]["OnChangeFunction"]["Properties"]["Events"]
    [rule] = [e for e in events.values() if e["Type"] == "EventBridgeRule"]
    return rule["Properties"]["Pattern"]


def test_spoke_forwards_what_the_hub_rule_listens_for_to_the_hub_bus_with_a_role() -> None:
    rule = template.resource_properties("ForwardEndpointChanges", path=template.SPOKE_TEMPLATE,
                                        overrides={"HubEventBusArn": HUB_BUS},
                                        resources={"ForwarderRole.Arn": "arn:aws:iam::222222222222:role/fwd"})
    assert rule["EventBusName"] == "default" and rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == HUB_BUS and target["RoleArn"] == "arn:aws:iam::222222222222:role/fwd"
    spoke, hub = rule["EventPattern"], _hub_pattern()
    for key in ("source", "detail-type"):
        assert spoke[key] == hub[key]
    assert spoke["detail"]["eventSource"] == hub["detail"]["eventSource"]
    assert set(spoke["detail"]["eventName"]) == set(hub["detail"]["eventName"]), (
        "templates/spoke.yaml must forward every eventName the hub's on-change rule matches")
    assert spoke["detail"]["errorCode"] == [{"exists": False}]


def test_forwarder_role_can_only_put_events_on_the_hub_bus_for_this_account() -> None:
    props = template.resource_properties("ForwarderRole", path=template.SPOKE_TEMPLATE,
                                         overrides={"HubEventBusArn": HUB_BUS}, resources={"AWS::AccountId": MEMBER})
    [trust] = _statements(props["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MEMBER}}
    [policy] = props["Policies"]
    [stmt] = _statements(policy["PolicyDocument"])
    assert _actions(stmt) == {"events:PutEvents"} and stmt["Resource"] == HUB_BUS


def test_spoke_retains_nothing_so_a_removed_account_keeps_no_orphaned_role() -> None:
    for name, res in spoke_tpl["Resources"].items():
        assert res.get("DeletionPolicy", "Delete") == "Delete", name
        assert res.get("UpdateReplacePolicy", "Delete") == "Delete", name


# --- StackSet --------------------------------------------------------------------------------------------


def test_stackset_is_service_managed_auto_deploying_and_complete() -> None:
    props = hub_tpl["Resources"]["SpokeStackSet"]["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert "CAPABILITY_NAMED_IAM" in props["Capabilities"]
    assert (template.ROOT / props["TemplateURL"]).resolve() == template.SPOKE_TEMPLATE.resolve()
    [group] = props["StackInstancesGroup"]
    assert group["DeploymentTargets"]["OrganizationalUnitIds"] == {"Ref": "SpokeOrganizationalUnitIds"}
    assert group["Regions"] == {"Ref": "SpokeRegions"}
    passed = {p["ParameterKey"] for p in props["Parameters"]}
    spoke_params = spoke_tpl["Parameters"]
    assert passed <= set(spoke_params)
    assert {k for k, v in spoke_params.items() if "Default" not in v} <= passed
    assert {"HubAccountId", "HubEventBusArn", "OrganizationId", "RemediationRoleName"} <= passed


# --- sweep wiring ----------------------------------------------------------------------------------------


def test_sweep_runs_on_a_daily_schedule_and_fans_out_through_sqs_with_partial_failures_and_a_dlq() -> None:
    res = hub_tpl["Resources"]
    [schedule] = res["SweepFunction"]["Properties"]["Events"].values()
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "SweepSchedule"}
    assert hub_tpl["Parameters"]["SweepSchedule"]["Default"] == "rate(1 day)"
    [sqs] = res["SweepWorkerFunction"]["Properties"]["Events"].values()
    assert sqs["Type"] == "SQS" and sqs["Properties"]["Queue"] == {"Fn::GetAtt": ["SweepQueue", "Arn"]}
    assert sqs["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs["Properties"]["BatchSize"] == {"Ref": "SweepBatchSize"}
    queue = res["SweepQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["SweepDeadLetterQueue", "Arn"]}
    # The worker records a transient failure on the last delivery, so it must know which one that is.
    assert queue["RedrivePolicy"]["maxReceiveCount"] == sweep.MAX_RECEIVES
    assert queue["VisibilityTimeout"] >= 6 * res["SweepWorkerFunction"]["Properties"]["Timeout"]
    env = res["SweepFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SWEEP_QUEUE_URL"] == {"Ref": "SweepQueue"}
    assert env["SWEEP_REGIONS"] == {"Fn::Join": [",", {"Ref": "SpokeRegions"}]}


# --- linters ---------------------------------------------------------------------------------------------


def _sam() -> str | None:
    import os

    pinned = template.ROOT / ".venv-sam" / "bin" / "sam"  # `make sam-venv`
    return os.environ.get("SAM_CLI") or (str(pinned) if pinned.exists() else None) or shutil.which("sam")


@pytest.mark.parametrize("path", template.TEMPLATES, ids=lambda p: str(Path(p).relative_to(template.ROOT)))
def test_sam_validate_lint_is_clean(path: Path) -> None:
    sam = _sam()
    if sam is None:
        pytest.skip("SAM CLI not installed (`make sam-venv`, or SAM_CLI=/path/to/sam); `make validate` runs it")
    proc = subprocess.run([sam, "validate", "--lint", "--region", "us-east-1", "-t", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
