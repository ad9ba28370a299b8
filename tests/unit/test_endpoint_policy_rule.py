"""The endpoint-policy rule on hand-built snapshots (pure: no AWS): which endpoints get the AWS-owned exemption."""

from __future__ import annotations

import json

import pytest

from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard.config import DEFAULT_AWS_OWNED_RESOURCE_ARNS
from vpce_guard.models import Endpoint, Snapshot, Status
from vpce_guard.policy import GUARD_SID
from vpce_guard.rules import RuleContext
from vpce_guard.rules.endpoint_policy import evaluate as rule

ORG = "o-abcdefghij"
CTX = RuleContext(allowed_org_ids=frozenset({ORG}), aws_owned_resource_arns=DEFAULT_AWS_OWNED_RESOURCE_ARNS)
NO_EXEMPTION = RuleContext(allowed_org_ids=frozenset({ORG}))
MIRROR_LIST = "arn:aws:s3:::al2023-repos-{region}-de612dc2/core/mirrors/latest/x86_64/mirror.list"
REPOS_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AmazonLinuxRepos", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
     "Resource": ["arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*", "arn:aws:s3:::amazonlinux-2-repos-eu-west-1/*"]},
    {"Sid": "Org", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}},
]})


def _endpoint(service: str, type_: str = "Gateway", policy: str | None = None) -> Endpoint:
    return Endpoint(id="vpce-1", vpc_id="vpc-1", type=type_, service_name=service, state="available",
                    policy_document=policy)


def _run(ep: Endpoint, ctx: RuleContext = CTX) -> tuple[Status, str, dict | None, dict]:
    [finding] = rule(Snapshot(account="111122223333", region="eu-west-1", endpoints={ep.id: ep}), ctx)
    guard = None
    if finding.actions:
        guard = json.loads(finding.actions[0].params["policy_document"])["Statement"][-1]
    return finding.status, finding.reason, guard, finding.details


@pytest.mark.parametrize(("service", "type_"), [
    ("com.amazonaws.eu-west-1.s3", "Gateway"),
    ("com.amazonaws.eu-west-1.s3", "Interface"),
])
def test_s3_endpoints_get_a_guard_that_spares_the_amazon_linux_repositories(service: str, type_: str) -> None:
    status, _, guard, details = _run(_endpoint(service, type_))
    assert status is Status.NON_COMPLIANT
    assert "Resource" not in guard
    assert guard["NotResource"] == sorted([
        "arn:aws:s3:::packages.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::repo.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::amazonlinux.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::amazonlinux-2-repos-eu-west-1/*",
        "arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*",
    ])
    assert details == {"aws_owned_resource_arns": [
        "arn:aws:s3:::packages.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::repo.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::amazonlinux.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::amazonlinux-2-repos-eu-west-1/*",
        "arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*",
    ]}


@pytest.mark.parametrize("service", [
    "com.amazonaws.eu-west-1.ssm",
    "com.amazonaws.eu-west-1.dynamodb",
    "com.amazonaws.eu-west-1.s3express",
    "com.amazonaws.eu-west-1.s3-outposts",
    "com.amazonaws.s3-global.accesspoint",
    "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0",
])
def test_other_endpoints_get_the_guard_on_every_resource(service: str) -> None:
    status, _, guard, details = _run(_endpoint(service, "Interface"))
    assert status is Status.NON_COMPLIANT
    assert guard["Resource"] == "*" and "NotResource" not in guard
    assert details == {}


def test_the_region_comes_from_the_service_the_endpoint_reaches() -> None:
    """A (cross-region) interface endpoint to us-west-2's S3 reaches us-west-2 buckets."""
    _, _, guard, _ = _run(_endpoint("com.amazonaws.us-west-2.s3", "Interface"))
    assert "arn:aws:s3:::al2023-repos-us-west-2-de612dc2/*" in guard["NotResource"]
    assert not any("eu-west-1" in arn for arn in guard["NotResource"])


def test_china_s3_service_names_are_recognised() -> None:
    _, _, guard, _ = _run(_endpoint("cn.com.amazonaws.cn-north-1.s3"))
    assert "arn:aws:s3:::al2023-repos-cn-north-1-de612dc2/*" in guard["NotResource"]


def test_without_exempt_resources_the_guard_covers_every_resource() -> None:
    _, _, guard, details = _run(_endpoint("com.amazonaws.eu-west-1.s3"), NO_EXEMPTION)
    assert guard["Resource"] == "*" and details == {}


def test_fixed_s3_gateway_policy_lets_yum_through_and_is_compliant_on_the_next_run() -> None:
    ep = _endpoint("com.amazonaws.eu-west-1.s3")
    [finding] = rule(Snapshot(account="111122223333", region="eu-west-1", endpoints={ep.id: ep}), CTX)
    fixed = finding.actions[0].params["policy_document"]
    assert evaluate(fixed, RequestContext.anonymous("s3:GetObject", MIRROR_LIST.format(region="eu-west-1")))
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", "arn:aws:s3:::corp-data/report.csv"))
    status, reason, guard, _ = _run(_endpoint(ep.service_name, policy=fixed))
    assert (status, guard) == (Status.COMPLIANT, None)
    # the guard spares the repositories, so the full-access Allow stays open there, and the ledger says so
    assert reason == (
        "every Allow is confined to the allowed organizations (statement 0 is open to principals outside the "
        "organization only on AWS-owned resources exempt from the perimeter)"
    )


def test_a_policy_open_only_on_aws_owned_repositories_is_compliant_with_the_reason_recorded() -> None:
    status, reason, guard, details = _run(_endpoint("com.amazonaws.eu-west-1.s3", policy=REPOS_ONLY))
    assert status is Status.COMPLIANT and guard is None
    assert reason == (
        "every Allow is confined to the allowed organizations (statement 0 (Sid 'AmazonLinuxRepos') is open to "
        "principals outside the organization only on AWS-owned resources exempt from the perimeter)"
    )
    assert details["aws_owned_resource_arns"]


def test_the_same_policy_on_a_non_s3_endpoint_is_not_exempt() -> None:
    status, reason, guard, _ = _run(_endpoint("com.amazonaws.eu-west-1.ssm", "Interface", policy=REPOS_ONLY))
    assert status is Status.NON_COMPLIANT
    assert "AmazonLinuxRepos" in reason
    assert guard["Sid"] == GUARD_SID and guard["Resource"] == "*"


def test_the_exempt_buckets_are_those_of_the_endpoints_region() -> None:
    """eu-west-1 repository ARNs do not exempt anything on a us-east-1 S3 endpoint."""
    status, _, guard, _ = _run(_endpoint("com.amazonaws.us-east-1.s3", policy=REPOS_ONLY))
    assert status is Status.NON_COMPLIANT
    assert "arn:aws:s3:::al2023-repos-us-east-1-de612dc2/*" in guard["NotResource"]
