"""Rules `private-dns-vpc-dns` and `gateway-endpoint-dns-support` on hand-built snapshots (pure: no AWS)."""

from __future__ import annotations

import dataclasses

from vpce_guard.models import Status
from vpce_guard.rules import gateway_dns_support, private_dns_vpc_dns

from .netsnap import CTX, OTHER_ACCOUNT, gateway, interface, snap, vpc

PROFILED = {"vpce-guard:profiles": "ssm-session-manager"}


def _steps(finding: object) -> list[tuple[str, str, object]]:
    return [(a.kind, a.resource_id, a.params.get("attribute", a.params.get("enabled")))
            for a in finding.actions]  # type: ignore[attr-defined]


def test_hostnames_off_with_a_private_dns_endpoint_turns_hostnames_on_only() -> None:
    [f] = private_dns_vpc_dns.evaluate(snap(interface("ssm"), vpcs=(vpc(True, False),)), CTX)
    assert f.status is Status.NON_COMPLIANT and f.resource_id == "vpc-1" and f.resource_type == "vpc"
    assert _steps(f) == [("enable_vpc_attribute", "vpc-1", "enableDnsHostnames")]
    assert "vpce-ssm" in f.reason and "enableDnsHostnames" in f.reason


def test_both_off_turns_support_on_before_hostnames_one_attribute_per_action() -> None:
    [f] = private_dns_vpc_dns.evaluate(snap(interface("ssm"), vpcs=(vpc(False, False),)), CTX)
    assert _steps(f) == [("enable_vpc_attribute", "vpc-1", "enableDnsSupport"),
                         ("enable_vpc_attribute", "vpc-1", "enableDnsHostnames")]
    assert all(len(a.params) == 1 for a in f.actions)


def test_private_dns_required_by_profile_is_turned_on_after_the_vpc_attributes() -> None:
    eps = (interface("ssm", private_dns=False), interface("ssmmessages"), interface("ec2messages"))
    [f] = private_dns_vpc_dns.evaluate(snap(*eps, vpcs=(vpc(False, False, tags=PROFILED),)), CTX)
    assert _steps(f) == [("enable_vpc_attribute", "vpc-1", "enableDnsSupport"),
                         ("enable_vpc_attribute", "vpc-1", "enableDnsHostnames"),
                         ("set_private_dns", "vpce-ssm", True)]
    assert "required by ssm-session-manager" in f.reason


def test_private_dns_off_and_not_required_is_not_applicable() -> None:
    [f] = private_dns_vpc_dns.evaluate(snap(interface("sqs", private_dns=False), vpcs=(vpc(False, False),)), CTX)
    assert f.status is Status.NOT_APPLICABLE and not f.actions


def test_profile_from_the_default_parameter_counts_too() -> None:
    ctx = dataclasses.replace(CTX, default_profiles=("ssm-session-manager",))
    [f] = private_dns_vpc_dns.evaluate(snap(interface("ssm", private_dns=False)), ctx)
    assert _steps(f) == [("set_private_dns", "vpce-ssm", True)]


def test_pending_endpoint_gets_the_vpc_fix_but_its_private_dns_waits() -> None:
    ep = interface("ssm", private_dns=False, state="pending")
    [f] = private_dns_vpc_dns.evaluate(snap(ep, vpcs=(vpc(True, False, tags=PROFILED),)), CTX)
    assert _steps(f) == [("enable_vpc_attribute", "vpc-1", "enableDnsHostnames")]
    assert "pending" in f.details["not_changed"][0]


def test_pending_acceptance_endpoint_alone_is_reported_and_left_for_later() -> None:
    ep = interface("ssm", private_dns=False, state="pendingacceptance")
    [f] = private_dns_vpc_dns.evaluate(snap(ep, vpcs=(vpc(tags=PROFILED),)), CTX)
    assert f.status is Status.NON_COMPLIANT and not f.actions and "unfixable" not in f.details
    assert "pendingacceptance" in f.reason


def test_endpoint_of_another_account_in_our_shared_vpc_is_not_changed() -> None:
    ep = interface("ssm", private_dns=False, owner=OTHER_ACCOUNT)
    [f] = private_dns_vpc_dns.evaluate(snap(ep, vpcs=(vpc(True, False, tags=PROFILED),)), CTX)
    assert _steps(f) == [("enable_vpc_attribute", "vpc-1", "enableDnsHostnames")]
    assert OTHER_ACCOUNT in f.details["not_changed"][0]


def test_vpc_shared_with_us_by_its_owner_is_reported_not_fixed() -> None:
    [f] = private_dns_vpc_dns.evaluate(snap(interface("ssm"), vpcs=(vpc(True, False, owner=OTHER_ACCOUNT),)), CTX)
    assert f.status is Status.NON_COMPLIANT and not f.actions
    assert OTHER_ACCOUNT in f.details["unfixable"]


def test_unreadable_attributes_are_skipped_not_guessed() -> None:
    [f] = private_dns_vpc_dns.evaluate(snap(interface("ssm"), vpcs=(vpc(None, None),)), CTX)
    assert f.status is Status.SKIPPED and not f.actions


def test_partial_view_never_concludes_compliant_but_acts_on_evidence() -> None:
    assert private_dns_vpc_dns.evaluate(snap(interface("ssm"), complete=False), CTX) == []
    [f] = private_dns_vpc_dns.evaluate(snap(interface("ssm"), vpcs=(vpc(True, False),), complete=False), CTX)
    assert f.status is Status.NON_COMPLIANT
    [ok] = private_dns_vpc_dns.evaluate(snap(interface("ssm")), CTX)
    assert ok.status is Status.COMPLIANT


def test_deleted_endpoints_do_not_count() -> None:
    ep = interface("ssm", state="deleted")
    assert private_dns_vpc_dns.evaluate(snap(ep, vpcs=(vpc(True, False),)), CTX) == []


def test_gateway_endpoint_needs_dns_support_only() -> None:
    [f] = gateway_dns_support.evaluate(snap(gateway(), vpcs=(vpc(False, False),)), CTX)
    assert f.status is Status.NON_COMPLIANT
    assert _steps(f) == [("enable_vpc_attribute", "vpc-1", "enableDnsSupport")]
    [ok] = gateway_dns_support.evaluate(snap(gateway(), vpcs=(vpc(True, False),)), CTX)
    assert ok.status is Status.COMPLIANT


def test_gateway_dns_rule_ignores_vpcs_without_a_live_gateway_endpoint() -> None:
    assert gateway_dns_support.evaluate(snap(interface("ssm"), vpcs=(vpc(False, False),)), CTX) == []
    assert gateway_dns_support.evaluate(snap(gateway(state="deleted"), vpcs=(vpc(False, False),)), CTX) == []


def test_gateway_dns_rule_in_a_vpc_shared_with_us_is_unfixable() -> None:
    [f] = gateway_dns_support.evaluate(snap(gateway(), vpcs=(vpc(False, True, owner=OTHER_ACCOUNT),)), CTX)
    assert not f.actions and OTHER_ACCOUNT in f.details["unfixable"]


def test_gateway_dns_rule_skips_when_the_attribute_was_not_read() -> None:
    [f] = gateway_dns_support.evaluate(snap(gateway(), vpcs=(vpc(None, None),)), CTX)
    assert f.status is Status.SKIPPED
