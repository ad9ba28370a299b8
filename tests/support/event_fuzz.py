"""Hypothesis strategies for untrusted events: mutated CloudTrail/EventBridge events and JSON garbage.

Shared by the parser's property tests (tests/unit/test_events_fuzz.py) and the handler fuzz suite
(tests/integration/test_handler_fuzz.py), which feeds the same mutations through every function.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from vpce_guard import events

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
lookalike_ids = st.sampled_from(
    [
        "vpce-0a1b2c3d4e5f60001",
        "vpc-0a1b2c3d4e5f60001",
        "rtb-0a1b2c3d4e5f60001",
        "sg-0a1b2c3d4e5f60001",
        "subnet-0a1b2c3d4e5f60001",
        "rtbassoc-0a1b2c3d4e5f60001",
        "vpce-0a1b2c3d4e5f60001 ",
        "vpce-0A1B2C3D4E5F60001",
        "vpce-0a1b2c3d4e5f60001\n",
        "vpce-0a1b2c3d4e5f6000\u0661",  # an Arabic-Indic digit: \d would accept it, our regex must not
        "rtb-*",
        "sg-0a1b2c3d4e5f60001;sg-0a1b2c3d4e5f60002",
        "vpc-${jndi:ldap://x}",
        "arn:aws:ec2:us-east-1:123456789012:vpc-endpoint/vpce-0a1b2c3d4e5f60001",
    ]
)
unicode_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)
wrong_types = st.sampled_from([0, -1, 1.5, True, False, "", "x", [], {}, [None], {"items": None}, {"tag": 1}])


def huge_list(size: int) -> list[Any]:
    return [{"tag": n, "content": f"vpce-{n:017x}"} for n in range(size)]


def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON document (dict keys and list indices), root first."""
    paths = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            paths.extend(all_paths(child, (*prefix, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node[:20]):  # huge lists from earlier mutations: sample the head
            paths.extend(all_paths(child, (*prefix, index)))
    return paths


def set_at(document: Any, path: tuple[Any, ...], value: Any, drop: bool = False) -> Any:
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """One to four mutations of an event drawn from `base`: fields dropped, nulled, replaced by JSON of any
    shape or by a wrong type, huge lists, unicode, look-alike ids, other event names, an errorCode."""
    event: Any = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(
            st.sampled_from(
                [
                    "drop",
                    "null",
                    "json",
                    "wrong_type",
                    "huge",
                    "unicode",
                    "lookalike",
                    "event_name",
                    "error_code",
                ]
            )
        )
        if kind in {"event_name", "error_code"}:
            if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
                continue
            if kind == "event_name":
                event["detail"]["eventName"] = draw(
                    st.sampled_from(sorted(events.SUPPORTED_EVENTS)) | unicode_text
                )
            else:
                event["detail"]["errorCode"] = draw(
                    st.sampled_from(["Client.UnauthorizedOperation"]) | unicode_text
                )
            continue
        path = draw(st.sampled_from(all_paths(event)))
        if kind == "drop":
            event = set_at(event, path, None, drop=True) if path else draw(json_values)
        elif kind == "null":
            event = set_at(event, path, None)
        elif kind == "json":
            event = set_at(event, path, draw(json_values))
        elif kind == "wrong_type":
            event = set_at(event, path, draw(wrong_types))
        elif kind == "huge":
            event = set_at(event, path, huge_list(draw(st.sampled_from([999, 1000, 1001, 3000]))))
        elif kind == "unicode":
            event = set_at(event, path, draw(unicode_text))
        else:
            event = set_at(event, path, draw(lookalike_ids))
    return event
