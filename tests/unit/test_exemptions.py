"""Exemption matching (pure): scope, rule, expiry, specificity and tag requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from vpce_guard.exemptions import Exemption, Scope, match, tag_requests

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ACCOUNT = "111122223333"
EP = "vpce-0a1b2c3d4e5f60001"
VPC = "vpc-0a1b2c3d4e5f60001"
OU = "ou-ab12-cdefgh12"
RULE = "endpoint-policy-org-confined"


def ex(scope: Scope, target: str, *, rule: str = "*", days: float = 1, **kw: Any) -> Exemption:
    account = kw.pop("account", ACCOUNT if scope in (Scope.RESOURCE, Scope.VPC) else None)
    return Exemption(scope=scope, target=target, account=account, rule_id=rule, reason="agreed exception",
                     owner="team-net", expires_at=int((NOW + timedelta(days=days)).timestamp()), **kw)


def find(entries: list[Exemption], *, tags: dict[str, str] | None = None, now: datetime = NOW,
         ou_path: tuple[str, ...] = (OU,), rule: str = RULE, account: str = ACCOUNT) -> Exemption | None:
    return match(entries, rule_id=rule, account=account, resource_id=EP, vpc_id=VPC, ou_path=ou_path,
                 tags=tags or {}, now=now)


@pytest.mark.parametrize("entry", [
    ex(Scope.RESOURCE, EP), ex(Scope.VPC, VPC), ex(Scope.ACCOUNT, ACCOUNT), ex(Scope.OU, OU)])
def test_each_scope_covers_the_resource(entry: Exemption) -> None:
    assert find([entry]) == entry


@pytest.mark.parametrize("entry", [
    ex(Scope.RESOURCE, "vpce-0a1b2c3d4e5f60002"), ex(Scope.RESOURCE, EP, account="444455556666"),
    ex(Scope.VPC, "vpc-0a1b2c3d4e5f60002"), ex(Scope.ACCOUNT, "444455556666"), ex(Scope.OU, "ou-ab12-zzzzzzzz"),
    ex(Scope.RESOURCE, EP, rule="gateway-endpoint-route-tables")])
def test_other_resources_accounts_ous_and_rules_are_not_covered(entry: Exemption) -> None:
    assert find([entry]) is None


def test_an_expired_exemption_stops_applying_at_its_expiry() -> None:
    entry = ex(Scope.RESOURCE, EP, days=1)
    assert find([entry], now=NOW + timedelta(days=1) - timedelta(seconds=1)) == entry
    assert find([entry], now=NOW + timedelta(days=1)) is None


def test_the_most_specific_exemption_is_the_one_recorded() -> None:
    account_wide = ex(Scope.ACCOUNT, ACCOUNT, days=300)
    vpc = ex(Scope.VPC, VPC, days=10)
    resource_all_rules = ex(Scope.RESOURCE, EP, days=5)
    resource_rule = ex(Scope.RESOURCE, EP, rule=RULE, days=2)
    assert find([account_wide, vpc]) == vpc
    assert find([account_wide, vpc, resource_all_rules]) == resource_all_rules
    assert find([account_wide, vpc, resource_all_rules, resource_rule]) == resource_rule


def test_the_nearest_ou_wins() -> None:
    parent, child = ex(Scope.OU, "ou-ab12-parent00"), ex(Scope.OU, "ou-ab12-child000")
    assert find([parent, child], ou_path=("ou-ab12-child000", "ou-ab12-parent00")) == child


def test_a_tag_alone_exempts_nothing() -> None:
    assert find([], tags={"vpce-guard:exempt": "true"}) is None


def test_a_tag_request_counts_only_where_the_registry_allows_it_and_for_the_rules_it_names() -> None:
    allowed = ex(Scope.ACCOUNT, ACCOUNT, tag_request=True)
    assert find([allowed]) is None, "the registry allows requests, but this resource did not ask"
    assert find([allowed], tags={"vpce-guard:exempt": "true"}) == allowed
    assert find([allowed], tags={"vpce-guard:exempt": f"other-rule, {RULE}"}) == allowed
    assert find([allowed], tags={"vpce-guard:exempt": "other-rule"}) is None


@pytest.mark.parametrize(("value", "asked"), [("true", True), ("ALL", True), ("*", True), ("", False),
                                              ("gateway-endpoint-route-tables", False)])
def test_tag_values(value: str, asked: bool) -> None:
    assert tag_requests({"vpce-guard:exempt": value}, "vpce-guard:exempt", RULE) is asked


@pytest.mark.parametrize("kw", [
    {"scope": Scope.RESOURCE, "target": EP, "account": None},
    {"scope": Scope.VPC, "target": EP, "account": ACCOUNT},
    {"scope": Scope.ACCOUNT, "target": "12345", "account": None},
    {"scope": Scope.OU, "target": "r-ab12", "account": None},
    {"scope": Scope.OU, "target": OU, "account": ACCOUNT},
    {"scope": Scope.RESOURCE, "target": EP, "account": ACCOUNT, "rule_id": "Bad Rule"},
])
def test_malformed_exemptions_are_rejected(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Exemption(reason="because", owner="me", expires_at=2_000_000_000, **kw)


def test_items_round_trip_with_their_keys() -> None:
    entry = ex(Scope.VPC, VPC, rule=RULE)
    item = entry.to_item()
    assert (item["pk"], item["sk"]) == (f"ACCOUNT#{ACCOUNT}", f"vpc#{VPC}#{RULE}")
    assert Exemption.from_item(item) == entry
    assert ex(Scope.OU, OU).to_item()["pk"] == "OU"
