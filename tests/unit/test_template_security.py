"""Template security: who can reach what, decided by the IAM evaluator on the templates' own policies.

- the spoke's remediation role can be assumed only by the hub's function roles, and only while they are
  principals of the organization; it can do only what the hub functions do (templates/spoke.yaml);
- the hub bus accepts events only from principals of the organization;
- roles that trust an AWS service are pinned to this account (aws:SourceAccount/SourceArn: no confused
  deputy);
- every DynamoDB table and SQS queue is encrypted at rest.

The organization checks apply once the templates have those resources (they arrive with the organization
work); until then they skip, saying why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devkit import template
from tests.support import iam_actions
from tests.support.iam_eval import RequestContext, evaluate

ROOT = Path(__file__).resolve().parents[2]
SPOKE_TEMPLATE = ROOT / "templates" / "spoke.yaml"
TEMPLATES = [ROOT / "template.yaml", *sorted((ROOT / "templates").glob("*.yaml"))]

ORG, OTHER_ORG = "o-exampleorg1", "o-otherorg99"
HUB, MEMBER, STRANGER = "111122223333", "444455556666", "777788889999"
HUB_ROLES = [f"arn:aws:iam::{HUB}:role/vpce-guard-OnChangeFunctionRole-ABC",
             f"arn:aws:iam::{HUB}:role/vpce-guard-SweepWorkerFunctionRole-DEF"]
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::StackName": "vpce-guard"}


def _resources(path: Path, **types: str) -> dict[str, dict[str, Any]]:
    tpl = template.load(path)
    wanted = set(types.values())
    return {k: v for k, v in tpl.get("Resources", {}).items() if v.get("Type") in wanted}


def _physical(node: Any, logical_ids: set[str], out: dict[str, str]) -> dict[str, str]:
    """Stand-in physical names for every resource Ref and GetAtt in the template (what the checks need
    is the policies' structure and the parameters, not real ARNs of other resources)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::GetAtt"} and isinstance(node["Fn::GetAtt"], list):
            out[".".join(map(str, node["Fn::GetAtt"]))] = "arn:aws:resource:::" + "/".join(map(str, node["Fn::GetAtt"]))
        if set(node) == {"Fn::Sub"}:  # ${Resource.Attribute} inside a Sub string is a GetAtt too
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            for lid, attr in re.findall(r"\$\{([A-Za-z0-9]+)\.([A-Za-z0-9.]+)\}", text):
                if lid in logical_ids:
                    out[f"{lid}.{attr}"] = f"arn:aws:resource:::{lid}/{attr}"
        for value in node.values():
            _physical(value, logical_ids, out)
    elif isinstance(node, list):
        for value in node:
            _physical(value, logical_ids, out)
    out.update({lid: f"physical-{lid}" for lid in logical_ids})
    return out


def _resolved(path: Path, account: str, params: dict[str, Any]) -> dict[str, Any]:
    tpl = template.load(path)
    values: dict[str, Any] = {**template.parameter_values(tpl), **params}
    for name, spec in tpl.get("Parameters", {}).items():  # list parameters as CloudFormation passes them
        if spec.get("Type") == "CommaDelimitedList" and isinstance(values[name], str):
            values[name] = [v for v in values[name].split(",") if v] or [f"example-{name}"]
    # Conditional parts (opt-in grants) as deployed with these parameters.
    resources = template.resolve_if(tpl["Resources"], template.conditions(
        tpl, {k: v for k, v in params.items() if isinstance(v, str)}))
    physical = _physical(resources, set(resources), {})
    return template.resolve(resources, values, {**physical, **PSEUDO, "AWS::AccountId": account})


# --------------------------------------------------------------------------------------------- encryption
@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_tables_and_queues_are_encrypted_at_rest(path: Path) -> None:
    for name, res in _resources(path, t="AWS::DynamoDB::Table").items():
        assert res["Properties"].get("SSESpecification", {}).get("SSEEnabled") is True, name
    for name, res in _resources(path, q="AWS::SQS::Queue").items():
        props = res["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), name


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_roles_trusting_a_service_are_pinned_to_the_account(path: Path) -> None:
    resources = _resolved(path, MEMBER, {"OrganizationId": ORG, "HubAccountId": HUB, "HubPrincipalArns": HUB_ROLES})
    for name, res in resources.items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        for stmt in res["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            principal = stmt.get("Principal", {})
            if isinstance(principal, dict) and "Service" in principal:
                keys = {k.lower() for block in stmt.get("Condition", {}).values() for k in block}
                assert keys & {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"}, name


# --------------------------------------------------------------------------------------------- spoke
def _spoke_roles() -> dict[str, dict[str, Any]]:
    if not SPOKE_TEMPLATE.exists():
        pytest.skip("templates/spoke.yaml does not exist yet (organization work)")
    resources = _resolved(SPOKE_TEMPLATE, MEMBER, {
        "OrganizationId": ORG, "HubAccountId": HUB, "HubPrincipalArns": HUB_ROLES,
        "HubEventBusArn": f"arn:aws:events:us-east-1:{HUB}:event-bus/vpce-guard-hub"})
    roles = {}
    for name, res in resources.items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        statements = res["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        if any(isinstance(s.get("Principal"), dict) and "AWS" in s["Principal"] for s in statements):
            roles[name] = res["Properties"]
    assert roles, "the spoke template has no role that AWS principals can assume"
    return roles


def _assume(principal_arn: str, org: str | None) -> RequestContext:
    return RequestContext.iam(principal_arn, "sts:AssumeRole", "*", org)


def test_spoke_role_trusts_only_the_hub_function_roles_of_the_organization() -> None:
    for name, props in _spoke_roles().items():
        trust = props["AssumeRolePolicyDocument"]
        for hub_role in HUB_ROLES:
            assert evaluate(trust, _assume(hub_role, ORG)), (name, hub_role)
            assert not evaluate(trust, _assume(hub_role, OTHER_ORG)), "a hub role outside the organization"
            assert not evaluate(trust, _assume(hub_role, None)), "a hub account that left the organization"
        denied = [
            f"arn:aws:iam::{HUB}:role/SomeOtherRoleInTheHub",
            f"arn:aws:iam::{HUB}:root",
            f"arn:aws:iam::{MEMBER}:role/vpce-guard-OnChangeFunctionRole-ABC",  # same name, a member account
            f"arn:aws:iam::{MEMBER}:root",
            f"arn:aws:iam::{STRANGER}:role/attacker",
        ]
        for arn in denied:
            assert not evaluate(trust, _assume(arn, ORG)), (name, arn)
        assert not evaluate(trust, RequestContext.anonymous("sts:AssumeRole"))
        assert not evaluate(trust, RequestContext.service("ec2.amazonaws.com", "sts:AssumeRole"))


def test_spoke_role_can_do_only_what_the_hub_functions_do_and_writes_are_scoped() -> None:
    hub = template.load()
    hub_ec2 = set()
    for function in template.functions(hub):
        statements, _ = iam_actions.policy_statements(hub["Resources"][function]["Properties"])
        hub_ec2 |= {a for a in iam_actions.granted_actions(statements) if a.startswith("ec2:")}
    static = iam_actions.static_operations()
    for name, props in _spoke_roles().items():
        statements = [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
        granted = iam_actions.granted_actions(statements)
        assert granted <= hub_ec2, f"{name} grants {sorted(granted - hub_ec2)}, which no hub function has"
        assert all(iam_actions.allows(static, a) or a in static for a in granted), name
        for stmt in statements:
            actions = iam_actions._listify(stmt["Action"])
            if any(not a.split(":", 1)[1].startswith("Describe") for a in actions):
                assert stmt["Resource"] not in ("*", ["*"]), f"{name}: {actions} on every resource"
        assert not props.get("ManagedPolicyArns"), f"{name}: managed policies grant more than the code needs"


# --------------------------------------------------------------------------------------------- hub bus
def _bus_policies() -> list[tuple[str, dict[str, Any], str]]:
    resources = _resolved(ROOT / "template.yaml", HUB, {"OrganizationId": ORG})
    out = []
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Events::EventBus" and props.get("Policy"):
            bus_arn = f"arn:aws:events:us-east-1:{HUB}:event-bus/{props.get('Name', name)}"
            out.append((name, props["Policy"], bus_arn))
        elif res.get("Type") == "AWS::Events::EventBusPolicy":
            statement = props.get("Statement") or {
                "Effect": "Allow", "Action": props.get("Action"), "Principal": {"AWS": props.get("Principal")},
                **({"Condition": {props["Condition"]["Type"]: {props["Condition"]["Key"]: props["Condition"]["Value"]}}}
                   if props.get("Condition") else {})}
            out.append((name, {"Version": "2012-10-17", "Statement": [statement]}, "*"))
    if not out:
        pytest.skip("template.yaml has no hub event bus yet (organization work)")
    return out


def test_hub_bus_accepts_events_only_from_principals_of_the_organization() -> None:
    for name, policy, bus_arn in _bus_policies():
        def put(arn: str, org: str | None, bus: str = bus_arn) -> RequestContext:
            return RequestContext.iam(arn, "events:PutEvents", bus, org)

        assert evaluate(policy, put(f"arn:aws:iam::{MEMBER}:role/vpce-guard-forwarder", ORG)), name
        assert not evaluate(policy, put(f"arn:aws:iam::{STRANGER}:role/forwarder", OTHER_ORG)), name
        assert not evaluate(policy, put(f"arn:aws:iam::{STRANGER}:role/forwarder", None)), name
        assert not evaluate(policy, RequestContext.anonymous("events:PutEvents", bus_arn)), name
        assert not evaluate(policy, RequestContext.service("events.amazonaws.com", "events:PutEvents", bus_arn)), name
