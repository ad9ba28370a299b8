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
- checks        pk = CHECKS#<account>#<region>                  sk = EVAL#<time>#<part>   (TTL `expires_at`)
  what a sweep re-checked and found as it was (see `Ledger.write_sweep`).
Records of one run are independent, so they are written with BatchWriteItem (25 per call).

Events write a history item for every evaluation: an event is a change, and who made it matters. A sweep
re-checks everything, mostly unchanged; it writes history and state only for what changed (status or reason
differ from the state item), was done or attempted, and lists the rest, by rule and status, in its checks
items: every check is recorded, a resource's history stays a timeline of changes (as AWS Config keeps a
compliance timeline), and a sweep costs writes in proportion to drift, not to the size of the estate.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError
from pydantic import BaseModel, ConfigDict, Field

from .aws import side_by_side
from .models import OPEN_STATUSES, Finding, Outcome, Status, Trigger

STATUS_INDEX = "by-status"
#: Items per BatchWriteItem (DynamoDB's limit).
BATCH_SIZE = 25
#: History statuses indexed by day for time-window queries (what changed, what would have, what failed).
ACTIVITY_STATUSES = frozenset({Status.REMEDIATED, Status.DRY_RUN, Status.FAILED})
#: Keys per BatchGetItem (DynamoDB's limit).
GET_BATCH_SIZE = 100
#: BatchGetItem rounds for keys DynamoDB leaves unprocessed before the sweep gives up (and is retried).
UNPROCESSED_ROUNDS = 8
#: Statuses a sweep always writes as history, changed or not: something was done, attempted, would have been
#: (dry_run: the by-day activity index is built from them), or was held back (flapping).
ALWAYS_RECORDED = ACTIVITY_STATUSES | {Status.PENDING, Status.FLAPPING}
#: Unchanged evaluations listed per checks item: resource ids of about 25 bytes keep it far below DynamoDB's
#: 400 KB item limit.
CHECKS_PER_ITEM = 2000


class LedgerUnavailable(BotoCoreError):
    """The ledger kept refusing work (throttled): the run fails and is retried, like any other AWS error."""

    fmt = "{message}"

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


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


@dataclass(frozen=True)
class StatusChange:
    """A (resource, rule) whose state item a write changed to another status: what the world outside the ledger
    hears of (Security Hub, finding events, notifications). `previous` is None when there was no state item."""

    account: str
    region: str
    resource_id: str
    resource_type: str
    rule_id: str
    previous: str | None
    current: Status
    record: LedgerRecord


def status_changes(written: Iterable[LedgerRecord], previous: dict[tuple[str, str], str | None]) -> list[StatusChange]:
    """The changes among evaluations whose state was written: the last record of each (resource, rule), against
    its previous status by state key (pk, STATE#<rule>); unchanged statuses are no change."""
    last: dict[tuple[str, str], LedgerRecord] = {}
    for r in written:
        if r.record_type == "evaluation":
            last[(r.pk, f"STATE#{r.rule_id}")] = r
    return [StatusChange(r.account, r.region, r.resource_id, r.resource_type, r.rule_id, previous.get(key), r.status,
                         r) for key, r in last.items() if previous.get(key) != r.status.value]


def merge_changes(changes: Iterable[StatusChange]) -> list[StatusChange]:
    """Several writes of one run (a fix's pending intent, then its outcome) as one change per (resource, rule):
    from the status before the first to the status after the last; none if it ended where it began."""
    merged: dict[tuple[str, str, str, str], StatusChange] = {}
    for c in changes:
        key = (c.account, c.region, c.resource_id, c.rule_id)
        first = merged.get(key)
        merged[key] = c if first is None else StatusChange(c.account, c.region, c.resource_id, c.resource_type,
                                                           c.rule_id, first.previous, c.current, c.record)
    return [c for c in merged.values() if c.previous != c.current.value]


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


def expires_at(now: datetime, ttl_days: int) -> int:
    """The TTL attribute (`expires_at`) of an item written at `now`."""
    return int(now.timestamp()) + ttl_days * 86400


def records_for(outcomes: Iterable[Outcome], trigger: Trigger, *, account: str, region: str,
                ttl_days: int, now: datetime | None = None) -> list[LedgerRecord]:
    now = now or _now()
    when, expires = stamp(now), expires_at(now, ttl_days)
    out: list[LedgerRecord] = []
    for o in outcomes:
        f = o.finding
        resource_id = o.resource_id or f.resource_id  # a multi-step fix records each step on what it changed
        out.append(LedgerRecord(
            pk=resource_pk(account, region, resource_id),
            sk=f"EVAL#{when}#{f.rule_id}#{uuid.uuid4().hex[:12]}",
            account=account, region=region, resource_id=resource_id,
            resource_type=o.resource_type or f.resource_type,
            vpc_id=f.vpc_id, rule_id=f.rule_id, status=o.status, reason=o.reason, trigger=trigger,
            before=o.before, after=o.after, actions=[a.model_dump(mode="json") for a in o.actions],
            error=o.error, details={**f.details, **o.details}, time=when, expires_at=expires,
        ))
    return out


def intake_record(trigger: Trigger, *, account: str | None, region: str | None, status: Status, reason: str,
                  ttl_days: int, now: datetime | None = None) -> LedgerRecord:
    """A record for an event that never reached the rules (skipped or rejected)."""
    now = now or _now()
    when = stamp(now)
    account = account or "unknown"
    region = region or "unknown"
    return LedgerRecord(
        pk=f"EVENT#{account}#{region}", sk=f"EVAL#{when}#{trigger.event_id or uuid.uuid4().hex}",
        record_type="intake", account=account, region=region,
        resource_id=f"event/{trigger.event_id or 'unknown'}", resource_type="event", rule_id="event-intake",
        status=status, reason=reason[:2000], trigger=trigger, time=when, expires_at=expires_at(now, ttl_days),
    )


def checks_items(unchanged: list[LedgerRecord], *, account: str, region: str, trigger: Trigger, ttl_days: int,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """The checks items of a sweep: its unchanged evaluations as `checked` (status → rule → resource ids),
    CHECKS_PER_ITEM to an item; `count` says how many each holds."""
    if not unchanged:
        return []
    now = now or _now()
    moment = stamp(now)
    out: list[dict[str, Any]] = []
    for part, start in enumerate(range(0, len(unchanged), CHECKS_PER_ITEM)):
        checked: dict[str, dict[str, list[str]]] = {}
        chunk = unchanged[start:start + CHECKS_PER_ITEM]
        for r in chunk:
            checked.setdefault(r.status.value, {}).setdefault(r.rule_id, []).append(r.resource_id)
        out.append(_dynamo_safe({
            "pk": checks_pk(account, region), "sk": f"EVAL#{moment}#{part:04d}", "record_type": "checks",
            "account": account, "region": region, "count": len(chunk), "checked": checked,
            "trigger": trigger.model_dump(mode="json", exclude_none=True), "time": moment,
            "expires_at": expires_at(now, ttl_days),
        }))
    return out


def checks_pk(account: str, region: str) -> str:
    return f"CHECKS#{account}#{region}"


class Ledger:
    """Writes and reads the ledger table (a boto3 DynamoDB Table resource)."""

    def __init__(self, table: Any, *, page_size: int | None = None) -> None:
        self.table = table
        #: Items per Query page (DynamoDB's Limit); None lets DynamoDB fill 1 MB pages.
        self.page_size = page_size

    def write(self, records: Iterable[LedgerRecord], extra_items: Iterable[dict[str, Any]] = (),
              with_state: Callable[[LedgerRecord], bool] | None = None, *,
              changes: list[StatusChange] | None = None,
              previous: dict[tuple[str, str], str | None] | None = None) -> int:
        """Write history items and, for evaluations, the state items (those `with_state` picks; default all),
        and `extra_items` as they are; returns items written.

        With `changes`, the (resource, rule) pairs whose status this write changes are appended to it, judged
        against `previous` (state key → status; a key it lacks had no state item) or, when that is not given,
        the state items read first (`statuses`)."""
        items: dict[tuple[str, str], dict[str, Any]] = {(i["pk"], i["sk"]): i for i in extra_items}
        stated: list[LedgerRecord] = []
        for r in records:
            items[(r.pk, r.sk)] = r.to_item()
            if r.record_type == "evaluation" and (with_state is None or with_state(r)):
                # A later record of the same (resource, rule) in this batch supersedes an earlier one.
                state = r.state_item()
                items[(state["pk"], state["sk"])] = state
                stated.append(r)
        if changes is not None and stated:
            if previous is None:
                previous = self.statuses({(r.pk, f"STATE#{r.rule_id}") for r in stated})
            changes += status_changes(stated, previous)
        if not items:
            return 0
        values = list(items.values())
        # The items are independent, so a sweep's batches go out side by side: the same calls, a fraction of
        # the time.
        side_by_side(self._write_batch, [values[i:i + BATCH_SIZE] for i in range(0, len(values), BATCH_SIZE)])
        return len(items)

    def write_sweep(self, records: list[LedgerRecord], *, account: str, region: str, trigger: Trigger,
                    ttl_days: int, now: datetime | None = None, changes: list[StatusChange] | None = None) -> int:
        """A sweep's records: history and state for what changed, checks items for the rest (module doc).

        Changed means: no state item yet, or a different status or reason; an evaluation whose status is in
        ALWAYS_RECORDED gets a history item even when unchanged (its state item stays). The state items are read
        first (BatchGetItem, 100 keys per call, consistent reads); a state written by an
        event meanwhile is at worst compared with an older one, which writes a record more, never one less.
        Returns the items written; with `changes`, appends the status changes (from the states it read)."""
        evaluations = [r for r in records if r.record_type == "evaluation"]
        previous = self._states({(r.pk, f"STATE#{r.rule_id}") for r in evaluations})

        def changed(r: LedgerRecord) -> bool:
            before = previous.get((r.pk, f"STATE#{r.rule_id}"))
            return before is None or before.get("status") != r.status.value or before.get("reason") != r.reason

        changed_keys = {(r.pk, r.rule_id) for r in evaluations if changed(r)}
        recorded_keys = changed_keys | {(r.pk, r.rule_id) for r in evaluations if r.status in ALWAYS_RECORDED}
        # Every record of a (resource, rule) that is written goes, the steps of a multi-step fix included; its
        # state item only if the state changed (an unchanged dry_run gets a history item, its state stays).
        write = [r for r in records if r.record_type != "evaluation" or (r.pk, r.rule_id) in recorded_keys]
        unchanged = [r for r in evaluations if (r.pk, r.rule_id) not in recorded_keys]
        return self.write(write, extra_items=checks_items(unchanged, account=account, region=region,
                                                          trigger=trigger, ttl_days=ttl_days, now=now),
                          with_state=lambda r: (r.pk, r.rule_id) in changed_keys, changes=changes,
                          previous={k: str(v.get("status")) for k, v in previous.items()})

    def close_unseen(self, *, account: str, region: str, seen: set[tuple[str, str]], rules: Iterable[str],
                     before: datetime, trigger: Trigger, ttl_days: int, now: datetime | None = None,
                     changes: list[StatusChange] | None = None) -> int:
        """After a sweep of a whole account-region: open findings it did not see again are closed.

        A resource deleted while its event was lost, or one that left a rule's scope (a VPC whose last gateway
        endpoint went, a VPC whose profiles were removed), keeps its last state item, and `findings` would
        list it for ever. Every open state item of the account-region (one Query per open status on the
        by-status index) whose (resource, rule) the sweep did not evaluate becomes `not_applicable`, with a
        history record, unless its rule is off (its states are kept as they were) or it was written after
        the sweep began (an event about something the sweep could not have seen). Returns items written."""
        active = set(rules)
        cutoff = stamp(before)
        closed: list[Outcome] = []
        for status in sorted(OPEN_STATUSES, key=lambda s: s.value):
            for item in self.current(status, prefix=f"{account}#{region}#"):
                key = (item["pk"], item.get("rule_id", ""))
                if key in seen or item.get("rule_id") not in active or str(item.get("time", "")) >= cutoff:
                    continue
                reason = (f"not seen by the sweep of {cutoff}: the resource is gone or no longer in the rule's "
                          f"scope (was {item.get('status')})")
                closed.append(Outcome(finding=Finding(
                    rule_id=item["rule_id"], resource_id=item["resource_id"],
                    resource_type=item.get("resource_type", ""), vpc_id=item.get("vpc_id"),
                    status=Status.NOT_APPLICABLE, reason=reason,
                    details={"previous_status": item.get("status"), "previous_time": item.get("time")},
                ), status=Status.NOT_APPLICABLE, reason=reason))
        if not closed:
            return 0
        was = {(resource_pk(account, region, o.finding.resource_id), f"STATE#{o.finding.rule_id}"):
               o.finding.details.get("previous_status") for o in closed}
        return self.write(records_for(closed, trigger, account=account, region=region, ttl_days=ttl_days, now=now),
                          changes=changes, previous=was)

    def statuses(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The current status of each state key (pk, STATE#<rule>) that has a state item (BatchGetItem, 100 keys
        per call, consistent reads); keys without one are left out."""
        return {k: str(v.get("status")) for k, v in self._states(keys).items()}

    def _states(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """State items by (pk, sk), only the fields a sweep compares; batches go out side by side."""
        ordered = sorted(keys)
        batches = [ordered[i:i + GET_BATCH_SIZE] for i in range(0, len(ordered), GET_BATCH_SIZE)]
        return {(i["pk"], i["sk"]): i for items in side_by_side(self._get_batch, batches) for i in items}

    def _get_batch(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One BatchGetItem, and again for what DynamoDB leaves unprocessed, after a growing pause (what it
        leaves is throttled capacity; botocore retries only whole-call errors)."""
        client = self.table.meta.client
        request: dict[str, Any] = {self.table.name: {
            "Keys": [{"pk": pk, "sk": sk} for pk, sk in keys], "ConsistentRead": True,
            "ProjectionExpression": "pk, sk, #s, reason", "ExpressionAttributeNames": {"#s": "status"}}}
        found: list[dict[str, Any]] = []
        for attempt in range(UNPROCESSED_ROUNDS):
            if attempt:
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
            resp = client.batch_get_item(RequestItems=request)
            found += resp.get("Responses", {}).get(self.table.name, [])
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise LedgerUnavailable(f"DynamoDB left {len(request[self.table.name]['Keys'])} state reads unprocessed "
                                f"after {UNPROCESSED_ROUNDS} rounds")

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
        lo, hi = stamp(since), stamp(until)
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            cond = Key("gsi1pk").eq(activity_pk(value, day.isoformat())) & Key("gsi1sk").between(lo, f"{hi}~")
            yield from self._query({"IndexName": STATUS_INDEX, "KeyConditionExpression": cond}, None, on_page)
            day += timedelta(days=1)

    def checks(self, account: str, region: str, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Checks items of an account-region (what sweeps found unchanged), newest first: one Query, read
        page by page as far as the caller iterates."""
        from boto3.dynamodb.conditions import Key

        cond = Key("pk").eq(checks_pk(account, region))
        if since is not None:
            cond = cond & Key("sk").between(f"EVAL#{stamp(since)}", "EVAL#~")
        yield from self._query({"KeyConditionExpression": cond, "ScanIndexForward": False}, None)

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

