"""A sweep's read of the current state items when DynamoDB leaves keys unprocessed (throttled capacity).

moto never leaves keys unprocessed, so botocore's Stubber plays DynamoDB here: it checks each request
against the expected one, in order.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from vpce_guard import ledger
from vpce_guard.ledger import Ledger, LedgerUnavailable

KEYS = [("RES#1#r#vpce-1", "STATE#rule"), ("RES#1#r#vpce-2", "STATE#rule")]
PROJECTION = {"ConsistentRead": True, "ProjectionExpression": "pk, sk, #s, reason, observed_at",
              "ExpressionAttributeNames": {"#s": "status"}}


def _request(keys: list[tuple[str, str]]) -> dict[str, Any]:
    return {"RequestItems": {"t": {"Keys": [{"pk": pk, "sk": sk} for pk, sk in keys], **PROJECTION}}}


def _item(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "status": {"S": "compliant"}, "reason": {"S": "ok"}}


def _unprocessed(keys: list[tuple[str, str]]) -> dict[str, Any]:
    return {"t": {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys], **PROJECTION}}


@pytest.fixture
def table() -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x").Table("t")


def test_keys_left_unprocessed_are_asked_for_again_until_every_state_is_read(
        table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(ledger.time, "sleep", pauses.append)
    with Stubber(table.meta.client) as stub:
        stub.add_response("batch_get_item", {"Responses": {"t": [_item(*KEYS[0])]},
                                             "UnprocessedKeys": _unprocessed(KEYS[1:])}, _request(KEYS))
        # What DynamoDB left is sent again as it came back (the Table's client turns typed values into plain ones).
        stub.add_response("batch_get_item", {"Responses": {"t": [_item(*KEYS[1])]}, "UnprocessedKeys": {}},
                          _request(KEYS[1:]))
        states = Ledger(table).states(set(KEYS))
        stub.assert_no_pending_responses()
    assert {k: v["status"] for k, v in states.items()} == {KEYS[0]: "compliant", KEYS[1]: "compliant"}
    assert len(pauses) == 1 and pauses[0] > 0, "a pause before asking again"


def test_a_ledger_that_keeps_refusing_fails_the_run_so_it_is_retried(
        table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger.time, "sleep", lambda _: None)
    with Stubber(table.meta.client) as stub:
        stub.add_response("batch_get_item", {"Responses": {"t": []}, "UnprocessedKeys": _unprocessed(KEYS)},
                          _request(KEYS))
        for _ in range(ledger.UNPROCESSED_ROUNDS - 1):
            stub.add_response("batch_get_item", {"Responses": {"t": []}, "UnprocessedKeys": _unprocessed(KEYS)},
                              _request(KEYS))
        with pytest.raises(LedgerUnavailable, match="2 state reads unprocessed"):
            Ledger(table).states(set(KEYS))
