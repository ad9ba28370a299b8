"""Security Hub across the organization: a member account's findings are imported in that member account and
region, through the spoke role the hub assumes there, never in the hub."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.org import HUB_FUNCTION_ROLES, OrgWorld
from devkit.seed import render_event
from tests.support.faults import FaultInjector
from tests.support.sts_gate import AssumeRoleGate

from .conftest import REGIONS, Hub


def _findings(org: OrgWorld, account: str, region: str) -> list[dict[str, Any]]:
    client = org.session(account, region).client("securityhub")
    return [f for page in client.get_paginator("get_findings").paginate() for f in page["Findings"]]


@pytest.mark.parametrize("org", [REGIONS], indirect=True, ids=["two regions"])
def test_a_member_accounts_finding_is_imported_in_that_account_through_the_spoke_role(
        hub: Hub, org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any) -> None:
    member, region = org.members[0], "eu-west-1"
    for account in org.accounts:
        for r in org.regions:
            org.session(account, r).client("securityhub").enable_security_hub()
    hub.overrides.update(SecurityHubFindings="true", Mode="dry_run")
    w = org.vpcs[(member, region)]
    event = render_event("modify-vpc-endpoint.json", w.mapping(), account=member, region=region)

    with FaultInjector().installed() as recorder:
        result = hub.call("OnChangeFunction", event)

    assert result["published"]["security_hub"] >= 2
    endpoint = w.ids["s3_endpoint"]
    found = {f["Id"]: f for f in _findings(org, member, region)}
    policy = found[f"vpce-guard/{member}/{region}/endpoint-policy-org-confined/{endpoint}"]
    assert policy["AwsAccountId"] == member and policy["Compliance"]["Status"] == "FAILED"
    assert policy["ProductArn"] == f"arn:aws:securityhub:{region}:{member}:product/{member}/default"
    assert policy["Resources"][0]["Id"] == f"arn:aws:ec2:{region}:{member}:vpc-endpoint/{endpoint}"
    # Nowhere else: not in the hub, not in the member's other region, not in the other member.
    for account in org.accounts:
        for r in org.regions:
            if (account, r) != (member, region):
                assert _findings(org, account, r) == [], (account, r)
    # The import was signed with the spoke role's credentials, the ones the fix uses.
    [assumed] = gate.calls
    assert assumed.allowed and assumed.role_arn == f"arn:aws:iam::{member}:role/{org.spoke_role_name}"
    assert f":assumed-role/{HUB_FUNCTION_ROLES[0]}/" in assumed.caller_arn
    imports = [c for c in recorder.calls if c.name == "securityhub.BatchImportFindings" and c.stage == "call"]
    describes = [c for c in recorder.calls if c.name == "ec2.DescribeVpcEndpoints" and c.stage == "call"]
    assert imports and {c.access_key for c in imports} == {c.access_key for c in describes}
