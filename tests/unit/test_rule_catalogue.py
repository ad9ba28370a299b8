"""The README's rule table, the rule registry, the EventBridge pattern, the event parser and the IAM policy agree."""

from __future__ import annotations

import re
from pathlib import Path

import botocore.session
from botocore import xform_name

from devkit import template
from vpce_guard import events
from vpce_guard.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "vpce_guard" / "vpce_guard"


def _readme_rules() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## What it checks", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", row).group(1): [c.strip() for c in row.strip("|").split("|")]  # type: ignore[union-attr]
            for row in rows}


def _pattern_event_names() -> list[str]:
    props = template.load()["Resources"]["OnChangeFunction"]["Properties"]
    return props["Events"]["EndpointOrRouteChange"]["Properties"]["Pattern"]["detail"]["eventName"]


def test_every_registered_rule_has_exactly_one_row_in_the_readme_table() -> None:
    assert sorted(_readme_rules()) == sorted(r.id for r in all_rules())


def test_readme_row_says_whether_the_fix_is_on_by_default_and_names_the_triggers() -> None:
    rows = _readme_rules()
    for rule in all_rules():
        row = rows[rule.id]
        assert row[3] in ("yes", "no", "—"), row
        assert (row[3] == "yes") == rule.fix_by_default, (rule.id, row[3])
        for trigger in rule.triggers:
            assert trigger in row[4], (rule.id, trigger)


def test_every_trigger_is_in_the_eventbridge_pattern_and_parsed() -> None:
    pattern = set(_pattern_event_names())
    triggers = {t for r in all_rules() for t in r.triggers}
    assert triggers <= pattern
    assert pattern <= events.SUPPORTED_EVENTS
    assert {"DeleteVpcEndpoints", "ModifyVpcAttribute", "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress", "ModifySecurityGroupRules"} <= pattern


def test_every_event_in_the_pattern_has_a_realistic_event_file() -> None:
    names = {__import__("json").loads(p.read_text())["detail"]["eventName"] for p in (ROOT / "events").glob("*.json")}
    assert set(_pattern_event_names()) <= names


def _ec2_calls_in_code() -> set[str]:
    """EC2 operations the layer calls: client methods (`ec2.modify_vpc_attribute(`) and paginated/batched
    operation names (`"describe_subnets"`)."""
    found: set[str] = set()
    for path in LAYER.rglob("*.py"):
        text = path.read_text()
        found |= set(re.findall(r"\bec2\.([a-z_]+)\(", text))
        found |= set(re.findall(r'(?:_paginate\(\s*self\.ec2,\s*|_by_ids\(\s*|get_paginator\(\s*)"([a-z_]+)"', text))
    ec2_model = botocore.session.get_session().get_service_model("ec2")
    ec2_operations = {xform_name(op): op for op in ec2_model.operation_names}
    return {f"ec2:{ec2_operations[op]}" for op in found if op in ec2_operations}


def _ec2_actions_in_policy() -> set[str]:
    props = template.load()["Resources"]["OnChangeFunction"]["Properties"]
    out: set[str] = set()
    for raw in props["Policies"][0]["Statement"]:
        stmt = raw["Fn::If"][1] if "Fn::If" in raw else raw  # conditional grants: the granted branch
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        out |= {a for a in actions if a.startswith("ec2:")}
    return out


def test_function_policy_grants_exactly_the_ec2_calls_the_code_makes() -> None:
    # CreateTags is not a call of ours: CreateVpcEndpoint with TagSpecifications needs it.
    assert _ec2_actions_in_policy() - {"ec2:CreateTags"} == _ec2_calls_in_code()
