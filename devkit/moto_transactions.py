"""moto's TransactWriteItems, with its table backup taken once per table instead of once per item.

moto 5.2.5 keeps a copy of a table to roll a cancelled transaction back, but takes it in a loop over the
transaction's items: a transaction of 100 puts deep-copies the whole table 100 times. On a ledger of a few
thousand items that is about 7 s per transaction in-process, and a moto server that holds the copies until its
garbage collector runs grew past 17 GB during a 1,000-endpoint first sweep (3,400 state items in transactions
of 100). The copies are all taken before any item is applied, so they are identical: taking one per table and
handing it out again for the same table changes nothing a caller can see (a cancelled transaction still leaves
every table as it was; tests/integration/test_moto_transactions.py). In-process, 5 transactions of 100 puts
into a 3,000-item table took 34 s and 1.9 GB stock, 0.5 s and 0.1 GB with this.

Only tables are shared, and only within one TransactWriteItems call of one thread (moto's server is threaded);
every other deep copy moto makes is its own.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_LOCK = threading.Lock()
_INSTALLED = False
_in_transaction = threading.local()


class _CopyOncePerTable:
    """Stands in for the `copy` module inside moto.dynamodb.models: a Table deep-copied during a transaction is
    copied once per call (the backup), anything else as usual."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        backups: dict[int, Any] | None = getattr(_in_transaction, "backups", None)
        if backups is None or not isinstance(obj, self._table_type):
            return copy.deepcopy(obj, memo)
        if id(obj) not in backups:  # the table object lives as long as the call: its id is not reused
            backups[id(obj)] = copy.deepcopy(obj, memo)
        return backups[id(obj)]

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent; every in-process mock and server of this process)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.dynamodb import models
        from moto.dynamodb.models.table import Table

        transact = models.DynamoDBBackend.transact_write_items

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            _in_transaction.backups = {}
            try:
                return transact(self, transact_items)
            finally:
                _in_transaction.backups = None

        models.copy = _CopyOncePerTable(Table)  # type: ignore[assignment]
        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _INSTALLED = True
