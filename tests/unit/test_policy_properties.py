"""Property tests: `analyse` and `confine` against the independent IAM evaluator.

Hypothesis builds endpoint policies from a small vocabulary (principals, actions, resources with
wildcards, conditions on the org/account/service keys with every operator variant) and each one is
judged against a fixed grid of requests: every caller kind x action x resource below. The grid is
small enough to check exhaustively per policy, so a property that holds here holds for every
request in the vocabulary, not just a sample.

Callers: insiders of org A and org B, an outsider in org C, an outsider in org "A99" (whose id
starts with A's: prefix checks on org paths must include the slash), a standalone account with no
org, an anonymous caller and an AWS service principal. The allowed orgs are drawn per example ({A} or
{A, B}), so org B's caller is an insider in some worlds and an outsider in others.

Worlds also differ in their exempt AWS-owned resources (none, an Amazon Linux repository bucket, or
that and the partner bucket), as `confine`/`analyse` get them for S3 endpoints. The grid holds an object
of the repository bucket (exempt), the bucket itself (not: the pattern is for objects) and a bucket whose
name starts with the repository's (not), so prefix mistakes show up. With an exemption the promise
becomes "no outsider is allowed anything outside the exempt resources, and requests on exempt resources
are decided exactly as before the fix".

Set HYPOTHESIS_EXAMPLES to run more (or fewer) examples.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.iam_eval import RequestContext, evaluate, glob_match
from vpce_guard import policy
from vpce_guard.policy import GUARD_SID, MAX_POLICY_CHARS

SETTINGS = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ORG_A, ORG_B, ORG_C = "o-aaaaaaaaaa", "o-bbbbbbbbbb", "o-cccccccccc"
ORG_A99 = ORG_A + "99"  # org ids are 10 to 32 characters after "o-"
ACCT_A, ACCT_B, ACCT_C, ACCT_N = "111111111111", "222222222222", "333333333333", "444444444444"
ACCT_A99 = "555555555555"
ARN_A = f"arn:aws:iam::{ACCT_A}:role/app"
ARN_B = f"arn:aws:iam::{ACCT_B}:user/bob"
ARN_C = f"arn:aws:iam::{ACCT_C}:role/app"
ARN_N = f"arn:aws:iam::{ACCT_N}:root"
ARN_A99 = f"arn:aws:iam::{ACCT_A99}:role/app"
SERVICE = "ec2.amazonaws.com"
ORG_AWS = "o-awsowned000"  # stands for the organization of an AWS-owned bucket: none of ours
REPO_BUCKET = "arn:aws:s3:::al2023-repos-eu-west-1-de612dc2"
EXEMPT_REPO = REPO_BUCKET + "/*"
EXEMPT_PARTNER = "arn:aws:s3:::partner-bucket/*"

ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:ListBucket", "dynamodb:GetItem")
RESOURCE_ORG = {
    "arn:aws:s3:::corp-data/report.csv": ORG_A,
    "arn:aws:s3:::corp-data": ORG_A,
    "arn:aws:s3:::partner-bucket/x": ORG_C,
    "arn:aws:dynamodb:eu-west-1:111111111111:table/orders": ORG_A,
    REPO_BUCKET + "/core/mirrors/latest/x86_64/mirror.list": ORG_AWS,
    REPO_BUCKET: ORG_AWS,
    REPO_BUCKET + "-copy/x": ORG_C,
}


@dataclass(frozen=True)
class Caller:
    """One request in the grid, with the facts the properties need about who is asking."""

    ctx: RequestContext
    org_id: str | None
    is_service: bool

    def is_insider(self, world: World) -> bool:
        return self.org_id in world.allowed_orgs

    def is_outsider(self, world: World) -> bool:
        return not self.is_service and self.org_id not in world.allowed_orgs


def _grid() -> tuple[Caller, ...]:
    callers = []
    for action in ACTIONS:
        for resource, resource_org in RESOURCE_ORG.items():
            extra = {"resource_org_id": resource_org}
            callers += [
                Caller(RequestContext.iam(ARN_A, action, resource, ORG_A, org_paths=[f"{ORG_A}/r-aaaa/ou-aaaa-1/"], **extra), ORG_A, False),
                Caller(RequestContext.iam(ARN_B, action, resource, ORG_B, org_paths=[f"{ORG_B}/r-bbbb/"], **extra), ORG_B, False),
                Caller(RequestContext.iam(ARN_C, action, resource, ORG_C, org_paths=[f"{ORG_C}/r-cccc/"], **extra), ORG_C, False),
                Caller(RequestContext.iam(ARN_A99, action, resource, ORG_A99, org_paths=[f"{ORG_A99}/r-dddd/"], **extra), ORG_A99, False),
                Caller(RequestContext.iam(ARN_N, action, resource, **extra), None, False),
                Caller(RequestContext.anonymous(action, resource, **extra), None, False),
                Caller(RequestContext.service(SERVICE, action, resource, **extra), None, True),
            ]  # fmt: skip
    return tuple(callers)


GRID = _grid()


@dataclass(frozen=True)
class World:
    """The configuration `analyse`/`confine` are called with."""

    allowed_orgs: tuple[str, ...]
    org_accounts: tuple[str, ...]  # empty: the caller did not pass the org's account list
    exempt: tuple[str, ...] = ()  # AWS-owned resources outside the perimeter (an S3 endpoint's)

    def is_exempt(self, caller: Caller) -> bool:
        return any(glob_match(pattern, caller.ctx.resource) for pattern in self.exempt)

    def analyse(self, doc: object) -> policy.PolicyVerdict:
        return policy.analyse(doc, self.allowed_orgs, self.org_accounts, aws_owned_resource_arns=self.exempt)

    def confine(self, doc: object) -> policy.ConfineResult:
        return policy.confine(doc, self.allowed_orgs, self.org_accounts, aws_owned_resource_arns=self.exempt)


WORLDS = st.sampled_from(
    [
        World(orgs, accounts, exempt)
        for orgs, accounts in [
            ((ORG_A,), (ACCT_A,)),
            ((ORG_A,), ()),
            ((ORG_A, ORG_B), (ACCT_A, ACCT_B)),
            ((ORG_A, ORG_B), ()),
        ]
        for exempt in [(), (), (EXEMPT_REPO,), (EXEMPT_REPO, EXEMPT_PARTNER)]
    ]
)

# --------------------------------------------------------------------------------------------
# Policy strategies
# --------------------------------------------------------------------------------------------

KEY_VALUES: dict[str, list[object]] = {
    "aws:PrincipalOrgID": [ORG_A, ORG_B, ORG_C, ORG_A.upper(), "o-*", "*", "${aws:PrincipalOrgID}"],
    "aws:PrincipalAccount": [ACCT_A, ACCT_B, ACCT_C, ACCT_N, "1111*"],
    "aws:PrincipalIsAWSService": ["true", "false", True, False],
    "aws:PrincipalOrgPaths": [
        f"{ORG_A}/*",
        f"{ORG_A}/r-aaaa/*",
        f"{ORG_A}/r-aaaa/ou-aaaa-1/",
        f"{ORG_B}/*",
        f"{ORG_C}/*",
        f"{ORG_A}*",
        "o-*",
        "*",
    ],
    "aws:PrincipalArn": [
        ARN_A,
        ARN_C,
        f"arn:aws:iam::{ACCT_A}:*",
        f"arn:aws:iam::{ACCT_B}:user/*",
        "arn:aws:iam::*:role/app",
    ],
    "aws:ResourceOrgID": [ORG_A, ORG_C],
}
BASE_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "Bool",
    "ArnLike",
    "ArnNotLike",
    "ArnEquals",
    "ArnNotEquals",
    "Null",
    "NumericEquals",  # unknown to both sides: never confines, never holds
]
PRINCIPALS: list[object] = [
    "*",
    {"AWS": "*"},
    {"AWS": ACCT_A},
    {"AWS": f"arn:aws:iam::{ACCT_B}:root"},
    {"AWS": ARN_A},
    {"AWS": [ARN_A, ACCT_C]},
    {"AWS": ARN_C},
    {"AWS": ACCT_N},
    {"Service": SERVICE},
    {"Service": ["s3.amazonaws.com"]},
    {"Service": SERVICE, "AWS": ACCT_A},
    {"Federated": "cognito-identity.amazonaws.com"},
]
ACTION_PATTERNS = [
    "*",
    "s3:*",
    "s3:GetObject",
    "s3:PutObject",
    "s3:Get*",
    "S3:getobject",
    "s3:?utObject",
    "s3:List*",
    "dynamodb:GetItem",
    "dynamodb:*",
]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:s3:::corp-data/*",
    "arn:aws:s3:::corp-data",
    "arn:aws:s3:::corp-*",
    "arn:aws:s3:::CORP-DATA/*",
    "arn:aws:s3:::partner-bucket/*",
    "arn:aws:dynamodb:*:*:table/*",
    EXEMPT_REPO,
    REPO_BUCKET + "/core/*",
    REPO_BUCKET,
    REPO_BUCKET + "*",
]
CONFINING_CANDIDATES: list[dict] = [
    {"StringEquals": {"aws:PrincipalOrgID": ORG_A}},
    {"StringEquals": {"aws:PrincipalOrgID": [ORG_A, ORG_B]}},
    {"ForAnyValue:StringEqualsIgnoreCase": {"aws:PrincipalOrgID": ORG_A.upper()}},
    {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORG_A}/*"}},
    {"StringLike": {"aws:principalorgpaths": [f"{ORG_A}/r-aaaa/*", f"{ORG_B}/*"]}},
    {"StringEquals": {"aws:PrincipalAccount": [ACCT_A]}},
    {"StringEquals": {"aws:PrincipalAccount": [ACCT_A, ACCT_B]}},
    {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT_A}:*"}},
    {"Bool": {"aws:PrincipalIsAWSService": "true"}},
    # near misses, each one a false negative some tool has shipped
    {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG_A}},
    {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ORG_A}},
    {"ForAllValues:StringLike": {"aws:PrincipalOrgPaths": f"{ORG_A}/*"}},
    {"BoolIfExists": {"aws:PrincipalIsAWSService": "true"}},
    {"StringEquals": {"aws:PrincipalOrgID": [ORG_A, ORG_C]}},
    {"StringLike": {"aws:PrincipalOrgPaths": f"{ORG_A}*"}},
]


def _maybe_single(draw: st.DrawFn, values: list) -> object:
    return values[0] if len(values) == 1 and draw(st.booleans()) else values


def _element(patterns: list[str]) -> st.SearchStrategy[object]:
    return st.one_of(st.sampled_from(patterns), st.lists(st.sampled_from(patterns), min_size=1, max_size=3))


@st.composite
def _operator(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(BASE_OPERATORS))
    if name != "Null":
        if draw(st.booleans()):
            name += "IfExists"
        name = draw(st.sampled_from(["", "", "ForAnyValue:", "ForAllValues:"])) + name
    return draw(st.sampled_from([name, name.lower()]))


@st.composite
def _condition(draw: st.DrawFn, max_operators: int = 3) -> dict:
    condition: dict = {}
    for _ in range(draw(st.sampled_from([n for n in (0, 0, 1, 1, 2, 3) if n <= max_operators]))):
        block = condition.setdefault(draw(_operator()), {})
        for key in draw(st.lists(st.sampled_from(sorted(KEY_VALUES)), min_size=1, max_size=2, unique=True)):
            values = draw(st.lists(st.sampled_from(KEY_VALUES[key]), min_size=1, max_size=3, unique=True))
            block[draw(st.sampled_from([key, key.lower()]))] = _maybe_single(draw, values)
    return condition


def _merge(*conditions: dict) -> dict:
    merged: dict = {}
    for condition in conditions:
        for operator, block in condition.items():
            merged.setdefault(operator, {}).update(block)
    return merged


@st.composite
def _random_statement(draw: st.DrawFn) -> dict:
    stmt: dict = {}
    if draw(st.booleans()):
        stmt["Sid"] = draw(st.sampled_from(["S1", "S2", GUARD_SID, GUARD_SID + "2"]))
    stmt["Effect"] = draw(st.sampled_from(["Allow", "Allow", "Deny"]))
    stmt[draw(st.sampled_from(["Principal"] * 5 + ["NotPrincipal"]))] = draw(st.sampled_from(PRINCIPALS))
    stmt[draw(st.sampled_from(["Action"] * 4 + ["NotAction"]))] = draw(_element(ACTION_PATTERNS))
    stmt[draw(st.sampled_from(["Resource"] * 4 + ["NotResource"]))] = draw(_element(RESOURCE_PATTERNS))
    condition = draw(_condition())
    if condition:
        stmt["Condition"] = condition
    return stmt


@st.composite
def _nearly_confined_allow(draw: st.DrawFn) -> dict:
    """An Allow for everyone, held in (or almost) by one org/account/service condition."""
    stmt: dict = {"Effect": "Allow"}
    element, principal = draw(
        st.sampled_from([("Principal", "*"), ("Principal", {"AWS": "*"}), ("NotPrincipal", {"AWS": ACCT_N})])
    )
    stmt[element] = principal
    stmt[draw(st.sampled_from(["Action"] * 3 + ["NotAction"]))] = draw(_element(ACTION_PATTERNS))
    stmt["Resource"] = draw(_element(RESOURCE_PATTERNS))
    noise = draw(st.one_of(st.just({}), _condition(max_operators=1)))
    stmt["Condition"] = _merge(noise, draw(st.sampled_from(CONFINING_CANDIDATES)))
    return stmt


def _guard_like_deny() -> dict:
    return {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": [ORG_A]},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    }


def _swap(stmt: dict, old: str, new: str, value: object) -> None:
    del stmt[old]
    stmt[new] = value


def _set_condition(stmt: dict, operator: str, key: str, value: object) -> None:
    stmt.setdefault("Condition", {}).setdefault(operator, {})[key] = value


def _rename_operator(stmt: dict, old: str, new: str) -> None:
    stmt["Condition"][new] = stmt["Condition"].pop(old)


#: One-step variations of a perimeter Deny: some keep it a guard, some quietly break it.
DENY_TWEAKS: list = [
    lambda s: s.update(Principal={"AWS": "*"}),
    lambda s: _swap(s, "Principal", "NotPrincipal", {"AWS": ACCT_N}),
    lambda s: s.update(Action=["s3:*"]),
    lambda s: s.update(Action=["s3:*", "dynamodb:*"]),
    lambda s: s.update(Action="s3:Get*"),
    lambda s: s.update(Resource="arn:aws:s3:::corp-*"),
    lambda s: s.update(Resource=["arn:aws:s3:::corp-data/*", "arn:aws:dynamodb:*:*:table/*"]),
    lambda s: _swap(s, "Resource", "NotResource", "arn:aws:s3:::partner-bucket/*"),
    lambda s: _swap(s, "Resource", "NotResource", [EXEMPT_REPO]),
    lambda s: _swap(s, "Resource", "NotResource", [EXEMPT_PARTNER, EXEMPT_REPO]),
    lambda s: _swap(s, "Resource", "NotResource", [REPO_BUCKET + "*"]),
    lambda s: _swap(s, "Resource", "NotResource", [EXEMPT_REPO, REPO_BUCKET]),
    lambda s: _swap(s, "Resource", "NotResource", []),
    lambda s: _rename_operator(s, "StringNotEqualsIfExists", "StringNotEquals"),
    lambda s: _rename_operator(s, "StringNotEqualsIfExists", "StringNotEqualsIgnoreCaseIfExists"),
    lambda s: _rename_operator(s, "StringNotEqualsIfExists", "ForAnyValue:StringNotEquals"),
    lambda s: _rename_operator(s, "StringNotEqualsIfExists", "StringNotLike"),
    lambda s: _rename_operator(s, "StringNotEqualsIfExists", "stringnotequalsifexists"),
    lambda s: _set_condition(s, "StringNotEqualsIfExists", "aws:PrincipalOrgID", [ORG_A, ORG_B]),
    lambda s: _set_condition(s, "StringNotEqualsIfExists", "aws:PrincipalOrgID", [ORG_A, ORG_C]),
    lambda s: _set_condition(s, "StringNotEqualsIfExists", "aws:PrincipalOrgID", ORG_B),
    lambda s: _set_condition(s, "StringNotEqualsIfExists", "aws:PrincipalOrgID", ORG_A.upper()),
    lambda s: _rename_operator(s, "BoolIfExists", "Bool"),
    lambda s: _set_condition(s, "BoolIfExists", "aws:PrincipalIsAWSService", False),
    lambda s: _set_condition(s, "BoolIfExists", "aws:PrincipalIsAWSService", "true"),
    lambda s: s["Condition"].pop("BoolIfExists"),
    lambda s: s.pop("Condition"),
    lambda s: _set_condition(s, "StringNotEqualsIfExists", "aws:PrincipalAccount", [ACCT_N]),
    lambda s: _set_condition(s, "StringNotEquals", "aws:PrincipalAccount", [ACCT_C]),
    lambda s: _set_condition(s, "ArnNotLike", "aws:PrincipalArn", ARN_C),
]


@st.composite
def _org_deny(draw: st.DrawFn) -> dict:
    """A perimeter Deny with one or two variations, so near misses are common rather than rare.

    (The exact guard needs no generating: confine() appends it to every policy it fixes.)
    """
    stmt = _guard_like_deny()
    for tweak in draw(st.lists(st.sampled_from(DENY_TWEAKS), min_size=1, max_size=2)):
        with contextlib.suppress(KeyError):  # an earlier tweak removed what this one changes
            tweak(stmt)
    return stmt


@st.composite
def _open_allow(draw: st.DrawFn) -> dict:
    """The drift this tool exists for: an Allow anyone (anonymous included) can use."""
    return {
        "Effect": "Allow",
        "Principal": draw(st.sampled_from(["*", {"AWS": "*"}])),
        "Action": draw(st.one_of(st.just("*"), _element(ACTION_PATTERNS))),
        "Resource": draw(st.one_of(st.just("*"), _element(RESOURCE_PATTERNS))),
    }


@st.composite
def _aws_owned_allow(draw: st.DrawFn) -> dict:
    """AWS's published shape: anyone may read AWS-owned buckets; here with near misses on the bucket."""
    return {
        "Effect": "Allow",
        "Principal": draw(st.sampled_from(["*", {"AWS": "*"}])),
        "Action": draw(_element(["s3:GetObject", "s3:ListBucket", "*"])),
        "Resource": draw(
            st.lists(
                st.sampled_from([EXEMPT_REPO, EXEMPT_REPO, REPO_BUCKET + "/core/*", EXEMPT_PARTNER, REPO_BUCKET,
                                 REPO_BUCKET + "*", "arn:aws:s3:::corp-data/*"]),
                min_size=1,
                max_size=2,
            )
        ),
    }


@st.composite
def _principal_allow(draw: st.DrawFn) -> dict:
    """An Allow held in (or not) by its Principal alone: services, org accounts, or others."""
    stmt = {
        "Effect": "Allow",
        "Principal": draw(st.sampled_from(PRINCIPALS)),
        "Action": draw(_element(ACTION_PATTERNS)),
        "Resource": "*",
    }
    condition = draw(_condition(max_operators=1))
    if condition:
        stmt["Condition"] = condition
    return stmt


ANY_STATEMENT = st.one_of(_random_statement(), _nearly_confined_allow(), _nearly_confined_allow(), _org_deny())
_RANDOM_DENY = _random_statement().map(lambda stmt: {**stmt, "Effect": "Deny"})
_CONFINED_ALLOW = st.one_of(_nearly_confined_allow(), _nearly_confined_allow(), _principal_allow())


@st.composite
def _policy(draw: st.DrawFn, padding: bool = False, near_compliant: bool = False) -> object:
    """A policy as AWS might return it: JSON text (compact or indented), or a dict, or None."""
    if near_compliant:
        # Compliant, or missing it by one detail: where a wrong verdict hides. Either an open
        # Allow behind a guard-like Deny, or Allows each held in by a condition or a Principal,
        # or an Allow for anyone on (nearly) only AWS-owned resources next to confined ones.
        shape = draw(st.sampled_from(["perimeter", "perimeter", "confined", "confined", "aws-owned"]))
        if shape == "perimeter":
            statements = [draw(_open_allow()), draw(_org_deny())]
        elif shape == "confined":
            statements = draw(st.lists(_CONFINED_ALLOW, min_size=1, max_size=2))
        else:
            statements = [draw(_aws_owned_allow()), *draw(st.lists(_CONFINED_ALLOW, max_size=1))]
        statements = draw(st.permutations(statements + draw(st.lists(_RANDOM_DENY, max_size=1))))
    elif not padding and draw(st.integers(0, 19)) == 0:
        return None  # no policy at all: AWS's full-access default
    else:
        statements = draw(st.lists(ANY_STATEMENT, min_size=1, max_size=4))
    if not near_compliant and draw(st.booleans()):
        # perimeter-shaped: an open Allow next to a guard-like Deny, where a wrong call matters most
        statements += [draw(_open_allow()), draw(_org_deny())]
        statements = draw(st.permutations(statements))
    if padding:
        # Resource ARNs that no grid request uses, to push the document around the size limit.
        count = draw(st.one_of(st.integers(0, 20), st.integers(530, 620)))
        statements.append(
            {
                "Sid": "Padding" + "x" * draw(st.integers(0, 40)),
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteBucket",
                "Resource": [f"arn:aws:s3:::padding-bucket-{i:04d}/*" for i in range(count)],
            }
        )
    doc: dict = {}
    version = draw(st.sampled_from(["2012-10-17", "2008-10-17", None]))
    if version:
        doc["Version"] = version
    doc["Statement"] = statements[0] if len(statements) == 1 and draw(st.booleans()) else statements
    form = draw(st.sampled_from(["dict", "compact", "indented"]))
    if form == "dict":
        return doc
    return json.dumps(doc, indent=2 if form == "indented" else None)


POLICIES = st.one_of(_policy(), _policy(near_compliant=True), _policy(near_compliant=True))


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


def _after(doc: object, result: policy.ConfineResult) -> object:
    return result.document if result.changed else doc


def _label(world: World, doc: object, result: policy.ConfineResult) -> None:
    """Shown with --hypothesis-show-statistics: the mix of cases actually exercised."""
    if result.refused:
        event("refused")
    elif result.changed:
        event("fixed")
    else:
        event("already compliant")
    event(f"{len(world.allowed_orgs)} allowed org(s), {'with' if world.org_accounts else 'without'} account list")
    event(f"{len(world.exempt)} exempt AWS-owned pattern(s)")


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_confine_never_allows_a_request_the_original_denied(world: World, doc: object) -> None:
    result = world.confine(doc)
    _label(world, doc, result)
    if not result.changed:
        return
    for caller in GRID:
        if evaluate(result.document, caller.ctx):
            assert evaluate(doc, caller.ctx), caller.ctx


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_after_confine_no_outsider_is_allowed_anything_outside_the_exempt_resources(world: World, doc: object) -> None:
    result = world.confine(doc)
    assert result.refused is None  # these policies are far below the size limit
    after = _after(doc, result)
    for caller in GRID:
        if caller.is_outsider(world) and not world.is_exempt(caller):
            assert not evaluate(after, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_confine_decides_requests_on_exempt_resources_exactly_as_before(world: World, doc: object) -> None:
    """Anonymous package downloads that worked before the fix still work; nothing new opens there."""
    after = _after(doc, world.confine(doc))
    for caller in GRID:
        if world.is_exempt(caller):
            assert evaluate(after, caller.ctx) == evaluate(doc, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_confine_keeps_every_insider_and_service_request_that_was_allowed(world: World, doc: object) -> None:
    result = world.confine(doc)
    after = _after(doc, result)
    for caller in GRID:
        if (caller.is_insider(world) or caller.is_service) and evaluate(doc, caller.ctx):
            assert evaluate(after, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_confine_is_idempotent(world: World, doc: object) -> None:
    first = world.confine(doc)
    if first.changed:
        assert world.analyse(first.document).compliant
        second = world.confine(first.document)
        assert second == policy.ConfineResult(changed=False, document=None)
    else:
        assert world.analyse(doc).compliant


@SETTINGS
@given(world=WORLDS, doc=_policy(padding=True))
def test_confine_output_is_json_within_the_limit_or_refused_with_a_reason(world: World, doc: object) -> None:
    result = world.confine(doc)
    _label(world, doc, result)
    if result.changed:
        assert result.refused is None
        assert isinstance(json.loads(result.document), dict)
        assert len(result.document) <= MAX_POLICY_CHARS
        fixed = json.loads(result.document)["Statement"]
        original = policy.parse_policy(doc)["Statement"]
        original = original if isinstance(original, list) else [original]
        assert fixed[:-1] == original
        assert fixed[-1]["Sid"] not in {stmt.get("Sid") for stmt in original}
    elif result.refused is not None:
        assert result.document is None
        assert "20,480-character endpoint policy limit" in result.refused
        # refused only because it really would not fit, and the message says by how much
        appended = policy.parse_policy(doc)
        statements = appended["Statement"] if isinstance(appended["Statement"], list) else [appended["Statement"]]
        sids = {stmt.get("Sid") for stmt in statements}
        guard = policy.guard_statement(world.allowed_orgs, world.exempt)
        guard["Sid"] = next(sid for n in range(1, 99) if (sid := GUARD_SID + (str(n) if n > 1 else "")) not in sids)
        appended["Statement"] = [*statements, guard]
        length = len(json.dumps(appended, separators=(",", ":"), ensure_ascii=False))
        assert length > MAX_POLICY_CHARS
        assert f"would be {length:,} characters" in result.refused
    else:
        assert result.document is None
        assert world.analyse(doc).compliant


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_compliant_verdict_means_no_outsider_gets_in_outside_the_exempt_resources(world: World, doc: object) -> None:
    verdict = world.analyse(doc)
    event("compliant" if verdict.compliant else "not compliant")
    if not verdict.compliant:
        assert verdict.reasons
        return
    assert verdict.reasons == ()
    for caller in GRID:
        if caller.is_outsider(world) and not world.is_exempt(caller):
            assert not evaluate(doc, caller.ctx), (caller.ctx, doc)


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_an_exemption_only_ever_relaxes_the_verdict(world: World, doc: object) -> None:
    """Exempting resources can turn "open" into "compliant" (with a note), never the other way."""
    plain = policy.analyse(doc, world.allowed_orgs, world.org_accounts)
    exempted = world.analyse(doc)
    if plain.compliant:
        assert exempted.compliant
    if not world.exempt:
        assert exempted == plain
    assert set(exempted.reasons) <= set(plain.reasons)
    if exempted.notes:
        event("passed through the exemption")
