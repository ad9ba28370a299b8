"""Property tests: parse_event never raises, and never lets a malformed id through to "act"."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.event_fuzz import json_values, mutated, unicode_text
from tests.unit.test_events import EXPECTED
from vpce_guard import events
from vpce_guard.models import Targets, Trigger

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
FIXTURE_PATHS = sorted(EVENTS_DIR.glob("*.json")) + sorted((EVENTS_DIR / "invalid").glob("*.json"))
FIXTURES = {path.relative_to(EVENTS_DIR).as_posix(): json.loads(path.read_text()) for path in FIXTURE_PATHS}
VALID = sorted(name for name in FIXTURES if "/" not in name)


def mutated_events() -> st.SearchStrategy[Any]:
    return mutated(st.sampled_from([FIXTURES[name] for name in sorted(FIXTURES)]))


SETTINGS = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ID_FIELDS = tuple(events.ID_PATTERNS)
#: The fixed ids of the fixtures, by kind (the integration tests rewrite exactly these).
FIXED_ID = re.compile(r"\b(vpce-svc|vpce|vpc|rtbassoc|rtb|subnet|sg)-0a1b2c3d4e5f6000[0-9]\b")


def check_invariants(result: Any) -> None:
    assert isinstance(result, events.ParsedEvent)
    assert isinstance(result.trigger, Trigger)
    assert result.disposition in {"act", "skipped", "rejected"}
    assert isinstance(result.reason, str)
    assert len(result.reason) <= events.MAX_REASON
    assert "\n" not in result.reason
    for value, pattern in (
        (result.raw_account, events.ACCOUNT_PATTERN),
        (result.raw_region, events.REGION_PATTERN),
    ):
        assert value is None or pattern.fullmatch(value)
    if result.disposition != "act":
        assert result.targets is None
        assert result.reason
        return
    targets = result.targets
    assert isinstance(targets, Targets)
    assert result.reason == ""
    assert not targets.is_empty()
    assert not targets.everything
    assert events.ACCOUNT_PATTERN.fullmatch(targets.account)
    assert events.REGION_PATTERN.fullmatch(targets.region)
    for field in ID_FIELDS:
        ids = getattr(targets, field)
        assert len(ids) <= events.MAX_IDS
        assert len(set(ids)) == len(ids)
        for value in ids:
            assert isinstance(value, str)
            assert events.ID_PATTERNS[field].fullmatch(value), (field, value)


@SETTINGS
@given(mutated_events())
def test_mutated_fixtures_never_raise_and_only_act_on_well_formed_ids(event: Any) -> None:
    check_invariants(events.parse_event(event))


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    check_invariants(events.parse_event(value))


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(
            ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
        ),
        json_values,
    )
)
def test_envelope_shaped_garbage_never_raises(value: dict[str, Any]) -> None:
    check_invariants(events.parse_event(value))


@SETTINGS
@given(st.sampled_from(VALID), unicode_text, st.none() | unicode_text)
def test_failed_calls_are_always_skipped(name: str, error_code: str, error_message: str | None) -> None:
    event = copy.deepcopy(FIXTURES[name])
    event["detail"]["errorCode"] = error_code
    event["detail"]["errorMessage"] = error_message
    result = events.parse_event(event)
    check_invariants(result)
    assert result.disposition == "skipped"
    assert result.reason.startswith("call failed: ")


@SETTINGS
@given(st.sampled_from(VALID), unicode_text)
def test_unknown_event_names_are_skipped(name: str, event_name: str) -> None:
    event = copy.deepcopy(FIXTURES[name])
    event["detail"]["eventName"] = event_name
    result = events.parse_event(event)
    check_invariants(result)
    if event_name not in events.SUPPORTED_EVENTS:
        assert result.disposition == "skipped"


hex17 = st.text(alphabet="0123456789abcdef", min_size=17, max_size=17)


@SETTINGS
@given(st.sampled_from(VALID), st.data())
def test_fixtures_with_other_well_formed_ids_still_act(name: str, data: st.DataObject) -> None:
    """What the integration tests do: rewrite the placeholder ids to the ids moto gave the resources."""
    text = json.dumps(FIXTURES[name])
    placeholders = sorted({match.group(0) for match in FIXED_ID.finditer(text)})
    digits = data.draw(st.lists(hex17, min_size=len(placeholders), max_size=len(placeholders), unique=True))
    mapping = {old: f"{old.rsplit('-', 1)[0]}-{new}" for old, new in zip(placeholders, digits, strict=True)}
    rewritten = FIXED_ID.sub(lambda m: mapping[m.group(0)], text)
    result = events.parse_event(json.loads(rewritten))
    check_invariants(result)
    assert result.targets is not None, result.reason
    expected = {field: tuple(mapping[i] for i in ids) for field, ids in EXPECTED[name].items()}
    assert result.targets == Targets(account="123456789012", region="us-east-1", **expected)
