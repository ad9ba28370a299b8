"""Through the real handler under moto: S3 endpoints keep anonymous package downloads from AWS-owned buckets.

Instances in private subnets run yum/dnf through the S3 gateway endpoint without credentials. The fix must
confine the endpoint to the organization everywhere except the Amazon Linux repository buckets
(AwsOwnedResourceArns, on by default), and only on S3 endpoints. Requests are judged by the test-only
IAM evaluator on the policy AWS (moto) now holds.
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.conditions import Key

from devkit.seed import PLACEHOLDERS, SpineWorld, render_event, seed_vpc
from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard.policy import GUARD_SID

from .conftest import ACCOUNT, REGION, Invoke

RULE = "endpoint-policy-org-confined"
MIRROR_LIST = f"arn:aws:s3:::al2023-repos-{REGION}-de612dc2/core/mirrors/latest/x86_64/mirror.list"
AL2_PACKAGE = f"arn:aws:s3:::amazonlinux-2-repos-{REGION}/2/core/2.0/x86_64/abc/Packages/curl.rpm"
CORP_OBJECT = "arn:aws:s3:::corp-data/report.csv"
INSIDER = "arn:aws:iam::111122223333:role/app"
OUTSIDER = "arn:aws:iam::777788889999:role/x"
REPOS_OPEN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AllowRequestsToAWSOwnedResources", "Effect": "Allow", "Principal": {"AWS": "*"},
     "Action": ["s3:GetObject"],
     "Resource": [f"arn:aws:s3:::amazonlinux.{REGION}.amazonaws.com/*", f"arn:aws:s3:::amazonlinux-2-repos-{REGION}/*",
                  f"arn:aws:s3:::al2023-repos-{REGION}-de612dc2/*"]},
]})


def _policy(ec2: Any, endpoint_id: str) -> dict[str, Any]:
    return json.loads(ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["PolicyDocument"])


def _latest(table: Any, endpoint_id: str) -> dict[str, Any]:
    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#{ACCOUNT}#{REGION}#{endpoint_id}")
                        & Key("sk").begins_with("EVAL#"))["Items"]
    return sorted((i for i in items if i["rule_id"] == RULE), key=lambda i: i["sk"])[-1]


def _modify_event(world: SpineWorld, endpoint_id: str) -> dict[str, Any]:
    """ModifyVpcEndpoint on `endpoint_id` (the event file names the S3 endpoint's placeholder)."""
    return render_event("modify-vpc-endpoint.json", {**world.mapping(), PLACEHOLDERS["s3_endpoint"]: endpoint_id})


def test_fixed_s3_gateway_endpoint_still_serves_amazon_linux_repositories_to_anonymous_callers(
        invoke: Invoke, ec2: Any, world: SpineWorld, org_id: str, ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    assert evaluate(_policy(ec2, endpoint), RequestContext.anonymous("s3:GetObject", CORP_OBJECT)), "starts open"

    result = invoke(_modify_event(world, endpoint))

    fixed = _policy(ec2, endpoint)
    # yum/dnf in a private subnet: unsigned GETs of mirror lists and packages
    assert evaluate(fixed, RequestContext.anonymous("s3:GetObject", MIRROR_LIST))
    assert evaluate(fixed, RequestContext.anonymous("s3:GetObject", AL2_PACKAGE))
    # everything else is confined to the organization
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", CORP_OBJECT))
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", MIRROR_LIST.replace("de612dc2", "de612dc3")))
    assert not evaluate(fixed, RequestContext.iam(OUTSIDER, "s3:PutObject", CORP_OBJECT, "o-outsider000"))
    assert evaluate(fixed, RequestContext.iam(INSIDER, "s3:PutObject", CORP_OBJECT, org_id))

    statuses = {(r["rule_id"], r["resource_id"]): r["status"] for r in result["results"]}
    assert statuses[(RULE, endpoint)] == "remediated"
    record = _latest(ledger_table, endpoint)
    assert record["details"]["aws_owned_resource_arns"] == [
        f"arn:aws:s3:::packages.{REGION}.amazonaws.com/*",
        f"arn:aws:s3:::repo.{REGION}.amazonaws.com/*",
        f"arn:aws:s3:::amazonlinux.{REGION}.amazonaws.com/*",
        f"arn:aws:s3:::amazonlinux-2-repos-{REGION}/*",
        f"arn:aws:s3:::al2023-repos-{REGION}-de612dc2/*",
    ]
    assert json.loads(record["after"]["policy_document"]) == fixed

    # A new event (a new id; the same id would be a redelivery, answered by the idempotency store).
    replay = invoke({**_modify_event(world, endpoint), "id": "5d1c0b7e-0000-4000-8000-00000000beef"})
    assert {r["status"] for r in replay["results"] if r["rule_id"] == RULE} == {"compliant"}
    assert _policy(ec2, endpoint) == fixed


def test_interface_endpoint_of_another_service_gets_the_guard_on_every_resource(
        invoke: Invoke, ec2: Any, world: SpineWorld) -> None:
    endpoint = world.ids["ssm_endpoint"]
    invoke(_modify_event(world, endpoint))
    guard = _policy(ec2, endpoint)["Statement"][-1]
    assert guard["Sid"] == GUARD_SID
    assert guard["Resource"] == "*" and "NotResource" not in guard


def test_empty_parameter_turns_the_exemption_off(invoke: Invoke, ec2: Any, world: SpineWorld,
                                                 ledger_table: Any) -> None:
    endpoint = world.ids["s3_endpoint"]
    invoke(_modify_event(world, endpoint), AwsOwnedResourceArns="")
    fixed = _policy(ec2, endpoint)
    assert fixed["Statement"][-1]["Sid"] == GUARD_SID and fixed["Statement"][-1]["Resource"] == "*"
    assert not evaluate(fixed, RequestContext.anonymous("s3:GetObject", MIRROR_LIST))
    assert "aws_owned_resource_arns" not in _latest(ledger_table, endpoint).get("details", {})


def test_policy_open_only_on_amazon_linux_repositories_is_left_alone(
        invoke: Invoke, ec2: Any, ledger_table: Any) -> None:
    world = seed_vpc(ec2, REGION, s3_policy=REPOS_OPEN_POLICY, associate_all=True, with_ssm=False)
    endpoint = world.ids["s3_endpoint"]
    result = invoke(_modify_event(world, endpoint))
    assert {r["status"] for r in result["results"] if r["resource_id"] == endpoint} == {"compliant"}
    assert _policy(ec2, endpoint) == json.loads(REPOS_OPEN_POLICY)
    assert "only on AWS-owned resources exempt from the perimeter" in _latest(ledger_table, endpoint)["reason"]
