"""The ledger: one DynamoDB record per evaluation of a rule on a resource, plus its current state.

Key design (single table, see README "Reading the ledger"):
- history item  pk = RES#<account>#<region>#<resource>   sk = EVAL#<time>#<rule>#<id>   (TTL `expires_at`)
  → a resource's history is one Query on pk.
- state item    pk = RES#<account>#<region>#<resource>   sk = STATE#<rule>
  with gsi1pk = STATUS#<status>, gsi1sk = <account>#<region>#<rule>#<resource>
  → "everything currently non-compliant" is one Query on index `by-status`, no scan.
- intake item   pk = EVENT#<account>#<region>            sk = EVAL#<time>#<event id>
  for events that were skipped or rejected before any rule ran.
- activity      history and intake items whose status is remediated, dry_run or failed also carry
  gsi1pk = ACTIVITY#<status>#<day>, gsi1sk = <time>#<account>#<region>#<rule>#<resource>
  → "what was fixed (or would have been, or failed) between two times" is one Query per day on `by-status`,
  no scan. The state items' STATUS# partitions of the same index are unaffected.
Records of one run are independent, so they are written with BatchWriteItem (25 per call).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .models import Outcome, Status, Trigger

STATUS_INDEX = "by-status"
#: Items per BatchWriteItem (DynamoDB's limit).
BATCH_SIZE = 25
#: BatchWriteItem calls in flight at once when a run writes several batches (a sweep).
WRITE_CONCURRENCY = 8
#: History statuses indexed by day for time-window queries (what changed, what would have, what failed).
ACTIVITY_STATUSES = frozenset({Status.REMEDIATED, Status.DRY_RUN, Status.FAILED})


class LedgerRecord(BaseModel):
    """One evaluation, as stored (history item)."""

    model_config = ConfigDict(extra="forbid")

    pk: str
    sk: str
    record_type: str = "evaluation"  # evaluation | intake | summary | rollback | flap_reset
    account: str
    region: str
    resource_id: str
    resource_type: str
    vpc_id: str | None = None
    rule_id: str
    status: Status
    reason: str
    trigger: Trigger
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    time: str
    expires_at: int

    def to_item(self) -> dict[str, Any]:
        item = self.model_dump(mode="json", exclude_none=True)
        if self.status in ACTIVITY_STATUSES:
            item["gsi1pk"] = activity_pk(self.status, self.time[:10])
            item["gsi1sk"] = f"{self.time}#{self.account}#{self.region}#{self.rule_id}#{self.resource_id}"
        return _dynamo_safe(item)

    def state_item(self) -> dict[str, Any]:
        """The 'current state' item this record implies for (resource, rule)."""
        return _dynamo_safe({
            "pk": self.pk,
            "sk": f"STATE#{self.rule_id}",
            "record_type": "state",
            "account": self.account,
            "region": self.region,
            "resource_id": self.resource_id,
            "resource_type": self.resource_type,
            "vpc_id": self.vpc_id,
            "rule_id": self.rule_id,
            "status": self.status.value,
            "reason": self.reason,
            "last_evaluation": self.sk,
            "time": self.time,
            "gsi1pk": f"STATUS#{self.status.value}",
            "gsi1sk": f"{self.account}#{self.region}#{self.rule_id}#{self.resource_id}",
        })


def _now() -> datetime:
    return datetime.now(UTC)


def _dynamo_safe(value: Any) -> Any:
    """DynamoDB wants Decimals, not floats, and no None values in maps."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal,
                      object_hook=lambda d: {k: v for k, v in d.items() if v is not None})


def stamp(moment: datetime) -> str:
    """The ledger's time format (`time` and the time part of `sk`): UTC, milliseconds, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def resource_pk(account: str, region: str, resource_id: str) -> str:
    return f"RES#{account}#{region}#{resource_id}"


def activity_pk(status: Status | str, day: str) -> str:
    """Partition of the by-status index holding one day's (YYYY-MM-DD, UTC) history items of a status."""
    return f"ACTIVITY#{status.value if isinstance(status, Status) else status}#{day}"


def time_key(moment: datetime) -> str:
    """A moment in the ledger's time format (`time`, and the time part of `sk`/`gsi1sk`): sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def records_for(outcomes: Iterable[Outcome], trigger: Trigger, *, account: str, region: str,
                ttl_days: int, now: datetime | None = None) -> list[LedgerRecord]:
    now = now or _now()
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    expires = int(now.timestamp()) + ttl_days * 86400
    out: list[LedgerRecord] = []
    for o in outcomes:
        f = o.finding
        resource_id = o.resource_id or f.resource_id  # a multi-step fix records each step on what it changed
        out.append(LedgerRecord(
            pk=resource_pk(account, region, resource_id),
            sk=f"EVAL#{stamp}#{f.rule_id}#{uuid.uuid4().hex[:12]}",
            account=account, region=region, resource_id=resource_id,
            resource_type=o.resource_type or f.resource_type,
            vpc_id=f.vpc_id, rule_id=f.rule_id, status=o.status, reason=o.reason, trigger=trigger,
            before=o.before, after=o.after, actions=[a.model_dump(mode="json") for a in o.actions],
            error=o.error, details={**f.details, **o.details}, time=stamp, expires_at=expires,
        ))
    return out


def intake_record(trigger: Trigger, *, account: str | None, region: str | None, status: Status, reason: str,
                  ttl_days: int, now: datetime | None = None) -> LedgerRecord:
    """A record for an event that never reached the rules (skipped or rejected)."""
    now = now or _now()
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    account = account or "unknown"
    region = region or "unknown"
    return LedgerRecord(
        pk=f"EVENT#{account}#{region}", sk=f"EVAL#{stamp}#{trigger.event_id or uuid.uuid4().hex}",
        record_type="intake", account=account, region=region,
        resource_id=f"event/{trigger.event_id or 'unknown'}", resource_type="event", rule_id="event-intake",
        status=status, reason=reason[:2000], trigger=trigger, time=stamp,
        expires_at=int(now.timestamp()) + ttl_days * 86400,
    )


class Ledger:
    """Writes and reads the ledger table (a boto3 DynamoDB Table resource)."""

    def __init__(self, table: Any, *, page_size: int | None = None) -> None:
        self.table = table
        #: Items per Query page (DynamoDB's Limit); None lets DynamoDB fill 1 MB pages.
        self.page_size = page_size

    def write(self, records: Iterable[LedgerRecord]) -> int:
        """Write history items and, for evaluations, the state items; returns items written."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for r in records:
            items[(r.pk, r.sk)] = r.to_item()
            if r.record_type == "evaluation":
                # A later record of the same (resource, rule) in this batch supersedes an earlier one.
                state = r.state_item()
                items[(state["pk"], state["sk"])] = state
        if not items:
            return 0
        values = list(items.values())
        batches = [values[i:i + BATCH_SIZE] for i in range(0, len(values), BATCH_SIZE)]
        if len(batches) == 1:
            self._write_batch(batches[0])
        else:
            # The items are independent, so a sweep's batches go out side by side: the same calls, a fraction
            # of the time. The client is thread-safe; `list` re-raises the first failure, as the loop did.
            with ThreadPoolExecutor(max_workers=min(WRITE_CONCURRENCY, len(batches))) as pool:
                list(pool.map(self._write_batch, batches))
        return len(items)

    def _write_batch(self, items: list[dict[str, Any]]) -> None:
        """One BatchWriteItem (boto3's batch writer re-sends what DynamoDB leaves unprocessed)."""
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for item in items:
                batch.put_item(Item=item)

    def history(self, account: str, region: str, resource_id: str, *, newest_first: bool = True,
                limit: int | None = None) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(resource_pk(account, region, resource_id))
            & Key("sk").begins_with("EVAL#"),
            "ScanIndexForward": not newest_first,
        }
        return list(self._query(kwargs, limit))

    def history_since(self, account: str, region: str, resource_id: str, since: datetime) -> list[dict[str, Any]]:
        """History items of a resource recorded at or after `since`, oldest first: one Query on its pk
        (the sort key starts with the time), never a scan. Used to count recent fixes (flap protection)."""
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(resource_pk(account, region, resource_id))
            & Key("sk").between(f"EVAL#{stamp(since)}", "EVAL#~"),
            "ProjectionExpression": "sk, rule_id, record_type, #s, #t",
            "ExpressionAttributeNames": {"#s": "status", "#t": "time"},
        }
        return list(self._query(kwargs, None))

    def get(self, account: str, region: str, resource_id: str, sk: str) -> dict[str, Any] | None:
        """One history item by its key (what a rollback request names)."""
        resp = self.table.get_item(Key={"pk": resource_pk(account, region, resource_id), "sk": sk},
                                   ConsistentRead=True)
        return resp.get("Item")

    def current(self, status: Status | str, *, prefix: str | None = None,
                on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """Current state items with this status (one Query on the by-status index, paginated).

        `prefix` narrows on the index's sort key, `<account>#<region>#<rule>#<resource>`, server-side;
        `on_page` is called with the running item count after each page (progress of long reads)."""
        from boto3.dynamodb.conditions import Key

        value = status.value if isinstance(status, Status) else status
        cond = Key("gsi1pk").eq(f"STATUS#{value}")
        if prefix:
            cond = cond & Key("gsi1sk").begins_with(prefix)
        yield from self._query({"IndexName": STATUS_INDEX, "KeyConditionExpression": cond}, None, on_page)

    def activity(self, status: Status | str, since: datetime, until: datetime, *,
                 on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """History items of a status (remediated, dry_run, failed) recorded in [since, until], oldest first:
        one Query per UTC day on the by-status index, never a scan."""
        from boto3.dynamodb.conditions import Key

        value = status.value if isinstance(status, Status) else status
        if Status(value) not in ACTIVITY_STATUSES:
            raise ValueError(f"only {sorted(s.value for s in ACTIVITY_STATUSES)} are indexed by time, not {value}")
        lo, hi = time_key(since), time_key(until)
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            cond = Key("gsi1pk").eq(activity_pk(value, day.isoformat())) & Key("gsi1sk").between(lo, f"{hi}~")
            yield from self._query({"IndexName": STATUS_INDEX, "KeyConditionExpression": cond}, None, on_page)
            day += timedelta(days=1)

    def intake(self, account: str, region: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        return list(self._query({"KeyConditionExpression": Key("pk").eq(f"EVENT#{account}#{region}")}, None))

    def _query(self, kwargs: dict[str, Any], limit: int | None,
               on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        n = 0
        if self.page_size:
            kwargs["Limit"] = self.page_size
        while True:
            resp = self.table.query(**kwargs)
            for item in resp.get("Items", []):
                yield item
                n += 1
                if limit is not None and n >= limit:
                    return
            if on_page is not None:
                on_page(n)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

