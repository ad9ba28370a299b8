"""RuleContext takes what the rules need from Settings by field name: nothing is copied by hand, and a field
added to one and not the other is caught here."""

from __future__ import annotations

import dataclasses

from vpce_guard.config import Settings
from vpce_guard.rules import RuleContext

#: RuleContext fields computed from Settings rather than taken as they are (profiles: from custom_profiles).
DERIVED = {"profiles"}


def test_every_rule_context_field_comes_from_a_setting_of_the_same_name() -> None:
    names = {f.name for f in dataclasses.fields(RuleContext)}
    assert names - set(Settings.model_fields) == DERIVED


def test_from_settings_carries_every_shared_setting() -> None:
    settings = Settings(
        ledger_table="ledger", org_account_ids=("111122223333",), exclude_tag_key="k", exclude_tag_value="yes",
        aws_owned_resource_arns=("arn:aws:s3:::repo.<region>.amazonaws.com/*",),
        custom_profiles='{"mine": {"description": "d", "endpoints": [{"service": "sqs", "type": "Interface"}]}}',
        default_profiles=("mine",), profiles_tag_key="p", create_missing_endpoints=True, add_endpoint_ingress=True,
        endpoint_ingress_cidrs=("10.0.0.0/8",), endpoint_ingress_source_groups=("sg-0123456789abcdef0",))
    ctx = RuleContext.from_settings(settings, allowed_org_ids=frozenset({"o-abcdefghij"}))
    assert ctx.allowed_org_ids == frozenset({"o-abcdefghij"}), "resolved for the run, not the raw setting"
    assert ctx.org_account_ids == frozenset({"111122223333"})
    assert set(ctx.profiles) == set(settings.profile_catalogue()) and "mine" in ctx.profiles
    for f in dataclasses.fields(RuleContext):
        if f.name in DERIVED | {"allowed_org_ids", "org_account_ids"}:
            continue
        value = getattr(ctx, f.name)
        assert value == getattr(settings, f.name), f.name
        assert value != f.default, f"{f.name}: this test must set a non-default value for every field"
