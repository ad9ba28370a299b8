"""Per-rule modes: overrides are read as data; anything unreadable only ever lowers a mode (pure parts)."""

from __future__ import annotations

import pytest

from vpce_guard.config import Mode
from vpce_guard.modes import Unreadable, parse_overrides, resolve


def test_named_rule_overrides_the_default_and_star_covers_the_rest() -> None:
    ov = parse_overrides('{"rule-a": "dry_run", "*": "off"}')
    assert resolve("rule-a", Mode.ENFORCE, ov) is Mode.DRY_RUN
    assert resolve("rule-b", Mode.ENFORCE, ov) is Mode.OFF


def test_no_overrides_keep_the_default() -> None:
    assert resolve("rule-a", Mode.ENFORCE, {}) is Mode.ENFORCE
    assert resolve("rule-a", Mode.DRY_RUN, parse_overrides("{}")) is Mode.DRY_RUN


def test_an_override_may_also_raise_a_rule_to_enforce() -> None:
    assert resolve("rule-a", Mode.DRY_RUN, parse_overrides('{"rule-a": "enforce"}')) is Mode.ENFORCE


@pytest.mark.parametrize("raw", ['{"rule-a": "dryrun"}', "not json", '["rule-a"]', '{"rule-a": 1}'])
def test_unreadable_overrides_turn_enforce_into_dry_run_and_never_raise_a_mode(raw: str) -> None:
    ov = parse_overrides(raw)
    assert isinstance(ov, Unreadable)
    assert resolve("rule-a", Mode.ENFORCE, ov) is Mode.DRY_RUN
    assert resolve("rule-a", Mode.DRY_RUN, ov) is Mode.DRY_RUN
    assert resolve("rule-a", Mode.OFF, ov) is Mode.OFF
