"""Property tests of the opt-in resource perimeter (`Perimeter=identity+resource`): `analyse`/`confine` with
`resource_perimeter=True`, judged request by request by the independent evaluator (tests/support/iam_eval.py).

The worlds and policy strategies are those of test_policy_properties.py, plus Allows that pin (or almost pin)
aws:ResourceOrgID and Denies shaped (or almost shaped) like AWS's resource perimeter. The grid adds resources
in org B (an insider resource when B is allowed), a resource whose account is in no organization (the request
carries no aws:ResourceOrgID at all: `IfExists` decides), and the resources of test_policy_properties.py.

What must hold after the fix, for every request in the grid:
- it never widens: nothing is allowed that was denied before;
- no outsider is allowed anything outside the exempt resources;
- no caller but an AWS service principal reaches a resource outside the allowed organizations, exempt
  resources aside (insiders included: that is the resource perimeter);
- insiders keep every request on resources of the allowed organizations that was allowed, and services
  keep everything;
- requests on exempt resources are decided exactly as before;
- the fix is idempotent, and a compliant verdict already means the above.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.iam_eval import RequestContext, evaluate, glob_match
from tests.unit.test_policy_properties import (
    ACCT_A,
    ACCT_A99,
    ACCT_B,
    ACCT_C,
    ACCT_N,
    ACTIONS,
    ANY_STATEMENT,
    ARN_A,
    ARN_A99,
    ARN_B,
    ARN_C,
    ARN_N,
    ORG_A,
    ORG_A99,
    ORG_B,
    ORG_C,
    POLICIES,
    RESOURCE_ORG,
    SERVICE,
    SETTINGS,
    WORLDS,
    World,
    _element,
    _open_allow,
    _org_deny,
)
from vpce_guard import policy
from vpce_guard.policy import RESOURCE_GUARD_SID

#: The resources of the identity grid, one in org B, and one whose account belongs to no organization (None).
RESOURCES: dict[str, str | None] = {
    **RESOURCE_ORG,
    "arn:aws:s3:::b-data/export.csv": ORG_B,
    "arn:aws:s3:::lone-account/x": None,
}
ACTIONS_HERE = ACTIONS[:3]  # s3 only: every resource above is S3 but one table (kept in RESOURCE_ORG)


@dataclass(frozen=True)
class Caller:
    ctx: RequestContext
    org_id: str | None
    is_service: bool
    resource_org: str | None


def _grid() -> tuple[Caller, ...]:
    out = []
    for action in ACTIONS_HERE:
        for resource, org in RESOURCES.items():
            extra = {} if org is None else {"resource_org_id": org}
            out += [
                Caller(RequestContext.iam(ARN_A, action, resource, ORG_A, **extra), ORG_A, False, org),
                Caller(RequestContext.iam(ARN_B, action, resource, ORG_B, **extra), ORG_B, False, org),
                Caller(RequestContext.iam(ARN_C, action, resource, ORG_C, **extra), ORG_C, False, org),
                Caller(RequestContext.iam(ARN_A99, action, resource, ORG_A99, **extra), ORG_A99, False, org),
                Caller(RequestContext.iam(ARN_N, action, resource, **extra), None, False, org),
                Caller(RequestContext.anonymous(action, resource, **extra), None, False, org),
                Caller(RequestContext.service(SERVICE, action, resource, **extra), None, True, org),
            ]  # fmt: skip
    return tuple(out)


GRID = _grid()


def _insider(world: World, caller: Caller) -> bool:
    return caller.org_id in world.allowed_orgs


def _outsider(world: World, caller: Caller) -> bool:
    return not caller.is_service and caller.org_id not in world.allowed_orgs


def _org_resource(world: World, caller: Caller) -> bool:
    return caller.resource_org in world.allowed_orgs


def _exempt(world: World, caller: Caller) -> bool:
    return any(glob_match(p, caller.ctx.resource) for p in world.exempt)


def _confine(world: World, doc: object) -> policy.ConfineResult:
    return policy.confine(doc, world.allowed_orgs, world.org_accounts, aws_owned_resource_arns=world.exempt,
                          resource_perimeter=True)


def _analyse(world: World, doc: object) -> policy.PolicyVerdict:
    return policy.analyse(doc, world.allowed_orgs, world.org_accounts, aws_owned_resource_arns=world.exempt,
                          resource_perimeter=True)


def _after(doc: object, result: policy.ConfineResult) -> object:
    return result.document if result.changed else doc


# --------------------------------------------------------------------------------------------- strategies
RESOURCE_CONDITIONS: list[dict] = [
    {"StringEquals": {"aws:ResourceOrgID": ORG_A}},
    {"StringEquals": {"aws:ResourceOrgID": [ORG_A, ORG_B]}},
    {"StringEqualsIgnoreCase": {"aws:resourceorgid": ORG_A.upper()}},
    {"StringEquals": {"aws:ResourceAccount": [ACCT_A]}},
    {"StringEquals": {"aws:PrincipalOrgID": ORG_A, "aws:ResourceOrgID": ORG_A}},  # AWS's published statement
    {"Bool": {"aws:PrincipalIsAWSService": "true"}},
    # near misses
    {"StringEqualsIfExists": {"aws:ResourceOrgID": ORG_A}},
    {"ForAllValues:StringEquals": {"aws:ResourceOrgID": ORG_A}},
    {"StringEquals": {"aws:ResourceOrgID": [ORG_A, ORG_C]}},
    {"StringLike": {"aws:ResourceOrgID": "o-*"}},
    {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
    {"StringEquals": {"aws:ResourceAccount": [ACCT_A, ACCT_C]}},
    {"StringNotEquals": {"aws:ResourceOrgID": ORG_C}},
    {"BoolIfExists": {"aws:PrincipalIsAWSService": "true"}},
]


@st.composite
def _resource_pinned_allow(draw: st.DrawFn) -> dict:
    """An Allow for everyone or insiders, held to the organization's resources (or almost) by a condition."""
    stmt: dict = {"Effect": "Allow", "Principal": draw(st.sampled_from(["*", {"AWS": "*"}, {"AWS": ACCT_A},
                                                                      {"Service": SERVICE}]))}
    stmt[draw(st.sampled_from(["Action"] * 3 + ["NotAction"]))] = draw(_element(["*", "s3:*", "s3:GetObject",
                                                                                 "s3:Put*"]))
    stmt["Resource"] = draw(st.sampled_from(["*", "arn:aws:s3:::*", ["arn:aws:s3:::corp-data/*"]]))
    stmt["Condition"] = json.loads(json.dumps(draw(st.sampled_from(RESOURCE_CONDITIONS))))
    return stmt


def _resource_guard_like() -> dict:
    return {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
            "Condition": {"StringNotEqualsIfExists": {"aws:ResourceOrgID": [ORG_A]},
                          "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}


def _set(stmt: dict, operator: str, key: str, value: object) -> None:
    stmt.setdefault("Condition", {}).setdefault(operator, {})[key] = value


RESOURCE_DENY_TWEAKS: list = [
    lambda s: s.update(Action="s3:*"),
    lambda s: s.update(Resource="arn:aws:s3:::corp-*"),
    lambda s: s.update(Principal={"AWS": ACCT_N}),
    lambda s: s.update(NotResource=["arn:aws:s3:::partner-bucket/*"]) or s.pop("Resource"),
    lambda s: _set(s, "StringNotEqualsIfExists", "aws:ResourceOrgID", [ORG_A, ORG_C]),
    lambda s: _set(s, "StringNotEqualsIfExists", "aws:ResourceOrgID", [ORG_A, ORG_B]),
    lambda s: s["Condition"].update({"StringNotEquals": s["Condition"].pop("StringNotEqualsIfExists")}),
    lambda s: s["Condition"].update({"ForAnyValue:StringNotEquals": s["Condition"].pop("StringNotEqualsIfExists")}),
    lambda s: s["Condition"].pop("BoolIfExists"),
    lambda s: s["Condition"].update({"Bool": s["Condition"].pop("BoolIfExists")}),
    lambda s: _set(s, "StringNotEquals", "aws:PrincipalAccount", [ACCT_B]),
    lambda s: s.pop("Condition"),
]


@st.composite
def _resource_deny(draw: st.DrawFn) -> dict:
    """A resource-perimeter Deny as AWS publishes it, mostly with one variation (some keep it a guard, some
    quietly break it)."""
    stmt = _resource_guard_like()
    for tweak in draw(st.lists(st.sampled_from(RESOURCE_DENY_TWEAKS), min_size=1, max_size=2)):
        with contextlib.suppress(KeyError):
            tweak(stmt)
    return stmt


@st.composite
def _perimeter_policy(draw: st.DrawFn) -> object:
    """Policies near the resource-perimeter line, where a wrong verdict hides: Allows held (or almost) by their
    own conditions alone; an open Allow behind a resource Deny (or a near miss of one); or a mix with noise."""
    shape = draw(st.sampled_from(["pinned", "pinned", "guarded", "guarded", "mixed"]))
    if shape == "pinned":
        statements = draw(st.lists(_resource_pinned_allow(), min_size=1, max_size=2))
    elif shape == "guarded":
        statements = [draw(_open_allow()), draw(_resource_deny()), *draw(st.lists(_org_deny(), max_size=1))]
    else:
        statements = draw(st.lists(st.one_of(_resource_pinned_allow(), _open_allow(), _resource_deny(), _org_deny(),
                                             ANY_STATEMENT), min_size=1, max_size=4))
    event(f"shape {shape}")
    doc = {"Version": "2012-10-17", "Statement": draw(st.permutations(statements))}
    return draw(st.sampled_from([doc, json.dumps(doc)]))


DOCS = st.one_of(POLICIES, _perimeter_policy(), _perimeter_policy(), _perimeter_policy(), _perimeter_policy())


# --------------------------------------------------------------------------------------------- properties
@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_the_resource_perimeter_never_allows_a_request_the_original_denied(world: World, doc: object) -> None:
    result = _confine(world, doc)
    assert result.refused is None
    event("fixed" if result.changed else "already compliant")
    if result.changed:
        for caller in GRID:
            if evaluate(result.document, caller.ctx):
                assert evaluate(doc, caller.ctx), caller.ctx


@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_after_the_fix_no_outsider_gets_anything_outside_the_exempt_resources(world: World, doc: object) -> None:
    after = _after(doc, _confine(world, doc))
    for caller in GRID:
        if _outsider(world, caller) and not _exempt(world, caller):
            assert not evaluate(after, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_after_the_fix_nobody_but_aws_services_reaches_a_resource_outside_the_organizations(
        world: World, doc: object) -> None:
    after = _after(doc, _confine(world, doc))
    for caller in GRID:
        if not caller.is_service and not _org_resource(world, caller) and not _exempt(world, caller):
            assert not evaluate(after, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_insiders_keep_what_they_had_on_the_organizations_resources_and_services_keep_everything(
        world: World, doc: object) -> None:
    after = _after(doc, _confine(world, doc))
    for caller in GRID:
        kept = (_insider(world, caller) and _org_resource(world, caller)) or caller.is_service
        if kept and evaluate(doc, caller.ctx):
            assert evaluate(after, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_requests_on_exempt_resources_are_decided_exactly_as_before(world: World, doc: object) -> None:
    after = _after(doc, _confine(world, doc))
    for caller in GRID:
        if _exempt(world, caller):
            assert evaluate(after, caller.ctx) == evaluate(doc, caller.ctx), (caller.ctx, after)


@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_the_resource_perimeter_fix_is_idempotent_and_only_appends(world: World, doc: object) -> None:
    first = _confine(world, doc)
    if not first.changed:
        assert _analyse(world, doc).compliant
        return
    assert _analyse(world, first.document).compliant
    assert _confine(world, first.document) == policy.ConfineResult(changed=False, document=None)
    original = policy.parse_policy(doc)["Statement"]
    original = original if isinstance(original, list) else [original]
    fixed = json.loads(first.document)["Statement"]
    assert fixed[: len(original)] == original and 1 <= len(fixed) - len(original) <= 2
    event(f"{len(fixed) - len(original)} statement(s) appended")


@SETTINGS
@given(world=WORLDS, doc=DOCS)
def test_a_compliant_verdict_already_keeps_everyone_inside_both_perimeters(world: World, doc: object) -> None:
    verdict = _analyse(world, doc)
    event("compliant" if verdict.compliant else "not compliant")
    if not verdict.compliant:
        assert verdict.reasons
        return
    for caller in GRID:
        if caller.is_service or _exempt(world, caller):
            continue
        if _outsider(world, caller) or not _org_resource(world, caller):
            assert not evaluate(doc, caller.ctx), (caller.ctx, doc)


@SETTINGS
@given(world=WORLDS, doc=POLICIES)
def test_the_identity_perimeter_alone_is_what_it_was(world: World, doc: object) -> None:
    """`resource_perimeter=False` (the default mode) judges and fixes exactly as before this option existed."""
    assert policy.analyse(doc, world.allowed_orgs, world.org_accounts, aws_owned_resource_arns=world.exempt,
                          resource_perimeter=False) == world.analyse(doc)
    result = world.confine(doc)
    if result.changed:
        assert RESOURCE_GUARD_SID not in result.document


def test_the_resource_guard_follows_aws_published_resource_perimeter() -> None:
    """aws-samples/data-perimeter-policy-examples, service_control_policies/resource_perimeter_scp.json
    (EnforceResourcePerimeterAWSResources): Deny, NotResource the AWS-owned resources, StringNotEqualsIfExists
    aws:ResourceOrgID; in an endpoint policy with Principal "*" and AWS service principals let through."""
    guard = policy.resource_guard_statement([ORG_A], ["arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*"])
    assert guard == {
        "Sid": RESOURCE_GUARD_SID, "Effect": "Deny", "Principal": "*", "Action": "*",
        "NotResource": ["arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*"],
        "Condition": {"StringNotEqualsIfExists": {"aws:ResourceOrgID": [ORG_A]},
                      "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}
    assert policy.resource_guard_statement([ORG_A])["Resource"] == "*"


def test_aws_published_s3_endpoint_policy_is_compliant_in_both_modes() -> None:
    """The first two statements of AWS's s3_endpoint_policy.json (org identities to org resources, AWS service
    principals): already the perimeter, nothing to append."""
    published = {"Version": "2012-10-17", "Statement": [
        {"Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources", "Effect": "Allow", "Principal": "*", "Action": "*",
         "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_A, "aws:ResourceOrgID": ORG_A}}},
        {"Sid": "AllowRequestsByAWSServicePrincipals", "Effect": "Allow", "Principal": "*", "Action": "*",
         "Resource": "*", "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}}]}
    assert policy.analyse(published, [ORG_A], resource_perimeter=True).compliant
    assert not policy.confine(published, [ORG_A], resource_perimeter=True).changed


def test_an_identity_confined_policy_gains_only_the_resource_guard() -> None:
    confined = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_A}}}]}
    verdict = policy.analyse(confined, [ORG_A], resource_perimeter=True)
    assert verdict.reasons == ("statement 0 lets callers reach resources outside the organization without an "
                               "aws:ResourceOrgID condition",)
    fixed = json.loads(policy.confine(confined, [ORG_A], resource_perimeter=True).document)
    assert [s.get("Sid") for s in fixed["Statement"]] == [None, RESOURCE_GUARD_SID]


_ = (ACCT_A99, ACCT_C)  # imported for readers comparing the grids
