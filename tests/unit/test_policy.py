"""Behaviour of the endpoint-policy analysis (`analyse`) and fix (`confine`).

Fixtures include AWS's published data-perimeter endpoint policies (aws-samples/
data-perimeter-policy-examples, vpc_endpoint_policies/*.json, CC-BY-SA-4.0), with their
`<placeholders>` filled in by `_published()`: the tool must judge them the way a careful human would.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard import policy
from vpce_guard.policy import GUARD_SID, MAX_POLICY_CHARS, ConfineResult, PolicyError, PolicyVerdict

ORG = "o-a1b2c3d4e5"
SECOND_ORG = "o-f6g7h8i9j0"
OTHER_ORG = "o-zz9y8x7w6v"
ORG_ACCOUNTS = ("111122223333", "444455556666")
OUTSIDE_ACCOUNT = "777788889999"

AWS_DEFAULT_POLICY = {
    "Version": "2008-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}

# fmt: off
DATA_PERIMETER_POLICIES: dict[str, str] = {
    "default": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
    "ec2": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAWSResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": [
      "ec2:RunInstances",
      "ec2:CreateReplaceRootVolumeTask",
      "ec2:CreateTags",
      "ec2:DeleteTags",
      "ec2:GetManagedPrefixListEntries"
    ],
    "Resource": ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*:aws:prefix-list/*"],
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "<my-org-id>"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
    "ecr.api": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAWSResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:ResourceAccount": "<ecr-account-id>", "aws:PrincipalOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
    "iam": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAWSResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": ["arn:aws:iam::aws:policy/*"],
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "<my-org-id>"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
    "ssm": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAWSResources",
    "Principal": "*",
    "Action": [
      "ssm:Describe*",
      "ssm:List*",
      "ssm:Get*",
      "ssm:SendCommand",
      "ssm:CreateAssociation",
      "ssm:StartSession",
      "ssm:StartChangeRequestExecution",
      "ssm:StartAutomationExecution"
    ],
    "Effect": "Allow",
    "Resource": [
      "arn:aws:ssm:<region>::parameter/aws/*",
      "arn:aws:ssm:<region>::document/*",
      "arn:aws:ssm:*::automation-definition/*"
    ],
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "<my-org-id>"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
    "cloudformation": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAWSResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["cloudformation:CreateChangeSet"],
    "Resource": ["arn:aws:cloudformation:<region>:aws:transform/*"],
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "<my-org-id>"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
    "s3": """{"Version": "2012-10-17", "Statement": [
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:ResourceOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsByAWSServicePrincipals",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}}
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAWSResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:ResourceAccount": "<glue-account-id>", "aws:PrincipalOrgID": "<my-org-id>"}
    }
  },
  {
    "Sid": "AllowRequestsToAWSOwnedResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": [
      "arn:aws:s3:::packages.<region>.amazonaws.com/*",
      "arn:aws:s3:::repo.<region>.amazonaws.com/*",
      "arn:aws:s3:::amazonlinux.<region>.amazonaws.com/*",
      "arn:aws:s3:::amazonlinux-2-repos-<region>/*",
      "arn:aws:s3:::al2023-repos-<region>-de612dc2/*",
      "arn:aws:s3:::al2023-<region>/*",
      "arn:aws:s3:::repo.<region>.emr.amazonaws.com/*",
      "arn:aws:s3:::prod.<region>.appinfo.src/*",
      "arn:aws:s3:::aws-ssm-<region>/*",
      "arn:aws:s3:::aws-windows-downloads-<region>/*",
      "arn:aws:s3:::amazon-ssm-<region>/*",
      "arn:aws:s3:::amazon-ssm-packages-<region>/*",
      "arn:aws:s3:::<region>-birdwatcher-prod/*",
      "arn:aws:s3:::aws-ssm-distributor-file-<region>/*",
      "arn:aws:s3:::aws-ssm-document-attachments-<region>/*",
      "arn:aws:s3:::patch-baseline-snapshot-<region>/*",
      "arn:aws:s3:::aws-patchmanager-macos-<region>/*",
      "arn:aws:s3:::amazoncloudwatch-agent-<region>/*",
      "arn:aws:s3:::amazoncloudwatch-agent/*",
      "arn:aws:s3:::aws-codedeploy-<region>/*",
      "arn:aws:s3:::ec2imagebuilder-toe-<region>-prod/*",
      "arn:aws:s3:::ec2imagebuilder-managed-resources-<region>-prod/components/*",
      "arn:aws:s3:::prod-<region>-starport-layer-bucket/*",
      "arn:aws:s3:::aws-mgn-clients-<region>/*",
      "arn:aws:s3:::aws-mgn-clients-hashes-<region>/*",
      "arn:aws:s3:::aws-mgn-internal-<region>/*",
      "arn:aws:s3:::aws-mgn-internal-hashes-<region>/*",
      "arn:aws:s3:::aws-application-migration-service-<region>/*",
      "arn:aws:s3:::aws-application-migration-service-hashes-<region>/*",
      "arn:aws:s3:::aws-drs-clients-<region>/*",
      "arn:aws:s3:::aws-drs-clients-hashes-<region>/*",
      "arn:aws:s3:::aws-drs-internal-<region>/*",
      "arn:aws:s3:::aws-drs-internal-hashes-<region>/*",
      "arn:aws:s3:::aws-elastic-disaster-recovery-<region>/*",
      "arn:aws:s3:::aws-elastic-disaster-recovery-hashes-<region>/*",
      "arn:aws:s3:::cloudformation-waitcondition-<region>/*",
      "arn:aws:s3:::cloudformation-custom-resource-response-<RegionWithoutDashes>/*",
      "arn:aws:s3:::aws-ec2-enclave-certificate-<region>-prod/*",
      "arn:aws:s3:::assets-<CodeArtifact-Region-Account>-<region>/*",
      "arn:aws:s3:::elasticbeanstalk-samples-<region>/*",
      "arn:aws:s3:::elasticbeanstalk-platform-assets-<region>/*",
      "arn:aws:s3:::elasticbeanstalk-env-resources-<region>/*",
      "arn:aws:s3:::elasticbeanstalk-<region>/*",
      "arn:aws:s3:::jumpstart-cache-prod-<region>/*",
      "arn:aws:s3:::jumpstart-cache-prod-<region>",
      "arn:aws:s3:::static-<region>-prod-static-<string>/content/dependencies/*",
      "arn:aws:s3:::aws-neptune-notebook",
      "arn:aws:s3:::aws-neptune-notebook/*",
      "arn:aws:s3:::aws-neptune-notebook-<region>",
      "arn:aws:s3:::aws-neptune-notebook-<region>/*",
      "arn:aws:s3:::athena-examples-<region>/*",
      "arn:aws:s3:::athena-examples-<region>",
      "arn:aws:s3:::cloudformation-examples/*",
      "arn:aws:s3:::awssupportdatasvcs.com/*",
      "arn:aws:s3:::redshift-downloads/*",
      "arn:aws:s3:::session-manager-downloads/*",
      "arn:aws:s3:::ssm-document-categories/*",
      "arn:aws:s3:::aws-sap-data-provider/*",
      "arn:aws:s3:::aws-sap-dataprovider-<region>/*",
      "arn:aws:s3:::awssap-backint-agent/*",
      "arn:aws:s3:::aws-cli/*"
    ]
  },
  {
    "Sid": "AllowRequestsByThirdPartyIdentitiesToThirdPartyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "<action>",
    "Resource": "<third-party-resource-arn>",
    "Condition": {
      "StringEquals": {
        "aws:PrincipalAccount": ["<third-party-account-a>", "<third-party-account-b>"],
        "aws:ResourceAccount": ["<third-party-account-a>", "<third-party-account-b>"]
      }
    }
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToThirdPartyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "<action>",
    "Resource": "<third-party-resource-arn>",
    "Condition": {
      "StringEquals": {
        "aws:PrincipalOrgID": "<my-org-id>",
        "aws:ResourceAccount": ["<third-party-account-a>", "<third-party-account-b>"]
      }
    }
  },
  {
    "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "*",
    "Resource": "*",
    "Condition": {
      "StringEquals": {"aws:PrincipalOrgID": "<my-org-id>", "aws:PrincipalTag/dp:exclude:resource": "true"}
    }
  }
]}""",
}
# fmt: on

_PLACEHOLDERS = {
    "<my-org-id>": ORG,
    "<region>": "eu-west-1",
    "<RegionWithoutDashes>": "euwest1",
    "<CodeArtifact-Region-Account>": "eu-west-1-123456789012",
    "<string>": "a1b2c3",
    "<ecr-account-id>": "602401143452",
    "<glue-account-id>": "123456789012",
    "<third-party-account-a>": "210987654321",
    "<third-party-account-b>": "210987654322",
    "<action>": "s3:GetObject",
    "<third-party-resource-arn>": "arn:aws:s3:::partner-exchange-bucket/*",
}


def _published(name: str) -> str:
    """A published policy with its placeholders filled in, as an account owner would deploy it."""
    text = DATA_PERIMETER_POLICIES[name]
    for placeholder, value in _PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    assert "<" not in text, re.findall(r"<[^>]+>", text)
    return text


def _allow(**extra: object) -> dict:
    """An Allow for everyone on everything, plus whatever the test adds (Condition, Principal...)."""
    return {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*", **extra}


def _doc(*statements: dict, version: str | None = "2012-10-17") -> dict:
    doc: dict = {"Statement": list(statements)}
    if version is not None:
        doc = {"Version": version, **doc}
    return doc


def _compliant(doc: object, orgs: object = (ORG,), accounts: object = ()) -> bool:
    return policy.analyse(doc, orgs, accounts).compliant


def _org_deny(condition: dict, **extra: object) -> dict:
    return {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*", "Condition": condition, **extra}


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, "", "   \n"])
def test_missing_policy_reads_as_the_aws_default_full_access_policy(missing: str | None) -> None:
    assert policy.parse_policy(missing) == AWS_DEFAULT_POLICY


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        "[]",
        '"a string"',
        '{"Version": "2012-10-17"}',
        '{"Statement": 42}',
        '{"Statement": [42]}',
        '{"Statement": [{"Effect": "allow", "Principal": "*", "Action": "*"}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": 5}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": "*"}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Condition": {"Bool": true}}]}',
        '{"Statement": [], "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}]}',
    ],
)
def test_unreadable_documents_raise_policy_error(bad: str) -> None:
    with pytest.raises(PolicyError):
        policy.analyse(bad, [ORG])


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_parse_policy_returns_a_copy_the_caller_may_mutate() -> None:
    original = _doc(_allow())
    parsed = policy.parse_policy(original)
    parsed["Statement"].append({"Effect": "Deny"})
    assert len(original["Statement"]) == 1


# --------------------------------------------------------------------------------------------
# analyse(): open policies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [None, "", json.dumps(AWS_DEFAULT_POLICY), AWS_DEFAULT_POLICY])
def test_default_full_access_policy_is_not_compliant(doc: object) -> None:
    verdict = policy.analyse(doc, [ORG])
    assert verdict == PolicyVerdict(
        compliant=False,
        reasons=("statement 0 allows principal '*' action '*' without an aws:PrincipalOrgID condition",),
    )


def test_reasons_name_each_open_statement_with_its_sid_and_actions() -> None:
    doc = _doc(
        _allow(Sid="Confined", Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}),
        _allow(Sid="ReadOnly", Action=["s3:GetObject", "s3:ListBucket"]),
        _allow(Principal={"AWS": f"arn:aws:iam::{OUTSIDE_ACCOUNT}:root"}, Action="s3:PutObject"),
    )
    assert policy.analyse(doc, [ORG]).reasons == (
        "statement 1 (Sid 'ReadOnly') allows principal '*' actions 's3:GetObject', 's3:ListBucket' "
        "without an aws:PrincipalOrgID condition",
        """statement 2 allows principal {"AWS":"arn:aws:iam::777788889999:root"} action 's3:PutObject' """
        "without an aws:PrincipalOrgID condition",
    )


def test_only_deny_statements_is_compliant() -> None:
    assert _compliant(_doc({"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "*"}))


def test_not_principal_allow_is_open() -> None:
    doc = _doc(
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{ORG_ACCOUNTS[0]}:root"},
            "Action": "*",
            "Resource": "*",
        }
    )
    verdict = policy.analyse(doc, [ORG], ORG_ACCOUNTS)
    assert not verdict.compliant
    assert "every principal except" in verdict.reasons[0]


def test_not_principal_allow_confined_by_org_condition_is_compliant() -> None:
    stmt = {
        "Effect": "Allow",
        "NotPrincipal": {"AWS": f"arn:aws:iam::{OUTSIDE_ACCOUNT}:root"},
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
    }
    assert _compliant(_doc(stmt))


def test_not_action_allow_is_open() -> None:
    doc = _doc({"Effect": "Allow", "Principal": "*", "NotAction": "s3:DeleteObject", "Resource": "*"})
    verdict = policy.analyse(doc, [ORG])
    assert not verdict.compliant
    assert "every action except 's3:DeleteObject'" in verdict.reasons[0]


def test_allow_without_principal_element_is_treated_as_open() -> None:
    verdict = policy.analyse(_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}), [ORG])
    assert not verdict.compliant
    assert "no Principal element" in verdict.reasons[0]


def test_org_id_outside_the_allowed_list_is_open() -> None:
    doc = _doc(_allow(Condition={"StringEquals": {"aws:PrincipalOrgID": [ORG, OTHER_ORG]}}))
    assert not _compliant(doc)
    assert _compliant(doc, orgs=[ORG, OTHER_ORG])


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},  # absent key (anonymous) matches
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ORG}},  # empty set matches
        {"StringNotEquals": {"aws:PrincipalOrgID": OTHER_ORG}},
        {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
        {"StringEquals": {"aws:PrincipalOrgID": "${aws:PrincipalOrgID}"}},  # policy variable: always true
        {"StringEquals": {"aws:PrincipalOrgID": []}},
        {"Null": {"aws:PrincipalOrgID": "false"}},
        {"NumericEquals": {"aws:PrincipalOrgID": ORG}},
        {"StringEqualz": {"aws:PrincipalOrgID": ORG}},  # unknown operator never confines
        {"StringEquals": {"aws:ResourceOrgID": ORG}},  # confines resources, not callers
        {"BoolIfExists": {"aws:PrincipalIsAWSService": "true"}},
        {"Bool": {"aws:PrincipalIsAWSService": "false"}},
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/app"}},
    ],
)
def test_conditions_that_do_not_confine(condition: dict) -> None:
    assert not _compliant(_doc(_allow(Condition=condition)), accounts=ORG_ACCOUNTS)


# --------------------------------------------------------------------------------------------
# analyse(): confined Allow statements
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        {"StringEquals": {"aws:PrincipalOrgID": [ORG]}},
        {"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": ORG}},
        {"StringEqualsIgnoreCase": {"aws:PrincipalOrgID": ORG.upper()}},
        {"ForAnyValue:StringEqualsIgnoreCase": {"aws:PrincipalOrgID": [ORG]}},
        {"StringLike": {"aws:PrincipalOrgID": ORG}},
        {"Bool": {"aws:PrincipalIsAWSService": "true"}},
        {"Bool": {"aws:PrincipalIsAWSService": True}},
        {"Bool": {"aws:PrincipalIsAWSService": ["true"]}},
    ],
)
def test_confining_conditions(condition: dict) -> None:
    assert _compliant(_doc(_allow(Condition=condition)))


def test_any_allowed_org_confines() -> None:
    doc = _doc(_allow(Condition={"StringEquals": {"aws:PrincipalOrgID": [SECOND_ORG, ORG]}}))
    assert _compliant(doc, orgs=[ORG, SECOND_ORG])
    assert not _compliant(doc, orgs=[ORG])


def test_condition_keys_are_case_insensitive() -> None:
    for operator, key in [
        ("StringEquals", "aws:principalorgid"),
        ("stringequals", "AWS:PRINCIPALORGID"),
        ("forAnyValue:stringEquals", "aws:PrincipalOrgId"),
    ]:
        assert _compliant(_doc(_allow(Condition={operator: {key: ORG}}))), (operator, key)
    assert _compliant(_doc(_allow(Condition={"BOOL": {"AWS:PrincipalIsAwsService": "TRUE"}})))


def test_conditions_are_evaluated_together_as_iam_does() -> None:
    """One confining key is enough: IAM ANDs every operator and key of a statement."""
    condition = {
        "StringEquals": {"aws:ResourceOrgID": OTHER_ORG, "aws:PrincipalOrgID": ORG},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/data-*"},
        "StringEqualsIfExists": {"aws:SourceVpc": "vpc-0abc"},
    }
    assert _compliant(_doc(_allow(Condition=condition)))


@pytest.mark.parametrize(
    ("operator", "paths", "expected"),
    [
        ("ForAnyValue:StringLike", f"{ORG}/*", True),
        ("ForAnyValue:StringLike", [f"{ORG}/r-ab12/ou-ab12-11111111/*"], True),
        ("StringLike", f"{ORG}/r-ab12/*", True),
        ("StringEquals", f"{ORG}/r-ab12/ou-ab12-11111111/", True),
        ("ForAnyValue:StringLike", [f"{ORG}/*", f"{OTHER_ORG}/*"], False),
        ("ForAnyValue:StringLike", f"{ORG}*", False),  # would also match o-a1b2c3d4e5xyz/...
        ("ForAnyValue:StringLike", "o-*/r-ab12/*", False),
        ("ForAnyValue:StringLike", "*", False),
        ("ForAllValues:StringLike", f"{ORG}/*", False),  # empty set (no org) matches
        ("ForAnyValue:StringLikeIfExists", f"{ORG}/*", False),
    ],
)
def test_principal_org_paths_confines(operator: str, paths: object, expected: bool) -> None:
    doc = _doc(_allow(Condition={operator: {"aws:PrincipalOrgPaths": paths}}))
    assert _compliant(doc) is expected


def test_principal_account_list_confines_when_all_accounts_are_in_the_org() -> None:
    doc = _doc(_allow(Condition={"StringEquals": {"aws:PrincipalAccount": list(ORG_ACCOUNTS)}}))
    assert _compliant(doc, accounts=ORG_ACCOUNTS)
    assert not _compliant(doc)  # the account list is unknown: cannot tell
    outsider = _doc(_allow(Condition={"StringEquals": {"aws:PrincipalAccount": [ORG_ACCOUNTS[0], OUTSIDE_ACCOUNT]}}))
    assert not _compliant(outsider, accounts=ORG_ACCOUNTS)


@pytest.mark.parametrize(
    ("operator", "arn", "expected"),
    [
        ("ArnLike", f"arn:aws:iam::{ORG_ACCOUNTS[0]}:role/*", True),
        ("ArnEquals", f"arn:aws:iam::{ORG_ACCOUNTS[1]}:role/app", True),
        ("StringLike", f"arn:aws:iam::{ORG_ACCOUNTS[0]}:role/*", True),
        ("ArnLike", f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/*", False),
        ("ArnLike", "arn:aws:iam::1111222233*:role/*", False),
        ("StringLike", "arn:aws:iam::*", False),
    ],
)
def test_principal_arn_in_org_accounts_confines(operator: str, arn: str, expected: bool) -> None:
    doc = _doc(_allow(Condition={operator: {"aws:PrincipalArn": arn}}))
    assert _compliant(doc, accounts=ORG_ACCOUNTS) is expected


def test_service_principal_only_confines() -> None:
    assert _compliant(_doc(_allow(Principal={"Service": ["ec2.amazonaws.com", "ssm.amazonaws.com"]})))
    mixed = _allow(Principal={"Service": "ec2.amazonaws.com", "AWS": "*"})
    assert not _compliant(_doc(mixed))


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ({"AWS": f"arn:aws:iam::{ORG_ACCOUNTS[0]}:root"}, True),
        ({"AWS": [ORG_ACCOUNTS[0], f"arn:aws:iam::{ORG_ACCOUNTS[1]}:role/app"]}, True),
        ({"AWS": ORG_ACCOUNTS[1], "Service": "ec2.amazonaws.com"}, True),
        ({"AWS": [ORG_ACCOUNTS[0], OUTSIDE_ACCOUNT]}, False),
        ({"AWS": "*"}, False),
        ({"Federated": "cognito-identity.amazonaws.com"}, False),
        ({"AWS": "AIDAJQABLZS4A3QDU576Q"}, False),  # unique id of a deleted user: account unknown
    ],
)
def test_principal_of_org_accounts_confines(principal: dict, expected: bool) -> None:
    doc = _doc(_allow(Principal=principal))
    assert _compliant(doc, accounts=ORG_ACCOUNTS) is expected
    if expected and "AWS" in principal:
        assert not _compliant(doc)  # without the org's account list we cannot tell


# --------------------------------------------------------------------------------------------
# analyse(): a Deny in the same policy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
        {"StringNotEquals": {"aws:PrincipalOrgID": [ORG]}},
        {"StringNotEqualsIgnoreCase": {"aws:PrincipalOrgID": ORG.upper()}},
        {"stringnotequalsignorecaseifexists": {"AWS:PrincipalOrgId": ORG}},
        {"StringNotEquals": {"aws:PrincipalOrgID": ORG}, "BoolIfExists": {"aws:PrincipalIsAWSService": False}},
    ],
)
def test_deny_with_org_check_covers_open_allows(condition: dict) -> None:
    assert _compliant(
        _doc(
            _allow(), {"Effect": "Allow", "Principal": "*", "NotAction": "iam:*", "Resource": "*"}, _org_deny(condition)
        )
    )


def test_deny_with_aws_star_principal_counts_and_not_principal_does_not() -> None:
    condition = {"StringNotEquals": {"aws:PrincipalOrgID": ORG}}
    assert _compliant(_doc(_allow(), _org_deny(condition, Principal={"AWS": "*"})))
    not_principal = _org_deny(condition)
    del not_principal["Principal"]
    not_principal["NotPrincipal"] = {"AWS": f"arn:aws:iam::{OUTSIDE_ACCOUNT}:root"}
    assert not _compliant(_doc(_allow(), not_principal))


def test_unconditional_deny_of_everything_covers() -> None:
    assert _compliant(_doc(_allow(), {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}))


def test_deny_with_extra_account_exception_does_not_count() -> None:
    deny = _org_deny(
        {
            "StringNotEquals": {"aws:PrincipalOrgID": ORG, "aws:PrincipalAccount": [OUTSIDE_ACCOUNT]},
        }
    )
    assert not _compliant(_doc(_allow(), deny))
    separate_block = _org_deny(
        {
            "StringNotEquals": {"aws:PrincipalOrgID": ORG},
            "ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/*"},
        }
    )
    assert not _compliant(_doc(_allow(), separate_block))


def test_deny_with_plain_bool_service_exception_does_not_count() -> None:
    """`Bool` is false when aws:PrincipalIsAWSService is absent, as for anonymous requests."""
    deny = _org_deny(
        {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
            "Bool": {"aws:PrincipalIsAWSService": "false"},
        }
    )
    assert not _compliant(_doc(_allow(), deny))
    anonymous = RequestContext.anonymous("s3:GetObject", "arn:aws:s3:::corp/data.csv")
    assert evaluate(_doc(_allow(), deny), anonymous)


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {"aws:PrincipalOrgID": [ORG, OTHER_ORG]}},  # exempts the other org
        {"ForAnyValue:StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        {"StringNotLike": {"aws:PrincipalOrgID": "o-*"}},
        {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}},  # no org check at all
        {"StringNotEquals": {"aws:PrincipalOrgID": ORG}, "BoolIfExists": {"aws:PrincipalIsAWSService": "true"}},
    ],
)
def test_deny_conditions_that_do_not_count(condition: dict) -> None:
    assert not _compliant(_doc(_allow(), _org_deny(condition)))


@pytest.mark.parametrize(
    ("allow_actions", "deny_actions", "expected"),
    [
        (["s3:GetObject", "s3:Put*"], ["s3:*"], True),
        (["S3:getobject"], ["s3:GetObject"], True),
        (["s3:Get*"], ["s3:G*"], True),
        (["s3:*"], ["s3:Get*", "s3:Put*"], False),
        ("*", ["s3:*", "dynamodb:*"], False),
        (["dynamodb:GetItem"], ["s3:*"], False),
        (["s3:GetObject"], ["s3:Get?bject"], False),  # inner wildcards: not provable, so not counted
    ],
)
def test_deny_must_cover_every_allowed_action(allow_actions: object, deny_actions: object, expected: bool) -> None:
    deny = _org_deny({"StringNotEquals": {"aws:PrincipalOrgID": ORG}}, Action=deny_actions)
    assert _compliant(_doc(_allow(Action=allow_actions), deny)) is expected


def test_only_a_deny_of_every_action_covers_a_not_action_allow() -> None:
    allow = {"Effect": "Allow", "Principal": "*", "NotAction": "s3:DeleteObject", "Resource": "*"}
    narrow = _org_deny({"StringNotEquals": {"aws:PrincipalOrgID": ORG}}, Action=["s3:*", "dynamodb:*"])
    assert not _compliant(_doc(allow, narrow))
    assert _compliant(_doc(allow, _org_deny({"StringNotEquals": {"aws:PrincipalOrgID": ORG}})))


def test_deny_must_cover_the_allowed_resources() -> None:
    condition = {"StringNotEquals": {"aws:PrincipalOrgID": ORG}}
    deny = _org_deny(condition, Resource="arn:aws:s3:::corp-*")
    assert _compliant(_doc(_allow(Resource=["arn:aws:s3:::corp-data/*", "arn:aws:s3:::corp-logs"]), deny))
    assert not _compliant(_doc(_allow(), deny))
    assert not _compliant(_doc(_allow(Resource="arn:aws:s3:::CORP-data/*"), deny))  # ARNs are case-sensitive
    not_resource = {"Effect": "Allow", "Principal": "*", "Action": "*", "NotResource": "arn:aws:s3:::corp-x"}
    assert not _compliant(_doc(not_resource, deny))
    deny_not_resource = _org_deny(condition)
    del deny_not_resource["Resource"]
    deny_not_resource["NotResource"] = "arn:aws:s3:::corp-public/*"
    assert not _compliant(_doc(_allow(), deny_not_resource))


# --------------------------------------------------------------------------------------------
# analyse(): AWS's published data-perimeter policies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "ec2", "ecr.api", "iam", "ssm", "cloudformation"])
def test_published_data_perimeter_policies_are_compliant_and_left_unchanged(name: str) -> None:
    text = _published(name)
    assert policy.analyse(text, [ORG]) == PolicyVerdict(compliant=True, reasons=())
    assert policy.confine(text, [ORG]) == ConfineResult(changed=False, document=None)


def test_published_s3_policy_is_flagged_only_for_its_deliberately_open_statements() -> None:
    """The S3 example opens AWS-owned buckets to anyone and partner buckets to partner accounts.

    Both are outside "confined to our organization" by design, so they are reported, and nothing
    else in that policy is.
    """
    verdict = policy.analyse(_published("s3"), [ORG])
    assert not verdict.compliant
    assert [reason.split(")")[0] for reason in verdict.reasons] == [
        "statement 3 (Sid 'AllowRequestsToAWSOwnedResources'",
        "statement 4 (Sid 'AllowRequestsByThirdPartyIdentitiesToThirdPartyResources'",
    ]


def test_published_policy_with_a_different_org_id_is_not_compliant() -> None:
    assert not _compliant(_published("default"), orgs=[OTHER_ORG])


# --------------------------------------------------------------------------------------------
# Statement / Version shapes
# --------------------------------------------------------------------------------------------


def test_single_statement_object() -> None:
    stmt = _allow(Sid="Everything")
    doc = {"Version": "2012-10-17", "Statement": stmt}
    assert not _compliant(doc)
    assert _compliant({"Statement": _allow(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}})})
    fixed = json.loads(policy.confine(doc, [ORG]).document)
    assert fixed["Statement"][0] == stmt
    assert len(fixed["Statement"]) == 2


def test_missing_version() -> None:
    # AWS Organizations' own endpoint-policy example has no Version.
    doc = '{"Statement":[{"Principal":"*","Effect":"Allow","Action":["Organizations:DescribeAccount"],"Resource":"*"}]}'
    assert not _compliant(doc)
    fixed = json.loads(policy.confine(doc, [ORG]).document)
    assert "Version" not in fixed
    assert list(fixed) == ["Statement"]


# --------------------------------------------------------------------------------------------
# confine()
# --------------------------------------------------------------------------------------------


def test_fix_appends_the_documented_guard_statement() -> None:
    result = policy.confine(None, [ORG])
    assert result.changed and result.refused is None
    assert json.loads(result.document) == {
        "Version": "2008-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
            {
                "Sid": GUARD_SID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringNotEqualsIfExists": {"aws:PrincipalOrgID": [ORG]},
                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                },
            },
        ],
    }


def test_guard_statement_lists_org_ids_sorted() -> None:
    guard = policy.guard_statement({SECOND_ORG, ORG})
    assert guard["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalOrgID"] == sorted([ORG, SECOND_ORG])
    assert guard is not policy.guard_statement([ORG])  # a fresh dict each time


def test_fix_output_is_compact_json() -> None:
    document = policy.confine(json.dumps(AWS_DEFAULT_POLICY, indent=4), [ORG]).document
    assert document == json.dumps(json.loads(document), separators=(",", ":"))
    assert "\n" not in document and ": " not in document


def test_fix_keeps_every_existing_statement() -> None:
    statements = [
        _allow(Sid="Open", Action=["s3:GetObject", "s3:PutObject"]),
        {
            "Sid": "Odd",
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "123456789012"},
            "NotAction": "iam:*",
            "NotResource": "arn:aws:s3:::x",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"},
        _allow(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}),
    ]
    doc = {"Version": "2012-10-17", "Id": "keep-me", "Statement": statements}
    fixed = json.loads(policy.confine(json.dumps(doc), [ORG]).document)
    assert fixed["Statement"][:-1] == statements
    assert fixed["Version"] == "2012-10-17" and fixed["Id"] == "keep-me"
    assert list(fixed) == ["Version", "Id", "Statement"]
    assert fixed["Statement"][-1] == policy.guard_statement([ORG])


def test_fix_does_not_mutate_the_callers_dict() -> None:
    doc = _doc(_allow())
    before = json.dumps(doc)
    policy.confine(doc, [ORG])
    assert json.dumps(doc) == before


def test_fix_is_idempotent() -> None:
    first = policy.confine(_published("s3"), [ORG])
    assert first.changed
    assert policy.confine(first.document, [ORG]) == ConfineResult(changed=False, document=None)
    assert policy.analyse(first.document, [ORG]).compliant


def test_fix_of_compliant_policy_changes_nothing() -> None:
    doc = _doc(_allow(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}))
    assert policy.confine(doc, [ORG]) == ConfineResult(changed=False, document=None)


def test_fix_uses_a_fresh_sid_when_ours_is_already_taken() -> None:
    stale_guard = policy.guard_statement([OTHER_ORG])  # an old guard for an org we no longer allow
    doc = _doc(_allow(), stale_guard, {**policy.guard_statement([OTHER_ORG]), "Sid": GUARD_SID + "2"})
    fixed = json.loads(policy.confine(doc, [ORG]).document)
    assert fixed["Statement"][:3] == doc["Statement"]
    assert fixed["Statement"][3]["Sid"] == GUARD_SID + "3"


def test_fix_keeps_non_ascii_text_as_is() -> None:
    doc = _doc(_allow(Condition={"StringEquals": {"aws:PrincipalTag/team": "données"}}))
    assert "données" in policy.confine(doc, [ORG]).document


def _padded_default_policy(sid_length: int) -> dict:
    return _doc(_allow(Sid="P" * sid_length))


def _fixed_length(sid_length: int) -> int:
    result = policy.confine(_padded_default_policy(sid_length), [ORG])
    assert result.changed
    return len(result.document)


def test_fix_refused_when_over_20480_chars() -> None:
    sid_length = MAX_POLICY_CHARS - _fixed_length(0) + 1
    result = policy.confine(_padded_default_policy(sid_length), [ORG])
    assert result == ConfineResult(
        changed=False,
        document=None,
        refused="the confined policy would be 20,481 characters, over the 20,480-character endpoint policy limit",
    )


def test_fix_accepted_at_exactly_20480_chars() -> None:
    sid_length = MAX_POLICY_CHARS - _fixed_length(0)
    result = policy.confine(_padded_default_policy(sid_length), [ORG])
    assert result.changed and len(result.document) == MAX_POLICY_CHARS


@pytest.mark.parametrize("orgs", [[], (), set(), "", [""]])
def test_fix_requires_allowed_org_ids(orgs: object) -> None:
    with pytest.raises(ValueError, match="allowed_org_ids"):
        policy.confine(None, orgs)
    with pytest.raises(ValueError):
        policy.guard_statement(orgs)


def test_a_bare_org_id_string_counts_as_one_id() -> None:
    assert _compliant(_doc(_allow(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}})), orgs=ORG)
    fixed = json.loads(policy.confine(None, ORG).document)
    assert fixed["Statement"][-1]["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalOrgID"] == [ORG]


def test_account_ids_may_be_a_one_shot_iterator() -> None:
    doc = _doc(_allow(Principal={"AWS": ORG_ACCOUNTS[0]}), _allow(Action="s3:GetObject"))
    result = policy.confine(doc, [ORG], iter(ORG_ACCOUNTS))
    assert result.changed and policy.analyse(result.document, [ORG], ORG_ACCOUNTS).compliant


def test_fixed_default_policy_keeps_insiders_and_services_and_stops_outsiders() -> None:
    fixed = policy.confine(None, [ORG]).document
    action, resource = "s3:GetObject", "arn:aws:s3:::corp/data.csv"
    assert evaluate(fixed, RequestContext.iam(f"arn:aws:iam::{ORG_ACCOUNTS[0]}:role/app", action, resource, ORG))
    assert evaluate(fixed, RequestContext.service("cloudtrail.amazonaws.com", action, resource))
    assert not evaluate(
        fixed, RequestContext.iam(f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/x", action, resource, OTHER_ORG)
    )
    assert not evaluate(fixed, RequestContext.iam(f"arn:aws:iam::{OUTSIDE_ACCOUNT}:root", action, resource))
    assert not evaluate(fixed, RequestContext.anonymous(action, resource))


# --------------------------------------------------------------------------------------------
# same_policy()
# --------------------------------------------------------------------------------------------


def test_same_policy_ignores_formatting_and_key_order() -> None:
    a = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}'
    b = """{
      "Statement": [ {"Resource": "*", "Action": "*", "Principal": "*", "Effect": "Allow"} ],
      "Version": "2012-10-17"
    }"""
    assert policy.same_policy(a, b)
    assert policy.same_policy(a, json.loads(b))


def test_same_policy_sees_real_changes() -> None:
    base = _doc(_allow(), _allow(Sid="Second"))
    assert not policy.same_policy(base, _doc(_allow(Sid="Second"), _allow()))  # order of statements
    assert not policy.same_policy(base, _doc(_allow(), _allow(Sid="Second", Action=["*"])))
    assert not policy.same_policy(base, _doc(_allow(), _allow(Sid="Second"), version="2008-10-17"))
    assert not policy.same_policy(
        _doc(_allow(Condition={"Bool": {"aws:SecureTransport": True}})),
        _doc(_allow(Condition={"Bool": {"aws:SecureTransport": 1}})),
    )


def test_same_policy_treats_no_policy_as_the_aws_default() -> None:
    assert policy.same_policy(None, "")
    assert policy.same_policy(None, json.dumps(AWS_DEFAULT_POLICY))
    assert not policy.same_policy(None, policy.confine(None, [ORG]).document)


def test_same_policy_with_unreadable_documents() -> None:
    assert policy.same_policy("{broken", "{broken")
    assert not policy.same_policy("{broken", "{broken ")
    assert not policy.same_policy("{broken", None)


def test_deny_with_both_resource_and_not_resource_does_not_count_as_covering() -> None:
    """Found by Hypothesis: such a Deny is invalid in IAM; counting it let an outsider through."""
    doc = {
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
             "NotResource": "arn:aws:s3:::bucket/*",
             "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}},
        ]
    }
    assert not policy.analyse(doc, ["o-abcdefghij"]).compliant
    fixed = policy.confine(doc, ["o-abcdefghij"])
    assert fixed.changed and policy.analyse(fixed.document, ["o-abcdefghij"]).compliant
