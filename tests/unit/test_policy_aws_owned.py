"""AWS-owned resources exempt from the org perimeter (`aws_owned_resource_arns`), as S3 endpoints need.

Instances in private subnets install packages through the S3 endpoint without credentials: yum/dnf read
the Amazon Linux repositories anonymously. A guard that denies anonymous callers on every resource breaks
that, so on S3 endpoints the exempt resources are left out of the judgement and out of the guard Deny.
Requests are checked with the independent evaluator (tests/support/iam_eval.py).
"""

from __future__ import annotations

import json

import pytest

from tests.support.iam_eval import RequestContext, evaluate
from tests.unit.test_policy import ORG, ORG_ACCOUNTS, OTHER_ORG, OUTSIDE_ACCOUNT, _published
from vpce_guard import policy
from vpce_guard.policy import GUARD_SID, ConfineResult

REGION = "eu-west-1"
#: The documented Amazon Linux repository buckets of one region (vpce_guard.config's default, filled in).
AL_REPOS = (
    f"arn:aws:s3:::packages.{REGION}.amazonaws.com/*",
    f"arn:aws:s3:::repo.{REGION}.amazonaws.com/*",
    f"arn:aws:s3:::amazonlinux.{REGION}.amazonaws.com/*",
    f"arn:aws:s3:::amazonlinux-2-repos-{REGION}/*",
    f"arn:aws:s3:::al2023-repos-{REGION}-de612dc2/*",
)
AL2023_BUCKET = f"arn:aws:s3:::al2023-repos-{REGION}-de612dc2"
AL2023_MIRROR_LIST = f"{AL2023_BUCKET}/core/mirrors/2023.6.20241121/x86_64/mirror.list"
AL2_PACKAGE = f"arn:aws:s3:::amazonlinux-2-repos-{REGION}/2/core/2.0/x86_64/abc/Packages/curl.rpm"
CORP_OBJECT = "arn:aws:s3:::corp-data/report.csv"
INSIDER = f"arn:aws:iam::{ORG_ACCOUNTS[0]}:role/app"
OUTSIDER = f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/x"


def _open(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _anyone(**element: object) -> dict:
    """An Allow for any principal (anonymous included) with the given Action/Resource elements."""
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", **element}


def _verdict(doc: object, exempt: object = AL_REPOS, accounts: object = ()) -> policy.PolicyVerdict:
    return policy.analyse(doc, [ORG], accounts, aws_owned_resource_arns=exempt)


# --------------------------------------------------------------------------------------------
# analyse(): an Allow that reaches only exempt resources
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "confined"),
    [
        (f"{AL2023_BUCKET}/*", True),  # exactly an exempt pattern
        ([f"{AL2023_BUCKET}/*", f"arn:aws:s3:::amazonlinux-2-repos-{REGION}/*"], True),
        (f"{AL2023_BUCKET}/core/*", True),  # within one
        (AL2023_MIRROR_LIST, True),
        (AL2023_BUCKET, False),  # the bucket itself (ListBucket) is not an object of it
        (f"{AL2023_BUCKET}*", False),  # also matches al2023-repos-...-de612dc2-anything
        (f"{AL2023_BUCKET}-mirror/*", False),  # another bucket sharing the name as a prefix
        (f"arn:aws:s3:::AL2023-repos-{REGION}-de612dc2/*", False),  # ARNs are case-sensitive
        ("arn:aws:s3:::al2023-repos-*/*", False),
        ([f"{AL2023_BUCKET}/*", CORP_OBJECT], False),  # one exempt, one not
        ("*", False),
        ([], False),
    ],
)
def test_an_open_allow_counts_as_confined_only_when_every_resource_is_exempt(resource: object, confined: bool) -> None:
    doc = _open(_anyone(Resource=resource))
    assert _verdict(doc).compliant is confined
    assert not policy.analyse(doc, [ORG]).compliant  # without an exempt list nothing changes


def test_what_the_allow_lets_anyone_do_on_exempt_resources_does_not_matter() -> None:
    """Decision: actions are not judged. What anyone may do on an AWS-owned bucket is the bucket
    owner's (AWS's) call; the endpoint policy only decides whose requests reach S3."""
    doc = _open({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": f"{AL2023_BUCKET}/*"})
    assert _verdict(doc).compliant


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "NotResource": CORP_OBJECT},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"},  # no Resource: everything
        {"Effect": "Allow", "NotPrincipal": {"AWS": OUTSIDE_ACCOUNT}, "Action": "*", "Resource": "*"},
    ],
)
def test_allows_that_reach_more_than_they_list_stay_open(statement: dict) -> None:
    assert not _verdict(_open(statement)).compliant


def test_a_policy_passing_only_through_the_exemption_says_so() -> None:
    doc = _open(
        _anyone(Sid="Repos", Resource=f"{AL2023_BUCKET}/*"),
        _anyone(Resource="*", Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}),
    )
    verdict = _verdict(doc)
    assert verdict.compliant and verdict.reasons == ()
    assert verdict.notes == (
        "statement 0 (Sid 'Repos') is open to principals outside the organization only on "
        "AWS-owned resources exempt from the perimeter",
    )
    # an Allow confined on its own is not attributed to the exemption
    assert _verdict(_open(doc["Statement"][1])).notes == ()


def test_a_deny_and_the_exemption_together_cover_an_allow() -> None:
    allow = _anyone(Resource=[CORP_OBJECT, f"{AL2023_BUCKET}/*"])
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "*",
        "Resource": "arn:aws:s3:::corp-*",
        "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
    }
    assert _verdict(_open(allow, deny)).compliant
    assert not policy.analyse(_open(allow, deny), [ORG]).compliant
    # what neither the Deny nor the exemption covers keeps the Allow open
    partly = _anyone(Resource=[CORP_OBJECT, f"{AL2023_BUCKET}/*", "arn:aws:s3:::partner-bucket/*"])
    assert not _verdict(_open(partly, deny)).compliant


# --------------------------------------------------------------------------------------------
# AWS's published S3 endpoint policy
# --------------------------------------------------------------------------------------------


def _published_aws_owned_resources() -> list[str]:
    [statement] = [s for s in json.loads(_published("s3"))["Statement"] if s["Sid"] == "AllowRequestsToAWSOwnedResources"]
    return statement["Resource"]


PARTNERS = ("210987654321", "210987654322")  # <third-party-account-a/b> as _published fills them in


def test_published_s3_policy_with_only_the_default_repo_buckets_exempt_is_still_open() -> None:
    """Its AWS-owned statement lists some 60 buckets (SSM, CloudWatch agent, MGN, ...), not only the
    Amazon Linux repositories; exempting five of them does not cover the statement."""
    verdict = _verdict(_published("s3"))
    assert [reason.split(")")[0] for reason in verdict.reasons] == [
        "statement 3 (Sid 'AllowRequestsToAWSOwnedResources'",
        "statement 4 (Sid 'AllowRequestsByThirdPartyIdentitiesToThirdPartyResources'",
    ]


def test_published_s3_policy_is_compliant_when_the_exempt_list_covers_its_aws_owned_statement() -> None:
    """Every bucket of that statement is literal, so the whole list can be configured as exempt.

    It also lets the named partner accounts read their own buckets (statement 4, aws:PrincipalAccount),
    which stays a finding: partners are outside the organization. Listing them in ORG_ACCOUNT_IDS is the
    deliberate way to accept them, and then the published policy is compliant and left unchanged.
    """
    exempt = _published_aws_owned_resources()
    partners_unlisted = _verdict(_published("s3"), exempt)
    assert [reason.split(")")[0] for reason in partners_unlisted.reasons] == [
        "statement 4 (Sid 'AllowRequestsByThirdPartyIdentitiesToThirdPartyResources'",
    ]
    accepted = _verdict(_published("s3"), exempt, accounts=PARTNERS)
    assert accepted.compliant
    assert [note.split(")")[0] for note in accepted.notes] == ["statement 3 (Sid 'AllowRequestsToAWSOwnedResources'"]
    assert policy.confine(_published("s3"), [ORG], PARTNERS, aws_owned_resource_arns=exempt) == ConfineResult(
        changed=False, document=None
    )


def test_every_bucket_in_the_published_aws_owned_list_is_literal_so_it_can_be_exempt() -> None:
    resources = _published_aws_owned_resources()
    assert len(resources) > 50
    for pattern in resources:
        policy.check_aws_owned_pattern(pattern)


# --------------------------------------------------------------------------------------------
# confine(): the guard leaves exempt resources out
# --------------------------------------------------------------------------------------------


def test_guard_uses_not_resource_with_the_exempt_patterns_sorted() -> None:
    result = policy.confine(None, [ORG], aws_owned_resource_arns=reversed(AL_REPOS))
    guard = json.loads(result.document)["Statement"][-1]
    assert guard == {
        "Sid": GUARD_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "*",
        "NotResource": sorted(AL_REPOS),
        "Condition": {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": [ORG]},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    }
    assert policy.guard_statement([ORG], AL_REPOS) == guard
    assert policy.guard_statement([ORG])["Resource"] == "*"  # no exempt list: every resource, as before


def test_fix_with_exempt_list_is_idempotent() -> None:
    first = policy.confine(_published("s3"), [ORG], aws_owned_resource_arns=AL_REPOS)
    assert first.changed
    assert _verdict(first.document).compliant
    assert policy.confine(first.document, [ORG], aws_owned_resource_arns=AL_REPOS) == ConfineResult(
        changed=False, document=None
    )


def test_after_the_fix_anonymous_package_downloads_work_and_nothing_else_is_open() -> None:
    """The default full-access policy of an S3 gateway endpoint, fixed with the Amazon Linux repos exempt."""
    fixed = policy.confine(None, [ORG], aws_owned_resource_arns=AL_REPOS).document
    # what private-subnet instances do with no credentials: yum/dnf fetching mirror lists and packages
    assert evaluate(fixed, RequestContext.anonymous("s3:GetObject", AL2023_MIRROR_LIST))
    assert evaluate(fixed, RequestContext.anonymous("s3:GetObject", AL2_PACKAGE))
    # every other anonymous or foreign request is denied
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", CORP_OBJECT))
    assert not evaluate(fixed, RequestContext.anonymous("s3:ListBucket", AL2023_BUCKET))
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", f"{AL2023_BUCKET}-mirror/x"))
    assert not evaluate(fixed, RequestContext.iam(OUTSIDER, "s3:PutObject", CORP_OBJECT, OTHER_ORG))
    # insiders and AWS services keep everything
    assert evaluate(fixed, RequestContext.iam(INSIDER, "s3:PutObject", CORP_OBJECT, ORG))
    assert evaluate(fixed, RequestContext.service("cloudtrail.amazonaws.com", "s3:PutObject", CORP_OBJECT))


def test_without_an_exempt_list_the_fix_blocks_anonymous_package_downloads() -> None:
    """Why the exemption exists: the plain guard denies yum/dnf through the endpoint."""
    fixed = policy.confine(None, [ORG]).document
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", AL2023_MIRROR_LIST))


def test_requests_on_exempt_resources_are_decided_as_before_the_fix() -> None:
    """The guard neither opens nor closes anything on exempt resources: an owner's own Deny still holds."""
    doc = _open(
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::repo.{REGION}.amazonaws.com/*"},
    )
    fixed = policy.confine(doc, [ORG], aws_owned_resource_arns=AL_REPOS).document
    for resource in (AL2023_MIRROR_LIST, f"arn:aws:s3:::repo.{REGION}.amazonaws.com/latest/main/mirror.list"):
        request = RequestContext.anonymous("s3:GetObject", resource)
        assert evaluate(fixed, request) == evaluate(doc, request)


def test_turning_the_exemption_off_tightens_an_earlier_fix() -> None:
    """An endpoint fixed with the exemption is re-judged without it: a second, full guard is appended."""
    fixed = policy.confine(None, [ORG], aws_owned_resource_arns=AL_REPOS).document
    assert not policy.analyse(fixed, [ORG]).compliant
    tightened = policy.confine(fixed, [ORG])
    statements = json.loads(tightened.document)["Statement"]
    assert statements[:2] == json.loads(fixed)["Statement"]
    assert statements[2]["Sid"] == GUARD_SID + "2" and statements[2]["Resource"] == "*"
    assert not evaluate(tightened.document, RequestContext.anonymous("s3:GetObject", AL2023_MIRROR_LIST))


def test_a_guard_sparing_more_than_is_exempt_no_longer_counts() -> None:
    fixed = policy.confine(None, [ORG], aws_owned_resource_arns=AL_REPOS).document
    assert _verdict(fixed, exempt=(*AL_REPOS, "arn:aws:s3:::amazoncloudwatch-agent/*")).compliant  # wider list
    narrower = AL_REPOS[2:]
    assert not _verdict(fixed, exempt=narrower).compliant
    refixed = json.loads(policy.confine(fixed, [ORG], aws_owned_resource_arns=narrower).document)
    assert refixed["Statement"][-1]["NotResource"] == sorted(narrower)
    assert not evaluate(refixed, RequestContext.anonymous("s3:GetObject", f"arn:aws:s3:::repo.{REGION}.amazonaws.com/x"))
    assert evaluate(refixed, RequestContext.anonymous("s3:GetObject", AL2023_MIRROR_LIST))


@pytest.mark.parametrize(
    "not_resource",
    [
        [CORP_OBJECT],  # spares a bucket that is not exempt
        [f"{AL2023_BUCKET}*"],  # wider than the exempt pattern
        [],  # how AWS reads an empty list is not documented
    ],
)
def test_a_not_resource_deny_counts_only_when_everything_it_spares_is_exempt(not_resource: list[str]) -> None:
    guard = policy.guard_statement([ORG], AL_REPOS)
    guard["NotResource"] = not_resource
    assert not _verdict(_open(_anyone(Resource="*"), guard)).compliant


# --------------------------------------------------------------------------------------------
# What may be exempt
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::al2023-repos-*/*",  # anyone can create a bucket under this prefix
        "arn:aws:s3:::amazonlinux.*.amazonaws.com/*",
        f"arn:aws:s3:::al2023-repos-{REGION}-de612dc?/*",
        "arn:aws:s3:::corp-data/${aws:username}/*",  # a policy variable is not literal text
        "arn:aws:s3:::Corp-Data/*",  # not a valid bucket name
        "arn:aws:s3:::ab/*",  # too short for a bucket name
        "arn:aws:dynamodb:eu-west-1:111122223333:table/orders",
        "arn:aws:s3:::al2023-repos-<region>-de612dc2/*",  # placeholders are configuration, filled in before
        f"{AL2023_BUCKET}/key with space",
    ],
)
def test_exempt_patterns_must_name_one_bucket_literally(pattern: str) -> None:
    with pytest.raises(ValueError, match="literal bucket name"):
        policy.check_aws_owned_pattern(pattern)
    with pytest.raises(ValueError):
        policy.analyse(None, [ORG], aws_owned_resource_arns=[pattern])
    with pytest.raises(ValueError):
        policy.confine(None, [ORG], aws_owned_resource_arns=[pattern])
    with pytest.raises(ValueError):
        policy.guard_statement([ORG], [pattern])


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:s3:::amazoncloudwatch-agent/*",
        "arn:aws:s3:::aws-neptune-notebook",
        "arn:aws-cn:s3:::amazonlinux-2-repos-cn-north-1/*",
        f"{AL2023_BUCKET}/core/*/x86_64/*",
        *AL_REPOS,
    ],
)
def test_literal_bucket_patterns_are_accepted(pattern: str) -> None:
    policy.check_aws_owned_pattern(pattern)


def test_a_bare_pattern_string_counts_as_one_pattern() -> None:
    doc = _open(_anyone(Resource=f"{AL2023_BUCKET}/*"))
    assert policy.analyse(doc, [ORG], aws_owned_resource_arns=f"{AL2023_BUCKET}/*").compliant
