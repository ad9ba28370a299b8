"""The test-only IAM evaluator decides like IAM on AWS's documented endpoint-policy examples.

The property tests trust this evaluator as the referee for `vpce_guard.policy`, so its own
semantics are pinned here: policy examples from the AWS docs and aws-samples data-perimeter
policies, and each condition-operator rule (missing keys, IfExists, set operators, ...).
"""

from __future__ import annotations

import json

import pytest

from tests.support.iam_eval import RequestContext, condition_holds, evaluate, glob_match

ORG = "o-a1b2c3d4e5"
OTHER_ORG = "o-zz9y8x7w6v"
INSIDER = "arn:aws:iam::111122223333:role/app"
OUTSIDER = "arn:aws:iam::777788889999:role/app"
NO_ORG_ROOT = "arn:aws:iam::123456789012:root"
OBJECT = "arn:aws:s3:::corp-data/report.csv"


def insider(action: str = "s3:GetObject", resource: str = OBJECT, **extra: object) -> RequestContext:
    return RequestContext.iam(INSIDER, action, resource, ORG, **extra)


def outsider(action: str = "s3:GetObject", resource: str = OBJECT, **extra: object) -> RequestContext:
    return RequestContext.iam(OUTSIDER, action, resource, OTHER_ORG, **extra)


def no_org(action: str = "s3:GetObject", resource: str = OBJECT) -> RequestContext:
    return RequestContext.iam(NO_ORG_ROOT, action, resource)


def anonymous(action: str = "s3:GetObject", resource: str = OBJECT) -> RequestContext:
    return RequestContext.anonymous(action, resource)


def service(action: str = "s3:GetObject", resource: str = OBJECT) -> RequestContext:
    return RequestContext.service("cloudtrail.amazonaws.com", action, resource)


# The AWS default endpoint policy (what an endpoint without a policy applies).
DEFAULT_POLICY = {
    "Version": "2008-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}

# AWS docs: "Allow all AWS STS actions for your organization"-style endpoint policy.
ORG_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        }
    ],
}

# aws-samples/data-perimeter-policy-examples vpc_endpoint_policies/default_endpoint_policy.json
DATA_PERIMETER_DEFAULT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG}},
            },
            {
                "Sid": "AllowRequestsByAWSServicePrincipals",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}},
            },
            {
                "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:PrincipalOrgID": ORG, "aws:PrincipalTag/dp:exclude:resource": "true"}
                },
            },
        ],
    }
)

# The identity-perimeter Deny AWS publishes for resource control policies, reused in endpoint policies.
PERIMETER_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
        "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
    },
}


# --------------------------------------------------------------------------------------------
# Whole policies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [DEFAULT_POLICY, None, ""])
def test_default_policy_allows_everyone(policy: object) -> None:
    for ctx in (insider(), outsider(), no_org(), anonymous(), service()):
        assert evaluate(policy, ctx)


def test_org_only_policy_allows_only_org_principals() -> None:
    assert evaluate(ORG_ONLY_POLICY, insider())
    assert not evaluate(ORG_ONLY_POLICY, outsider())
    assert not evaluate(ORG_ONLY_POLICY, no_org())
    assert not evaluate(ORG_ONLY_POLICY, anonymous())
    assert not evaluate(ORG_ONLY_POLICY, service())


def test_data_perimeter_default_policy() -> None:
    assert evaluate(DATA_PERIMETER_DEFAULT, insider(resource_org_id=ORG))
    assert not evaluate(DATA_PERIMETER_DEFAULT, insider(resource_org_id=OTHER_ORG))  # exfiltration
    assert evaluate(
        DATA_PERIMETER_DEFAULT,
        insider(resource_org_id=OTHER_ORG, keys={"aws:PrincipalTag/dp:exclude:resource": "true"}),
    )
    assert evaluate(DATA_PERIMETER_DEFAULT, service())
    assert not evaluate(DATA_PERIMETER_DEFAULT, outsider(resource_org_id=ORG))
    assert not evaluate(DATA_PERIMETER_DEFAULT, anonymous())


def test_perimeter_deny_keeps_insiders_and_services_only() -> None:
    policy = {"Statement": [*DEFAULT_POLICY["Statement"], PERIMETER_DENY]}
    assert evaluate(policy, insider())
    assert evaluate(policy, service())
    assert not evaluate(policy, outsider())
    assert not evaluate(policy, no_org())  # no aws:PrincipalOrgID at all: IfExists -> true -> denied
    assert not evaluate(policy, anonymous())  # no aws:PrincipalIsAWSService either: BoolIfExists -> true


def test_plain_bool_in_a_deny_lets_anonymous_requests_through() -> None:
    deny = {**PERIMETER_DENY, "Condition": {**PERIMETER_DENY["Condition"]}}
    deny["Condition"]["Bool"] = deny["Condition"].pop("BoolIfExists")
    policy = {"Statement": [*DEFAULT_POLICY["Statement"], deny]}
    assert not evaluate(policy, outsider())
    assert evaluate(policy, anonymous())


def test_explicit_deny_wins_over_allow() -> None:
    # AWS Account Management docs: Alice may read and change alternate contacts, nobody may delete.
    alice = "arn:aws:iam::123456789012:user/Alice"
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": alice},
                "Action": ["account:GetAlternateContact", "account:PutAlternateContact"],
                "Resource": "*",
            },
            {"Effect": "Deny", "Principal": "*", "Action": "account:DeleteAlternateContact", "Resource": "*"},
        ]
    }
    assert evaluate(policy, RequestContext.iam(alice, "account:GetAlternateContact"))
    assert not evaluate(policy, RequestContext.iam(alice, "account:DeleteAlternateContact"))
    assert not evaluate(policy, RequestContext.iam("arn:aws:iam::123456789012:user/Bob", "account:GetAlternateContact"))


def test_no_matching_allow_means_denied() -> None:
    # AWS Organizations docs example (no Version): only DescribeAccount goes through.
    policy = (
        '{"Statement":[{"Principal":"*","Effect":"Allow","Action":["Organizations:DescribeAccount"],"Resource":"*"}]}'
    )
    assert evaluate(policy, insider("organizations:describeaccount", "*"))
    assert not evaluate(policy, insider("organizations:ListAccounts", "*"))
    assert not evaluate({"Statement": []}, insider())


def test_single_statement_object() -> None:
    assert evaluate({"Statement": ORG_ONLY_POLICY["Statement"][0]}, insider())


# --------------------------------------------------------------------------------------------
# Principal, Action, Resource
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "who", "expected"),
    [
        ("*", anonymous(), True),
        ({"AWS": "*"}, anonymous(), True),
        ({"AWS": "111122223333"}, insider(), True),
        ({"AWS": "arn:aws:iam::111122223333:root"}, insider(), True),
        ({"AWS": ["arn:aws:iam::111122223333:root"]}, outsider(), False),
        ({"AWS": INSIDER}, insider(), True),
        ({"AWS": "arn:aws:iam::111122223333:role/other"}, insider(), False),
        ({"AWS": "111122223333"}, anonymous(), False),
        ({"Service": "cloudtrail.amazonaws.com"}, service(), True),
        ({"Service": ["ec2.amazonaws.com"]}, service(), False),
        ({"Service": "cloudtrail.amazonaws.com"}, insider(), False),
        ({"AWS": "111122223333"}, service(), False),
    ],
)
def test_principal_matching(principal: object, who: RequestContext, expected: bool) -> None:
    stmt = {"Effect": "Allow", "Principal": principal, "Action": "*", "Resource": "*"}
    assert evaluate({"Statement": [stmt]}, who) is expected


def test_not_principal_allow_matches_everyone_else() -> None:
    stmt = {"Effect": "Allow", "NotPrincipal": {"AWS": "111122223333"}, "Action": "*", "Resource": "*"}
    assert not evaluate({"Statement": [stmt]}, insider())
    assert evaluate({"Statement": [stmt]}, outsider())
    assert evaluate({"Statement": [stmt]}, anonymous())


def test_action_wildcards_are_case_insensitive() -> None:
    stmt = {"Effect": "Allow", "Principal": "*", "Action": ["s3:Get*", "dynamodb:?etItem"], "Resource": "*"}
    assert evaluate({"Statement": [stmt]}, insider("S3:GETOBJECT"))
    assert evaluate({"Statement": [stmt]}, insider("dynamodb:GetItem"))
    assert not evaluate({"Statement": [stmt]}, insider("dynamodb:BatchGetItem"))
    assert not evaluate({"Statement": [stmt]}, insider("s3:PutObject"))


def test_not_action_and_not_resource() -> None:
    stmt = {"Effect": "Allow", "Principal": "*", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::secret/*"}
    assert evaluate({"Statement": [stmt]}, insider("s3:GetObject", OBJECT))
    assert not evaluate({"Statement": [stmt]}, insider("s3:DeleteObject", OBJECT))
    assert not evaluate({"Statement": [stmt]}, insider("s3:GetObject", "arn:aws:s3:::secret/k"))


def test_resource_matching_is_case_sensitive() -> None:
    stmt = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "arn:aws:s3:::corp-data/*"}
    assert evaluate({"Statement": [stmt]}, insider(resource=OBJECT))
    assert not evaluate({"Statement": [stmt]}, insider(resource=OBJECT.upper()))


def test_glob_match() -> None:
    assert glob_match("a*c", "abbbc") and glob_match("a?c", "abc") and not glob_match("a?c", "abbc")
    assert glob_match("a.c", "a.c") and not glob_match("a.c", "abc")  # regex characters are literal
    assert glob_match("S3:*", "s3:x", ignore_case=True) and not glob_match("S3:*", "s3:x")


# --------------------------------------------------------------------------------------------
# Condition operators
# --------------------------------------------------------------------------------------------

KEYS = {
    "aws:principalorgid": [ORG],
    "aws:principalorgpaths": [f"{ORG}/r-ab12/ou-ab12-11111111/"],
    "aws:principalarn": [INSIDER],
    "aws:principalisawsservice": ["false"],
}


@pytest.mark.parametrize(
    ("operator", "key", "values", "expected"),
    [
        ("StringEquals", "aws:PrincipalOrgID", ORG, True),
        ("StringEquals", "aws:PrincipalOrgID", ORG.upper(), False),
        ("StringEqualsIgnoreCase", "aws:PrincipalOrgID", ORG.upper(), True),
        ("StringNotEquals", "aws:PrincipalOrgID", [OTHER_ORG, "o-x"], True),
        ("StringNotEqualsIgnoreCase", "aws:PrincipalOrgID", ORG.upper(), False),
        ("StringLike", "aws:PrincipalOrgPaths", f"{ORG}/*", True),
        ("StringNotLike", "aws:PrincipalOrgPaths", f"{ORG}/*", False),
        ("ForAnyValue:StringLike", "aws:PrincipalOrgPaths", [f"{OTHER_ORG}/*", f"{ORG}/r-ab12/*"], True),
        ("ForAllValues:StringLike", "aws:PrincipalOrgPaths", f"{OTHER_ORG}/*", False),
        ("Bool", "aws:PrincipalIsAWSService", "false", True),
        ("Bool", "aws:PrincipalIsAWSService", False, True),
        ("Bool", "aws:PrincipalIsAWSService", "true", False),
        ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::111122223333:role/*", True),
        ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/app", True),
        ("ArnEquals", "aws:PrincipalArn", "arn:aws:iam::1111*:role/app", True),  # ArnEquals also globs
        ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::111122223333:*", False),
        ("ArnNotEquals", "aws:PrincipalArn", OUTSIDER, True),
        ("Null", "aws:PrincipalOrgID", "false", True),
        ("Null", "aws:SourceVpc", "true", True),
        ("Null", "aws:SourceVpc", "false", False),
        ("NumericEquals", "aws:PrincipalOrgID", "1", False),  # unknown here -> condition false
        ("stringequals", "AWS:PRINCIPALORGID", ORG, True),  # names are case-insensitive
    ],
)
def test_operators_with_key_present(operator: str, key: str, values: object, expected: bool) -> None:
    assert condition_holds(operator, key, values, KEYS) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("StringEqualsIgnoreCase", False),
        ("Bool", False),
        ("ArnLike", False),
        ("ArnEquals", False),
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("StringNotEqualsIgnoreCase", True),
        ("ArnNotLike", True),
        ("ArnNotEquals", True),
        ("StringEqualsIfExists", True),
        ("BoolIfExists", True),
        ("ArnLikeIfExists", True),
        ("StringNotEqualsIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringNotEquals", False),
        ("ForAllValues:StringEquals", True),
        ("ForAllValues:StringNotEquals", True),
        ("NumericEquals", False),
        ("NumericEqualsIfExists", False),  # unknown stays false even with IfExists
    ],
)
def test_operators_with_key_missing(operator: str, expected: bool) -> None:
    assert condition_holds(operator, "aws:SourceVpce", "vpce-0abc", KEYS) is expected


def test_all_operators_and_keys_of_a_statement_must_hold() -> None:
    stmt = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG},
            "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/app"},
        },
    }
    assert evaluate({"Statement": [stmt]}, insider(resource_org_id=ORG))
    assert not evaluate({"Statement": [stmt]}, insider(resource_org_id=OTHER_ORG))
    assert not evaluate({"Statement": [stmt]}, insider())  # aws:ResourceOrgID missing


def test_context_keys_by_kind_of_caller() -> None:
    assert insider(org_paths=[f"{ORG}/r-ab12/"]).context_keys() == {
        "aws:principalarn": [INSIDER],
        "aws:principalaccount": ["111122223333"],
        "aws:principalorgid": [ORG],
        "aws:principalisawsservice": ["false"],
        "aws:principalorgpaths": [f"{ORG}/r-ab12/"],
    }
    assert no_org().context_keys() == {
        "aws:principalarn": [NO_ORG_ROOT],
        "aws:principalaccount": ["123456789012"],
        "aws:principalisawsservice": ["false"],
    }
    assert service().context_keys() == {
        "aws:principalservicename": ["cloudtrail.amazonaws.com"],
        "aws:principalisawsservice": ["true"],
    }
    assert anonymous().context_keys() == {}
    with pytest.raises(TypeError):
        RequestContext.anonymous("s3:GetObject", bogus=1)
