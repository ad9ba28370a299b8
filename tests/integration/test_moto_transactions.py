"""devkit/moto_transactions.py: moto's TransactWriteItems backs each table up once per call and still rolls a
cancelled transaction back completely, on every table it touched."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from .conftest import REGION


def _table(client: Any, name: str) -> None:
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def _put(table: str, pk: str, condition: str | None = None) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": {"pk": {"S": pk}, "v": {"S": "new"}}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _pks(client: Any, table: str) -> set[str]:
    return {i["pk"]["S"] for i in client.scan(TableName=table)["Items"]}


@pytest.fixture
def dynamodb(aws_env: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    for name in ("a", "b"):
        _table(client, name)
        for n in range(20):
            client.put_item(TableName=name, Item={"pk": {"S": f"old-{n}"}, "v": {"S": "old"}})
    return client


def test_a_cancelled_transaction_leaves_every_table_it_touched_as_it_was(dynamodb: Any) -> None:
    before = {name: dynamodb.scan(TableName=name)["Items"] for name in ("a", "b")}
    items = [_put("a", f"new-{n}") for n in range(40)] + [_put("b", f"new-{n}") for n in range(40)]
    items.append(_put("b", "old-3", "attribute_not_exists(pk)"))  # fails: the whole transaction is cancelled
    with pytest.raises(ClientError) as err:
        dynamodb.transact_write_items(TransactItems=items)
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons[-1] == "ConditionalCheckFailed" and set(reasons[:-1]) == {"None"}
    assert {name: dynamodb.scan(TableName=name)["Items"] for name in ("a", "b")} == before


def test_a_transaction_that_succeeds_writes_every_item(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put("a", f"new-{n}") for n in range(50)]
                                  + [_put("b", "old-1", "attribute_exists(pk)")])
    assert _pks(dynamodb, "a") == {f"old-{n}" for n in range(20)} | {f"new-{n}" for n in range(50)}
    assert dynamodb.get_item(TableName="b", Key={"pk": {"S": "old-1"}})["Item"]["v"]["S"] == "new"


def test_each_table_is_backed_up_once_per_transaction(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real = copy.deepcopy

    def counting(obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, Table):
            copied.append(obj.name)
        return real(obj, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    dynamodb.transact_write_items(TransactItems=[_put("a", f"new-{n}") for n in range(60)]
                                  + [_put("b", f"new-{n}") for n in range(40)])
    assert sorted(copied) == ["a", "b"]
