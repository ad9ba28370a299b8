"""Recognising vpce-guard's own changes (pure)."""

from __future__ import annotations

import pytest

from vpce_guard.loops import OwnRoles, lookalike, own_change, parse_role
from vpce_guard.models import Trigger

HUB = "123456789012"
OWN = OwnRoles(hub_account=HUB, hub_role_names=frozenset({"vpce-guard-OnChangeFunctionRole-ABC"}),
               hub_role_path="/vpce-guard/", spoke_role_name="vpce-guard-remediation")


@pytest.mark.parametrize("trigger", [
    Trigger(actor_arn="arn:aws:sts::444455556666:assumed-role/vpce-guard-remediation/vpce-guard",
            issuer_arn="arn:aws:iam::444455556666:role/vpce-guard-remediation"),
    Trigger(actor_arn=f"arn:aws:sts::{HUB}:assumed-role/vpce-guard-OnChangeFunctionRole-ABC/fn"),
    Trigger(actor_arn=f"arn:aws:sts::{HUB}:assumed-role/vpce-guard-RollbackFunctionRole-XYZ/fn",
            issuer_arn=f"arn:aws:iam::{HUB}:role/vpce-guard/vpce-guard-RollbackFunctionRole-XYZ"),
    Trigger(actor_arn="arn:aws-us-gov:sts::444455556666:assumed-role/vpce-guard-remediation/vpce-guard",
            issuer_arn="arn:aws-us-gov:iam::444455556666:role/vpce-guard-remediation"),
])
def test_own_roles_are_recognised(trigger: Trigger) -> None:
    assert own_change(trigger, OWN)
    assert lookalike(trigger, OWN) is None


@pytest.mark.parametrize("trigger", [
    # The spoke role's name at another path: any account can create it there.
    Trigger(actor_arn="arn:aws:sts::999999999999:assumed-role/vpce-guard-remediation/vpce-guard",
            issuer_arn="arn:aws:iam::999999999999:role/ops/vpce-guard-remediation"),
    # The right role in a session vpce-guard did not open.
    Trigger(actor_arn="arn:aws:sts::999999999999:assumed-role/vpce-guard-remediation/x",
            issuer_arn="arn:aws:iam::999999999999:role/vpce-guard-remediation"),
    # The name alone, without the session issuer that would carry the path.
    Trigger(actor_arn="arn:aws:sts::999999999999:assumed-role/vpce-guard-remediation/vpce-guard"),
    # Our hub path in another account.
    Trigger(issuer_arn="arn:aws:iam::444455556666:role/vpce-guard/vpce-guard-OnChangeFunctionRole-ABC"),
])
def test_look_alikes_of_our_roles_are_acted_on_and_flagged(trigger: Trigger) -> None:
    assert own_change(trigger, OWN) is None
    assert lookalike(trigger, OWN)


@pytest.mark.parametrize("trigger", [
    Trigger(actor_arn="arn:aws:sts::444455556666:assumed-role/NetworkAdmin/alice",
            issuer_arn="arn:aws:iam::444455556666:role/NetworkAdmin"),
    Trigger(actor_arn="arn:aws:iam::444455556666:user/bob"),
    Trigger(actor_arn="arn:aws:iam::444455556666:root"),
    Trigger(actor_arn=None, issuer_arn=None),
    Trigger(actor_arn="ec2.amazonaws.com"),
    # Same role name as the function, other account: not ours.
    Trigger(actor_arn="arn:aws:sts::444455556666:assumed-role/vpce-guard-OnChangeFunctionRole-ABC/x"),
    # A role whose name merely starts like ours.
    Trigger(actor_arn="arn:aws:sts::444455556666:assumed-role/vpce-guard-remediation-copy/x"),
])
def test_everyone_else_is_acted_on(trigger: Trigger) -> None:
    assert own_change(trigger, OWN) is None


def test_role_arns_keep_their_path_and_session_arns_do_not() -> None:
    role = parse_role("arn:aws:iam::123456789012:role/a/b/name")
    assert role is not None and (role.name, role.path) == ("name", "/a/b/")
    session = parse_role("arn:aws:sts::123456789012:assumed-role/name/session")
    assert session is not None and (session.name, session.path, session.session) == ("name", None, "session")
