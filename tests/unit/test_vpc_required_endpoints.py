"""Rule `vpc-required-endpoints` (profiles, deletions, opt-in creation, patch-manager policy) on hand-built
snapshots, and the profile catalogue (pure: no AWS)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard import profiles
from vpce_guard.models import RouteTable, Snapshot, Status
from vpce_guard.rules import vpc_required_endpoints as rule

from .netsnap import ACCOUNT, CTX, ORG, OTHER_ACCOUNT, REGION, gateway, interface, snap, vpc

SSM = {"vpce-guard:profiles": "ssm-session-manager"}
CREATE = dataclasses.replace(CTX, create_missing_endpoints=True)


def _vpc_finding(findings: list) -> object:  # type: ignore[type-arg]
    [f] = [f for f in findings if f.resource_type == "vpc"]
    return f


def test_missing_ssmmessages_is_reported_with_its_profile() -> None:
    f = _vpc_finding(rule.evaluate(snap(interface("ssm"), interface("ec2messages"), vpcs=(vpc(tags=SSM),)), CTX))
    assert f.status is Status.NON_COMPLIANT and not f.actions
    assert "ssmmessages" in f.reason and "ssm-session-manager" in f.reason
    assert f.details["missing"] == [{"service": "ssmmessages", "type": "Interface",
                                     "profiles": ["ssm-session-manager"], "deleted": []}]


def test_all_present_is_compliant_and_pending_endpoints_count_as_present() -> None:
    eps = (interface("ssm"), interface("ssmmessages", state="pending"),
           interface("ec2messages", state="pendingacceptance"))
    f = _vpc_finding(rule.evaluate(snap(*eps, vpcs=(vpc(tags=SSM),)), CTX))
    assert f.status is Status.COMPLIANT
    assert len(f.details["not_yet_available"]) == 2


def test_deleted_endpoint_a_profile_requires_is_named() -> None:
    eps = (interface("ssm"), interface("ssmmessages", "vpce-old", state="deleted"), interface("ec2messages"))
    f = _vpc_finding(rule.evaluate(snap(*eps, vpcs=(vpc(tags=SSM),)), CTX))
    assert f.status is Status.NON_COMPLIANT and "vpce-old is deleted" in f.reason
    assert f.details["missing"][0]["deleted"] == ["vpce-old"]


def test_wrong_type_does_not_satisfy_a_gateway_requirement() -> None:
    s3_iface = interface("s3", private_dns=False)
    f = _vpc_finding(rule.evaluate(snap(s3_iface, vpcs=(vpc(tags={"vpce-guard:profiles": "s3-gateway"}),)), CTX))
    assert f.status is Status.NON_COMPLIANT and "s3 (gateway)" in f.reason


def test_default_profiles_apply_and_a_tag_replaces_them() -> None:
    ctx = dataclasses.replace(CTX, default_profiles=("s3-gateway",))
    f = _vpc_finding(rule.evaluate(snap(interface("ssm")), ctx))
    assert f.details["profiles_from"] == "default" and "s3 (gateway)" in f.reason
    for value in ("none", ""):
        assert rule.evaluate(snap(vpcs=(vpc(tags={"vpce-guard:profiles": value}),)), ctx) == []
    f = _vpc_finding(rule.evaluate(snap(gateway(), vpcs=(vpc(tags={"vpce-guard:profiles": "secrets-manager"}),)), ctx))
    assert f.details["profiles_from"] == "tag" and "secretsmanager" in f.reason and "s3 (gateway)" not in f.reason


def test_unknown_profile_in_a_tag_is_reported() -> None:
    f = _vpc_finding(rule.evaluate(snap(gateway(), vpcs=(vpc(tags={"vpce-guard:profiles": "s3-gateway ssm-sesion"}),)),
                                   CTX))
    assert f.status is Status.NON_COMPLIANT and f.details["unknown_profiles"] == ["ssm-sesion"]


def test_vpc_without_profiles_or_not_fully_read_is_not_judged() -> None:
    assert rule.evaluate(snap(interface("ssm")), CTX) == []
    assert rule.evaluate(snap(interface("ssm"), vpcs=(vpc(tags=SSM),), complete=False), CTX) == []


def test_s3_policy_of_a_patch_manager_vpc_is_judged_from_the_endpoint_alone() -> None:
    """ModifyVpcEndpoint on the S3 endpoint reads that endpoint only: its policy can still be judged."""
    findings = rule.evaluate(snap(gateway(policy=RESTRICTED), vpcs=(vpc(tags={"vpce-guard:profiles": "patch-manager"}),),
                                  complete=False), CTX)
    assert [(f.resource_id, f.status) for f in findings] == [("vpce-gw-s3", Status.NON_COMPLIANT)]


def test_vpc_shared_with_us_is_its_owners_business() -> None:
    [f] = rule.evaluate(snap(vpcs=(vpc(tags=SSM, owner=OTHER_ACCOUNT),)), CTX)
    assert f.status is Status.NOT_APPLICABLE


def test_creation_is_opt_in_and_turns_vpc_dns_on_first() -> None:
    eps = (interface("ssm", groups=("sg-9",), subnets=("subnet-a", "subnet-b")), interface("ec2messages"))
    f = _vpc_finding(rule.evaluate(snap(*eps, vpcs=(vpc(False, False, tags=SSM),)), CREATE))
    assert [a.kind for a in f.actions] == ["enable_vpc_attribute", "enable_vpc_attribute", "create_endpoint"]
    create = f.actions[-1]
    p = create.params
    assert p["service_name"] == f"com.amazonaws.{REGION}.ssmmessages" and p["type"] == "Interface"
    assert p["subnet_ids"] == ["subnet-a", "subnet-b"] and p["security_group_ids"] == ["sg-9"]
    assert p["private_dns_enabled"] is True and p["tags"] == {rule.CREATED_TAG: "ssm-session-manager"}
    doc = json.loads(p["policy_document"])
    outsider = RequestContext.iam("arn:aws:iam::999988887777:role/x", "ssm:GetParameter", org_id="o-outsider000")
    insider = RequestContext.iam(f"arn:aws:iam::{ACCOUNT}:role/x", "ssm:GetParameter", org_id=ORG)
    assert evaluate(doc, insider) and not evaluate(doc, outsider), "created with an org-confined policy"
    again = _vpc_finding(rule.evaluate(snap(*eps, vpcs=(vpc(False, False, tags=SSM),)), CREATE))
    assert again.actions[-1].params["client_token"] == p["client_token"], "a retry creates nothing twice"


def test_recreation_after_a_deletion_uses_a_new_client_token() -> None:
    base = (interface("ssm"), interface("ec2messages"))
    first = _vpc_finding(rule.evaluate(snap(*base, vpcs=(vpc(tags=SSM),)), CREATE)).actions[-1]
    gone = interface("ssmmessages", "vpce-old", state="deleted")
    second = _vpc_finding(rule.evaluate(snap(*base, gone, vpcs=(vpc(tags=SSM),)), CREATE)).actions[-1]
    assert first.params["client_token"] != second.params["client_token"]


def test_gateway_creation_associates_every_route_table_but_excluded_ones() -> None:
    tables = (RouteTable(id="rtb-a", vpc_id="vpc-1"),
              RouteTable(id="rtb-x", vpc_id="vpc-1", tags={"vpce-guard:exclude": "true"}))
    f = _vpc_finding(rule.evaluate(snap(vpcs=(vpc(tags={"vpce-guard:profiles": "s3-gateway"}),), route_tables=tables),
                                   CREATE))
    [create] = f.actions
    assert create.params["type"] == "Gateway" and create.params["route_table_ids"] == ["rtb-a"]


def test_interface_creation_without_an_endpoint_to_copy_placement_from_is_refused() -> None:
    f = _vpc_finding(rule.evaluate(snap(vpcs=(vpc(tags={"vpce-guard:profiles": "secrets-manager"}),)), CREATE))
    assert not f.actions and "subnets and security groups" in f.details["unfixable"]


def test_nothing_is_created_in_a_vpc_shared_with_us() -> None:
    eps = (interface("ssm"),)
    [f] = rule.evaluate(snap(*eps, vpcs=(vpc(False, False, tags=SSM, owner=OTHER_ACCOUNT),)), CREATE)
    assert f.status is Status.NOT_APPLICABLE


RESTRICTED = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::corp-*", "arn:aws:s3:::corp-*/*"],
     "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}}]})
WITH_SSM_BUCKETS = json.dumps({"Version": "2012-10-17", "Statement": [
    *json.loads(RESTRICTED)["Statement"],
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
     "Resource": [f"arn:aws:s3:::patch-baseline-snapshot-{REGION}/*", f"arn:aws:s3:::aws-ssm-{REGION}/*"]}]})
PERIMETER = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
                   "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]})
RESOURCE_PERIMETER = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG}}}]})


@pytest.mark.parametrize(("doc", "status"), [
    (None, Status.COMPLIANT),
    (PERIMETER, Status.COMPLIANT),
    (WITH_SSM_BUCKETS, Status.COMPLIANT),
    (RESTRICTED, Status.NON_COMPLIANT),
    (RESOURCE_PERIMETER, Status.NON_COMPLIANT),  # AWS-owned buckets are outside the organization
])
def test_patch_manager_s3_policy_must_still_allow_the_ssm_buckets(doc: str | None, status: Status) -> None:
    eps = (interface("ssm"), interface("ssmmessages"), interface("ec2messages"), gateway(policy=doc))
    findings = rule.evaluate(snap(*eps, vpcs=(vpc(tags={"vpce-guard:profiles": "patch-manager"}),)), CTX)
    [f] = [f for f in findings if f.resource_id == "vpce-gw-s3"]
    assert f.status is status and not f.actions
    if status is Status.NON_COMPLIANT:
        assert f.details["denied"] == [f"arn:aws:s3:::patch-baseline-snapshot-{REGION}/*",
                                       f"arn:aws:s3:::aws-ssm-{REGION}/*"]


def test_s3_policy_check_only_for_profiles_that_ask_for_it() -> None:
    findings = rule.evaluate(snap(gateway(policy=RESTRICTED), vpcs=(vpc(tags={"vpce-guard:profiles": "s3-gateway"}),)),
                             CTX)
    assert [f.resource_type for f in findings] == ["vpc"]


def test_shipped_profiles_and_their_contents() -> None:
    assert set(profiles.SHIPPED) >= {"s3-gateway", "ssm-session-manager", "patch-manager", "secrets-manager"}
    ssm = profiles.SHIPPED["ssm-session-manager"]
    assert {(r.service, r.type, r.private_dns) for r in ssm.endpoints} == {
        ("ssm", "Interface", True), ("ssmmessages", "Interface", True), ("ec2messages", "Interface", True)}


@pytest.mark.parametrize(("value", "names"), [
    ("ssm-session-manager,s3-gateway", ("ssm-session-manager", "s3-gateway")),
    (" SSM-Session-Manager + s3-gateway / s3-gateway ", ("ssm-session-manager", "s3-gateway")),
    ("none", ()), ("", ()), ("-", ()),
])
def test_tag_values_are_parsed_leniently(value: str, names: tuple[str, ...]) -> None:
    assert profiles.parse_names(value) == names


def test_custom_profiles_are_validated() -> None:
    cat = profiles.catalogue('{"queues": {"endpoints": [{"service": "sqs", "private_dns": true}]}}')
    assert cat["queues"].endpoints[0].type == "Interface"
    for bad in ('{"s3-gateway": {}}', "[1]", "{", '{"x": {"endpoints": [{"service": "s3", "type": "Gateway", '
                                                  '"private_dns": true}]}}', '{"x": {"surprise": 1}}'):
        with pytest.raises(profiles.ProfileError):
            profiles.catalogue(bad)


def test_services_with_dotted_names_and_china_regions() -> None:
    ecr = interface("ecr.dkr")
    assert ecr.service_short_name == "ecr.dkr"
    cat = profiles.catalogue('{"images": {"endpoints": [{"service": "ecr.dkr"}, {"service": "ecr.api"}]}}')
    ctx = dataclasses.replace(CREATE, profiles=cat, default_profiles=("images",))
    f = _vpc_finding(rule.evaluate(snap(ecr), ctx))
    [create] = f.actions
    assert create.params["service_name"] == f"com.amazonaws.{REGION}.ecr.api"
    cn = Snapshot(account=ACCOUNT, region="cn-north-1", vpcs={"vpc-1": vpc()}, vpcs_with_all_endpoints=frozenset({"vpc-1"}),
                  route_tables={"rtb-a": RouteTable(id="rtb-a", vpc_id="vpc-1")})
    s3 = dataclasses.replace(CREATE, default_profiles=("s3-gateway",))
    [create] = _vpc_finding(rule.evaluate(cn, s3)).actions
    assert create.params["service_name"] == "cn.com.amazonaws.cn-north-1.s3"
