"""The compliance rule agrees with the IAM evaluator on AWS's published data-perimeter endpoint policies.

`test_policy.py` pins the rule's verdict on them; here the independent evaluator (tests/support/iam_eval.py)
judges the same documents request by request: the ones the rule calls compliant let no outsider through
and still let the organization in (so they are left as they are, rightly), and the one it flags (S3's,
which opens AWS-owned and partner buckets on purpose) really does let an outsider through.
"""

from __future__ import annotations

import json
import re
from itertools import product

import pytest

from tests.support.iam_eval import RequestContext, evaluate
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
