"""Rules `interface-endpoint-ingress` and `interface-endpoint-multi-az` on hand-built snapshots (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from vpce_guard.models import IngressRule, SecurityGroup, Status
from vpce_guard.rules import interface_endpoint_ingress, interface_endpoint_multi_az

from .netsnap import CTX, OTHER_ACCOUNT, https_group, interface, snap, vpc

TWO_CIDRS = ("10.0.0.0/16", "100.64.0.0/20")


def _ingress(*groups: SecurityGroup, cidrs: tuple[str, ...] = TWO_CIDRS, ctx=CTX, **ep_kw: object):  # type: ignore[no-untyped-def]
    [f] = interface_endpoint_ingress.evaluate(snap(interface("ssm", **ep_kw), vpcs=(vpc(cidrs=cidrs),), groups=groups),
                                              ctx)
    return f


def test_every_cidr_of_a_vpc_with_several_must_be_allowed() -> None:
    f = _ingress(https_group("10.0.0.0/16"))
    assert f.status is Status.NON_COMPLIANT and not f.actions
    assert f.details["missing_sources"] == ["100.64.0.0/20"]
    assert _ingress(https_group(*TWO_CIDRS)).status is Status.COMPLIANT


@pytest.mark.parametrize("rule", [
    {"cidrs": ("0.0.0.0/0",)},
    {"cidrs": ("10.0.0.0/8", "100.64.0.0/10")},
    {"protocol": "-1", "from_port": None, "to_port": None, "cidrs": TWO_CIDRS},
    {"protocol": "6", "from_port": 0, "to_port": 65535, "cidrs": TWO_CIDRS},
])
def test_wider_rules_cover_the_vpc(rule: dict) -> None:
    spec = {"protocol": "tcp", "from_port": 443, "to_port": 443, **rule}
    group = SecurityGroup(id="sg-1", vpc_id="vpc-1", ingress=(IngressRule(**spec),))
    assert _ingress(group).status is Status.COMPLIANT


@pytest.mark.parametrize("rule", [
    {"protocol": "udp", "cidrs": TWO_CIDRS},
    {"from_port": 80, "to_port": 80, "cidrs": TWO_CIDRS},
    {"cidrs": ("10.0.1.0/24", "100.64.0.0/20")},  # narrower than the VPC
    {"cidrs": (), "ipv6_cidrs": ("::/0",)},
    {"cidrs": (), "prefix_list_ids": ("pl-0123abcd",)},
])
def test_rules_that_do_not_cover_https_from_the_vpc(rule: dict) -> None:
    spec = {"protocol": "tcp", "from_port": 443, "to_port": 443, **rule}
    group = SecurityGroup(id="sg-1", vpc_id="vpc-1", ingress=(IngressRule(**spec),))
    assert _ingress(group).status is Status.NON_COMPLIANT


def test_rules_of_several_groups_add_up() -> None:
    f = _ingress(https_group("10.0.0.0/16"), https_group("100.64.0.0/20", group_id="sg-2"), groups=("sg-1", "sg-2"))
    assert f.status is Status.COMPLIANT


def test_configured_sources_replace_the_vpc_cidrs() -> None:
    ctx = dataclasses.replace(CTX, endpoint_ingress_cidrs=("192.168.0.0/16",), endpoint_ingress_source_groups=("sg-app",))
    f = _ingress(https_group("192.168.0.0/16"), ctx=ctx)
    assert f.details["missing_sources"] == ["sg-app"]
    group = SecurityGroup(id="sg-1", vpc_id="vpc-1", ingress=(
        IngressRule(protocol="tcp", from_port=443, to_port=443, cidrs=("192.168.0.0/16",), group_ids=("sg-app",)),))
    assert _ingress(group, ctx=ctx).status is Status.COMPLIANT


def test_opt_in_adds_the_missing_sources_to_the_first_own_group() -> None:
    ctx = dataclasses.replace(CTX, add_endpoint_ingress=True)
    foreign = https_group(group_id="sg-0", owner=OTHER_ACCOUNT)
    f = _ingress(foreign, https_group("10.0.0.0/16"), ctx=ctx, groups=("sg-0", "sg-1"))
    [action] = f.actions
    assert action.kind == "authorize_ingress" and action.resource_id == "sg-1"
    assert action.params["cidrs"] == ["100.64.0.0/20"] and action.params["port"] == 443


def test_opt_in_never_touches_a_group_of_another_account() -> None:
    ctx = dataclasses.replace(CTX, add_endpoint_ingress=True)
    f = _ingress(https_group(owner=OTHER_ACCOUNT), ctx=ctx)
    assert not f.actions and f.details["unfixable"]


def test_unread_groups_or_cidrs_are_skipped() -> None:
    assert _ingress().status is Status.SKIPPED
    assert _ingress(https_group(*TWO_CIDRS), cidrs=()).status is Status.SKIPPED


@pytest.mark.parametrize("state", ["pending", "pendingacceptance"])
def test_endpoints_being_created_are_checked(state: str) -> None:
    assert _ingress(https_group("10.0.0.0/16"), state=state).status is Status.NON_COMPLIANT


def test_gone_and_gateway_endpoints_are_not_checked() -> None:
    assert interface_endpoint_ingress.evaluate(snap(interface("ssm", state="deleted")), CTX) == []


def test_one_zone_is_a_resilience_finding_two_are_fine() -> None:
    [f] = interface_endpoint_multi_az.evaluate(snap(interface("ssm", subnets=("subnet-a", "subnet-a2"))), CTX)
    assert f.status is Status.NON_COMPLIANT and not f.actions and f.details["zones"] == ["euw1-az1"]
    [ok] = interface_endpoint_multi_az.evaluate(snap(interface("ssm", subnets=("subnet-a", "subnet-b"))), CTX)
    assert ok.status is Status.COMPLIANT


def test_unread_subnets_are_skipped() -> None:
    [f] = interface_endpoint_multi_az.evaluate(snap(interface("ssm", subnets=("subnet-zz",))), CTX)
    assert f.status is Status.SKIPPED
