"""The compliance rule agrees with the IAM evaluator on AWS's published data-perimeter endpoint policies.

`test_policy.py` pins the rule's verdict on them; here the independent evaluator (tests/support/iam_eval.py)
judges the same documents request by request: the ones the rule calls compliant let no outsider through
and still let the organization in (so they are left as they are, rightly), and the one it flags (S3's,
which opens AWS-owned and partner buckets on purpose) really does let an outsider through. A property
test extends this to generated policies built only from statements that confine: the evaluator finds no
outsider let in, and the rule judges every one of them compliant and leaves it as it is.
"""

from __future__ import annotations

import json
import re
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.iam_eval import RequestContext, evaluate
from tests.unit import test_policy_properties as props
from tests.unit.test_policy import DATA_PERIMETER_POLICIES, ORG, OTHER_ORG, OUTSIDE_ACCOUNT, _published
from vpce_guard import policy

INSIDE_ACCOUNT = "111122223333"
SAMPLE_ACTIONS = ("s3:GetObject", "s3:PutObject", "ec2:DescribeInstances", "ec2:RunInstances", "iam:PassRole",
                  "ssm:GetParameter", "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "cloudformation:CreateStack",
                  "sts:AssumeRole")


def _requests(text: str) -> list[tuple[str, str]]:
    """Actions and resources to ask about: samples, plus every one the policy names (wildcards filled)."""
    doc = json.loads(text)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    actions, resources = set(SAMPLE_ACTIONS), {"*", "arn:aws:s3:::corp-bucket/key"}
    for stmt in statements:
        for key, into in (("Action", actions), ("NotAction", actions), ("Resource", resources)):
            values = stmt.get(key, [])
            for value in values if isinstance(values, list) else [values]:
                into.add(re.sub(r"[*?]", "x", str(value)) if value != "*" else "s3:GetObject")
    return sorted(product(sorted(actions), sorted(resources)))


def _outsiders(action: str, resource: str) -> list[RequestContext]:
    return [
        RequestContext.iam(f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/app", action, resource, OTHER_ORG,
                           resource_org_id=OTHER_ORG),
        RequestContext.iam(f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/app", action, resource, OTHER_ORG,
                           resource_org_id=ORG),
        RequestContext.iam(f"arn:aws:iam::{OUTSIDE_ACCOUNT}:user/standalone", action, resource, None),
        RequestContext.anonymous(action, resource),
    ]


def _insider(action: str, resource: str) -> RequestContext:
    return RequestContext.iam(f"arn:aws:iam::{INSIDE_ACCOUNT}:role/app", action, resource, ORG,
                              resource_org_id=ORG)


COMPLIANT = sorted(name for name in DATA_PERIMETER_POLICIES if policy.analyse(_published(name), [ORG]).compliant)


def test_the_published_policies_the_rule_accepts_are_the_expected_ones() -> None:
    assert set(COMPLIANT) == set(DATA_PERIMETER_POLICIES) - {"s3"}


@pytest.mark.parametrize("name", COMPLIANT)
def test_a_policy_judged_compliant_lets_no_outsider_in_and_keeps_the_organization(name: str) -> None:
    text = _published(name)
    requests = _requests(text)
    for action, resource in requests:
        for ctx in _outsiders(action, resource):
            assert not evaluate(text, ctx), (name, ctx)
    assert any(evaluate(text, _insider(a, r)) for a, r in requests), f"{name} lets nobody in: not a useful check"
    assert policy.confine(text, [ORG]) == policy.ConfineResult(changed=False, document=None)


def test_the_policy_the_rule_flags_does_let_an_outsider_in() -> None:
    text = _published("s3")
    assert not policy.analyse(text, [ORG]).compliant
    assert any(evaluate(text, ctx) for a, r in _requests(text) for ctx in _outsiders(a, r))
    fixed = policy.confine(text, [ORG])
    assert fixed.changed and not any(evaluate(fixed.document, ctx) for a, r in _requests(text)
                                     for ctx in _outsiders(a, r))


# --------------------------------------------------------------------------------------------
# The same agreement on generated policies built only from statements that confine
# --------------------------------------------------------------------------------------------


@st.composite
def _confined_statement(draw: st.DrawFn, world: props.World) -> dict:
    """An Allow that only the organization (or AWS services) can use, or any Deny."""
    orgs = sorted(world.allowed_orgs)
    kind = draw(st.sampled_from(["org", "org_paths", "service_bool", "service_principal", "org_account", "deny"]))
    if kind == "deny":
        return {**draw(props._random_statement()), "Effect": "Deny"}
    stmt: dict = {"Effect": "Allow", "Principal": "*", "Action": draw(props._element(props.ACTION_PATTERNS)),
                  "Resource": draw(props._element(props.RESOURCE_PATTERNS))}
    if kind == "org":
        chosen = draw(st.lists(st.sampled_from(orgs), min_size=1, unique=True))
        stmt["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": chosen}}
    elif kind == "org_paths":
        stmt["Condition"] = {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{o}/*" for o in orgs]}}
    elif kind == "service_bool":
        stmt["Condition"] = {"Bool": {"aws:PrincipalIsAWSService": "true"}}
    elif kind == "service_principal":
        stmt["Principal"] = {"Service": props.SERVICE}
    else:
        accounts = sorted(world.org_accounts) or [props.ACCT_A]
        stmt["Principal"] = {"AWS": accounts[0]}
        if not world.org_accounts:  # an account the caller did not say is in the org: confine it by org too
            stmt["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": orgs}}
    return stmt


@st.composite
def _confined_policy(draw: st.DrawFn) -> tuple[props.World, dict]:
    world = draw(props.WORLDS)
    statements = draw(st.lists(_confined_statement(world), min_size=1, max_size=5))
    if draw(st.booleans()):  # an open Allow held in by the exact perimeter Deny
        statements += [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                       policy.guard_statement(world.allowed_orgs)]
    return world, {"Version": "2012-10-17", "Statement": draw(st.permutations(statements))}


@props.SETTINGS
@given(_confined_policy())
def test_a_policy_that_lets_no_outsider_in_is_judged_compliant_and_left_alone(case: tuple[props.World, dict]) -> None:
    world, doc = case
    for caller in props.GRID:
        if caller.is_outsider(world):
            assert not evaluate(doc, caller.ctx), ("the generator must only build confined policies", caller.ctx)
    verdict = policy.analyse(doc, world.allowed_orgs, world.org_accounts)
    assert verdict.compliant, verdict.reasons
    assert policy.confine(doc, world.allowed_orgs, world.org_accounts) == policy.ConfineResult(
        changed=False, document=None)
