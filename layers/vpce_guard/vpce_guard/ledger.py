"""The ledger: one DynamoDB record per evaluation of a rule on a resource, plus its current state.

Key design (single table, see docs/ledger.md):
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
  what a sweep re-checked and found as it was (see `Ledger.write_sweep`); a part listing unchanged dry_run
  findings carries their reasons and the activity keys of dry_run, so the activity index stays complete.
- digest        pk = UNIT#<account>#<region>                    sk = DIGEST
  a version every state write of the account-region adds one to, and the digest of the last sweep that read
  its state items back (unit_digest.py: what lets a repeat sweep skip those reads).
Ordering: every record carries `observed_at`, the time the resource was read (the snapshot, or the read-back
after a write). A state item is only ever replaced by an observation at least as recent (a conditional put),
so a run that read earlier and finishes later never overwrites the verdict of a run that read later. History
items are never conditional: both observations stay in the timeline.

Writes: the state items of a write are read first (one BatchGetItem per 100 keys; a sweep has them already),
which tells each write's status changes (`WriteReport.changes`, for finding events and notifications) and
drops what is known to be older. A write of at most 100 items (an event's) is one TransactWriteItems, the
state puts conditional; larger ones send history with BatchWriteItem (25 per call) and the state puts in
transactions of up to 100. Every transaction that puts state items also adds one to the `version` of their
account-region's digest item (unit_digest.py), so no state item changes unseen by a sweep's digest.

Events write a history item for every evaluation: an event is a change, and who made it matters. A sweep
re-checks everything, mostly unchanged; it writes history and state only for what changed (status or reason
differ from the state item), was done or attempted, and lists the rest, by rule and status, in its checks
items (an unchanged dry_run with its reason: what would be fixed, on the activity index): every check is
recorded, a resource's history stays a timeline of changes (as AWS Config keeps a compliance timeline), and a
sweep costs writes in proportion to drift, not to the size of the estate. When the account-region's digest
vouches that nothing changed since the last such sweep, the sweep reads no state item at all (unit_digest.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from .aws import side_by_side
from .models import OPEN_STATUSES, Finding, Outcome, Status, Trigger
from .unit_digest import DIGEST_SK, UnitDigest, unit_pk

logger = Logger(service="vpce-guard", child=True)
T = TypeVar("T")

STATUS_INDEX = "by-status"
#: Items per BatchWriteItem (DynamoDB's limit).
BATCH_SIZE = 25
#: History statuses indexed by day for time-window queries (what changed, what would have, what failed).
ACTIVITY_STATUSES = frozenset({Status.REMEDIATED, Status.DRY_RUN, Status.FAILED})
#: Keys per BatchGetItem (DynamoDB's limit).
GET_BATCH_SIZE = 100
#: BatchGetItem rounds for keys DynamoDB leaves unprocessed before the sweep gives up (and is retried).
UNPROCESSED_ROUNDS = 8
#: Statuses a sweep always writes as history, changed or not: something was done, attempted, or was held back
#: (flapping). An unchanged dry_run (what would be done, as before) goes in the checks items with its reason,
#: on the activity index (checks_items).
ALWAYS_RECORDED = frozenset({Status.REMEDIATED, Status.FAILED, Status.PENDING, Status.FLAPPING, Status.CONFLICT})
#: Items per TransactWriteItems (DynamoDB's limit), and a margin under its 4 MB request limit.
TRANSACT_SIZE = 100
TRANSACT_BYTES = 3_500_000
#: The pseudo-rule of ids an event named that do not exist: a resource that does not exist has no state item.
RESOURCE_EXISTS_RULE = "resource-exists"
#: Fields of a state item that a write compares (read with BatchGetItem before it).
STATE_FIELDS = ("pk", "sk", "status", "reason", "observed_at")
#: Sparse index of the open state items by account-region: only a state item whose status is open carries
#: `open_place` (<account>#<region>), so what is open in an account-region is one Query, paginated by 1 MB,
#: whatever the number of statuses or of other items (template.yaml: LedgerTable).
OPEN_INDEX = "open-by-place"
#: Unchanged evaluations listed per checks item: resource ids of about 25 bytes keep it far below DynamoDB's
#: 400 KB item limit; the reasons of unchanged dry_run findings count by their size (CHECKS_BYTES).
CHECKS_PER_ITEM = 2000
CHECKS_BYTES = 300_000
#: The rule-and-reason map of a checks item's unchanged dry_run findings (`<rule>` → `<resource>` → reason).
WOULD_FIX = "would_fix"


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
    #: When the resource was read (the ledger's time format); orders state items (module doc). None: `time`.
    observed_at: str | None = None
    #: The resource no longer exists (deleted endpoint): its state item expires with the history.
    resource_gone: bool = False
    #: For records that are not evaluations (a rollback): the (resource, rule) state they leave, if any.
    state_status: Status | None = None

    @property
    def observed(self) -> str:
        return self.observed_at or self.time

    @property
    def current_status(self) -> Status:
        """The status its state item holds: the evaluation's, or what a non-evaluation record leaves."""
        return self.state_status or self.status

    @property
    def state_key(self) -> tuple[str, str]:
        return self.pk, f"STATE#{self.rule_id}"

    def to_item(self) -> dict[str, Any]:
        item = self.model_dump(mode="json", exclude_none=True)
        if self.status in ACTIVITY_STATUSES:
            item["gsi1pk"] = activity_pk(self.status, self.time[:10])
            item["gsi1sk"] = f"{self.time}#{self.account}#{self.region}#{self.rule_id}#{self.resource_id}"
        return _dynamo_safe(item)

    def state_item(self) -> dict[str, Any]:
        """The 'current state' item this record implies for (resource, rule)."""
        item = {
            "pk": self.pk,
            "sk": f"STATE#{self.rule_id}",
            "record_type": "state",
            "account": self.account,
            "region": self.region,
            "resource_id": self.resource_id,
            "resource_type": self.resource_type,
            "vpc_id": self.vpc_id,
            "rule_id": self.rule_id,
            "status": self.current_status.value,
            "reason": self.reason,
            "last_evaluation": self.sk,
            "time": self.time,
            "observed_at": self.observed,
            "gsi1pk": f"STATUS#{self.current_status.value}",
            "gsi1sk": f"{self.account}#{self.region}#{self.rule_id}#{self.resource_id}",
        }
        if self.current_status in OPEN_STATUSES:  # the sparse index of open findings by account-region (OPEN_INDEX)
            item["open_place"] = open_place(self.account, self.region)
            item["open_key"] = f"{self.rule_id}#{self.resource_id}"
        if self.resource_gone:
            item["expires_at"] = self.expires_at
        return _dynamo_safe(item)


@dataclass(frozen=True)
class StatusChange:
    """A (resource, rule) whose current status changed with a write: what finding events, Security Hub and
    notifications are about. `previous` is None the first time the pair is seen."""

    account: str
    region: str
    resource_id: str
    resource_type: str
    rule_id: str
    previous: Status | None
    current: Status
    record: LedgerRecord


@dataclass
class WriteReport:
    """What a ledger write did."""

    items: int = 0
    changes: list[StatusChange] = field(default_factory=list)
    #: State keys not written because a more recent observation is stored (an older run finishing later).
    superseded: list[tuple[str, str]] = field(default_factory=list)
    #: The state items as they were before the write, by (pk, sk) (STATE_FIELDS only).
    previous: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: What this write added to each account-region's digest version (unit_digest.py), by digest pk.
    bumps: Counter[str] = field(default_factory=Counter)
    #: Open findings a sweep did not see and left open because they were written after it began (close_unseen):
    #: the sweep cannot vouch that nothing is open that it did not see.
    left_open: list[tuple[str, str]] = field(default_factory=list)

    def __iadd__(self, other: WriteReport) -> WriteReport:
        self.items += other.items
        self.left_open += other.left_open
        self.changes += other.changes
        self.superseded += other.superseded
        self.previous.update(other.previous)
        self.bumps += other.bumps
        return self


def _now() -> datetime:
    return datetime.now(UTC)


def _dynamo_safe(value: Any) -> Any:
    """DynamoDB wants Decimals, not floats, and no None values in maps."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal,
                      object_hook=lambda d: {k: v for k, v in d.items() if v is not None})


def _size(item: dict[str, Any]) -> int:
    """About what an item weighs in a request (DynamoDB counts names and values; JSON is close enough)."""
    return len(json.dumps(item, default=str))


def status_of(state: Mapping[str, Any] | None) -> Status | None:
    value = (state or {}).get("status")
    return Status(value) if value in Status._value2member_map_ else None


def _transact_put(table: str, item: dict[str, Any], conditional: bool) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": item}
    if conditional:
        # Only over an older (or no, or an unordered legacy) observation of the same (resource, rule).
        put["ConditionExpression"] = ("attribute_not_exists(pk) OR attribute_not_exists(observed_at) "
                                      "OR observed_at <= :observed")
        put["ExpressionAttributeValues"] = {":observed": item["observed_at"]}
    return {"Put": put}


def _bump(place: str) -> dict[str, Any]:
    """One more state write in an account-region: its digest's `version` (unit_digest.py), created at 1. The
    arguments of an UpdateItem, alone or inside a transaction (`_transact_bump`)."""
    return {"Key": {"pk": place, "sk": DIGEST_SK}, "UpdateExpression": "ADD #v :one",
            "ExpressionAttributeNames": {"#v": "version"}, "ExpressionAttributeValues": {":one": 1}}


def _transact_bump(table: str, place: str) -> dict[str, Any]:
    return {"Update": {"TableName": table, **_bump(place)}}


def _places(puts: Iterable[tuple[dict[str, Any], bool]]) -> list[str]:
    """The digest items of the account-regions whose state items (the conditional puts) a transaction writes."""
    return sorted({unit_pk(str(item["account"]), str(item["region"])) for item, conditional in puts if conditional})


def _transact_chunks(puts: list[tuple[dict[str, Any], bool]]) -> list[list[tuple[dict[str, Any], bool]]]:
    """Transactions of state puts, each with room for the digest bumps of its account-regions."""
    room = TRANSACT_SIZE - min(len(_places(puts)), TRANSACT_SIZE // 2)
    return _chunked(puts, lambda put: _size(put[0]), count=room, weight=TRANSACT_BYTES)


def _chunked(items: Iterable[T], size_of: Callable[[T], int], *, count: int, weight: int) -> list[list[T]]:
    """Items in order, cut into chunks of at most `count` items and `weight` in all (an item heavier than
    `weight` gets a chunk of its own)."""
    chunks: list[list[T]] = [[]]
    load = 0
    for item in items:
        size = size_of(item)
        if chunks[-1] and (len(chunks[-1]) >= count or load + size > weight):
            chunks.append([])
            load = 0
        chunks[-1].append(item)
        load += size
    return chunks


def stamp(moment: datetime) -> str:
    """The ledger's time format (`time` and the time part of `sk`): UTC, milliseconds, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def open_place(account: str, region: str) -> str:
    """The key of an account-region in OPEN_INDEX."""
    return f"{account}#{region}"


def resource_pk(account: str, region: str, resource_id: str) -> str:
    return f"RES#{account}#{region}#{resource_id}"


def activity_pk(status: Status | str, day: str) -> str:
    """Partition of the by-status index holding one day's (YYYY-MM-DD, UTC) history items of a status."""
    return f"ACTIVITY#{status.value if isinstance(status, Status) else status}#{day}"


def expires_at(now: datetime, ttl_days: int) -> int:
    """The TTL attribute (`expires_at`) of an item written at `now`."""
    return int(now.timestamp()) + ttl_days * 86400


def records_for(outcomes: Iterable[Outcome], trigger: Trigger, *, account: str, region: str,
                ttl_days: int, now: datetime | None = None, observed: datetime | None = None,
                gone: Iterable[str] = ()) -> list[LedgerRecord]:
    """Ledger records of outcomes. `observed` is when the resources were read (default: now); an outcome's own
    `observed_at` (a read-back after a write) wins. `gone` names resources that no longer exist."""
    now = now or _now()
    when, expires = stamp(now), expires_at(now, ttl_days)
    seen_at = stamp(observed or now)
    gone_ids = frozenset(gone)
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
            observed_at=stamp(o.observed_at) if o.observed_at else seen_at, resource_gone=resource_id in gone_ids,
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


def _checks_parts(unchanged: list[LedgerRecord]) -> list[list[LedgerRecord]]:
    """Unchanged evaluations cut into checks items: CHECKS_PER_ITEM each, and CHECKS_BYTES of dry_run reasons."""
    return _chunked(unchanged, lambda r: len(r.resource_id) + (len(r.reason) + len(r.rule_id)
                                                               if r.status is Status.DRY_RUN else 0),
                    count=CHECKS_PER_ITEM, weight=CHECKS_BYTES)


def checks_items(unchanged: list[LedgerRecord], *, account: str, region: str, trigger: Trigger, ttl_days: int,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """The checks items of a sweep: its unchanged evaluations as `checked` (status → rule → resource ids),
    CHECKS_PER_ITEM to an item; `count` says how many each holds. A part that lists unchanged dry_run findings
    also holds their reasons (WOULD_FIX) and the activity keys of dry_run: "what would have been fixed between
    two times" still lists every dry_run a sweep saw (`Ledger.activity` reads them out)."""
    if not unchanged:
        return []
    now = now or _now()
    moment = stamp(now)
    out: list[dict[str, Any]] = []
    for part, chunk in enumerate(_checks_parts(unchanged)):
        checked: dict[str, dict[str, list[str]]] = {}
        would_fix: dict[str, dict[str, str]] = {}
        for r in chunk:
            checked.setdefault(r.status.value, {}).setdefault(r.rule_id, []).append(r.resource_id)
            if r.status is Status.DRY_RUN:
                would_fix.setdefault(r.rule_id, {})[r.resource_id] = r.reason
        item: dict[str, Any] = {
            "pk": checks_pk(account, region), "sk": f"EVAL#{moment}#{part:04d}", "record_type": "checks",
            "account": account, "region": region, "count": len(chunk), "checked": checked,
            "trigger": trigger.model_dump(mode="json", exclude_none=True), "time": moment,
            "expires_at": expires_at(now, ttl_days),
        }
        if would_fix:
            item[WOULD_FIX] = would_fix
            item["gsi1pk"] = activity_pk(Status.DRY_RUN, moment[:10])
            item["gsi1sk"] = f"{moment}#{account}#{region}#~checks#{part:04d}"
        out.append(_dynamo_safe(item))
    return out


def would_fix_rows(item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The unchanged dry_run findings a checks item lists, each shaped as the history item of an evaluation."""
    account, region = str(item.get("account")), str(item.get("region"))
    for rule_id, reasons in sorted((item.get(WOULD_FIX) or {}).items()):
        for resource_id, reason in sorted(reasons.items()):
            yield {"pk": resource_pk(account, region, resource_id), "sk": item.get("sk"), "record_type": "checks",
                   "account": account, "region": region, "resource_id": resource_id, "rule_id": rule_id,
                   "status": Status.DRY_RUN.value, "reason": reason, "trigger": item.get("trigger"),
                   "time": item.get("time"), "details": {"unchanged": "as the sweep before found it"}}


def checks_pk(account: str, region: str) -> str:
    return f"CHECKS#{account}#{region}"


class Ledger:
    """Writes and reads the ledger table (a boto3 DynamoDB Table resource)."""

    def __init__(self, table: Any, *, page_size: int | None = None) -> None:
        self.table = table
        #: Items per Query page (DynamoDB's Limit); None lets DynamoDB fill 1 MB pages.
        self.page_size = page_size

    def write(self, records: Iterable[LedgerRecord], extra_items: Iterable[dict[str, Any]] = (),
              with_state: Callable[[LedgerRecord], bool] | None = None,
              previous: Mapping[tuple[str, str], dict[str, Any]] | None = None) -> WriteReport:
        """Write history items and, for evaluations, the state items (those `with_state` picks; default all),
        and `extra_items` as they are. `previous` holds state items the caller has read already (the others
        are read here). A state item is written only over an older observation (module doc)."""
        history: dict[tuple[str, str], dict[str, Any]] = {(i["pk"], i["sk"]): i for i in extra_items}
        states: dict[tuple[str, str], LedgerRecord] = {}
        for r in records:
            history[(r.pk, r.sk)] = r.to_item()
            if r.state_status is not None or (r.record_type == "evaluation" and r.rule_id != RESOURCE_EXISTS_RULE
                                              and (with_state is None or with_state(r))):
                # A later record of the same (resource, rule) in this batch supersedes an earlier one.
                states[r.state_key] = r
        report = WriteReport()
        if not history and not states:
            return report
        known = dict(previous or {})
        unread = set(states) - set(known)
        if unread:
            known.update(self.states(unread))
        report.previous = {k: known[k] for k in states if k in known}
        for key, r in list(states.items()):
            before = known.get(key) or {}
            if str(before.get("observed_at") or "") > r.observed:
                report.superseded.append(key)
                del states[key]
        written, refused, report.bumps = self._put(list(history.values()),
                                                   {k: r.state_item() for k, r in states.items()})
        report.superseded += refused
        report.items = len(history) + len(written)
        for key in sorted(written):
            r = states[key]
            was = status_of(known.get(key))
            if was is not r.current_status:
                report.changes.append(StatusChange(
                    account=r.account, region=r.region, resource_id=r.resource_id, resource_type=r.resource_type,
                    rule_id=r.rule_id, previous=was, current=r.current_status, record=r))
        if report.superseded:
            logger.info("state items left as they are: a more recent observation is stored",
                        extra={"keys": [f"{pk} {sk}" for pk, sk in report.superseded[:20]]})
        return report

    def _put(self, history: list[dict[str, Any]], states: dict[tuple[str, str], dict[str, Any]]) -> tuple[
            set[tuple[str, str]], list[tuple[str, str]], Counter[str]]:
        """History items unconditionally, state items on condition of their observation time. One transaction
        when everything fits in one; else history in batches side by side, then the states in transactions of
        100, one after another (a write this large is a first sweep: rare, and each call already carries 100
        items; moto, the tests' DynamoDB, is not safe for concurrent transactions either). Each transaction adds
        one to the digest version of the account-regions it writes states of (unit_digest.py).
        Returns (state keys written, state keys refused because a newer observation was stored meanwhile,
        what was added to each digest version)."""
        if not states:
            side_by_side(self._write_batch, [history[i:i + BATCH_SIZE] for i in range(0, len(history), BATCH_SIZE)])
            return set(), [], Counter()
        puts = [(item, False) for item in history] + [(item, True) for item in states.values()]
        if len(puts) + len(_places(puts)) <= TRANSACT_SIZE and sum(_size(i) for i, _ in puts) <= TRANSACT_BYTES:
            chunks = [puts]
        else:
            side_by_side(self._write_batch, [history[i:i + BATCH_SIZE] for i in range(0, len(history), BATCH_SIZE)])
            chunks = _transact_chunks([(item, True) for item in states.values()])
        written: set[tuple[str, str]] = set()
        refused: list[tuple[str, str]] = []
        bumps: Counter[str] = Counter()
        for chunk in chunks:
            done, lost, bumped = self._transact(chunk)
            written |= done
            refused += lost
            bumps.update(bumped)
        return written, refused, bumps

    def _transact(self, puts: list[tuple[dict[str, Any], bool]]) -> tuple[set[tuple[str, str]],
                                                                          list[tuple[str, str]], list[str]]:
        """One TransactWriteItems, with the digest bumps of its state puts; conditional puts refused by a newer
        observation are dropped and the rest is sent again; a conflict with another transaction or throttling is
        retried after a growing pause. Returns what `_put` does, the digests bumped as a list."""
        client = self.table.meta.client
        refused: list[tuple[str, str]] = []
        for attempt in range(UNPROCESSED_ROUNDS):
            if not puts:
                break
            places = _places(puts)
            try:
                client.transact_write_items(TransactItems=[_transact_put(self.table.name, item, conditional)
                                                           for item, conditional in puts]
                                            + [_transact_bump(self.table.name, place) for place in places])
                return {(i["pk"], i["sk"]) for i, conditional in puts if conditional}, refused, places
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                stale = {n for n, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
                if stale:
                    refused += [(puts[n][0]["pk"], puts[n][0]["sk"]) for n in sorted(stale)]
                    puts = [p for n, p in enumerate(puts) if n not in stale]
                    continue
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
        if not puts:
            return set(), refused, []
        raise LedgerUnavailable(f"DynamoDB kept cancelling a ledger transaction of {len(puts)} items after "
                                f"{UNPROCESSED_ROUNDS} rounds")

    def write_sweep(self, records: list[LedgerRecord], *, account: str, region: str, trigger: Trigger,
                    ttl_days: int, now: datetime | None = None,
                    previous: Mapping[tuple[str, str], dict[str, Any]] | None = None) -> WriteReport:
        """A sweep's records: history and state for what changed, checks items for the rest (module doc).

        Changed means: no state item yet, or a different status or reason; an evaluation whose status is in
        ALWAYS_RECORDED gets a history item even when unchanged (its state item stays). The state items not in
        `previous` are read first (BatchGetItem, 100 keys per call, consistent reads); a state written by an
        event meanwhile is at worst compared with an older one, which writes a record more, never one less.
        Returns the items written."""
        evaluations = [r for r in records if r.record_type == "evaluation"]
        known = dict(previous or {})
        known.update(self.states({r.state_key for r in evaluations} - set(known)))
        previous = known

        def changed(r: LedgerRecord) -> bool:
            before = previous.get(r.state_key) or {}
            return before.get("status") != r.status.value or before.get("reason") != r.reason

        changed_keys = {(r.pk, r.rule_id) for r in evaluations if changed(r)}
        recorded_keys = changed_keys | {(r.pk, r.rule_id) for r in evaluations if r.status in ALWAYS_RECORDED}
        # Every record of a (resource, rule) that is written goes, the steps of a multi-step fix included; its
        # state item only if the state changed (an unchanged dry_run gets a history item, its state stays).
        write = [r for r in records if r.record_type != "evaluation" or (r.pk, r.rule_id) in recorded_keys]
        unchanged = [r for r in evaluations if (r.pk, r.rule_id) not in recorded_keys]
        return self.write(write, extra_items=checks_items(unchanged, account=account, region=region,
                                                          trigger=trigger, ttl_days=ttl_days, now=now),
                          with_state=lambda r: (r.pk, r.rule_id) in changed_keys, previous=previous)

    def close_unseen(self, *, account: str, region: str, seen: set[tuple[str, str]], rules: Iterable[str],
                     before: datetime, trigger: Trigger, ttl_days: int, now: datetime | None = None,
                     observed: datetime | None = None) -> WriteReport:
        """After a sweep of a whole account-region: open findings it did not see again are closed.

        A resource deleted while its event was lost, or one that left a rule's scope (a VPC whose last gateway
        endpoint went, a VPC whose profiles were removed), keeps its last state item, and `findings` would
        list it for ever. Every open state item of the account-region (one Query on OPEN_INDEX, which holds
        the open ones only) whose (resource, rule) the sweep did not evaluate becomes `not_applicable`, with a
        history record, unless its rule is off (its states are kept as they were) or it was written after
        the sweep began (an event about something the sweep could not have seen: `WriteReport.left_open`).
        Returns what was written."""
        active = set(rules)
        cutoff = stamp(before)
        closed: list[Outcome] = []
        previous: dict[tuple[str, str], dict[str, Any]] = {}
        newer: list[tuple[str, str]] = []
        for item in self.open_in(account, region):
            if item.get("status") in {s.value for s in OPEN_STATUSES}:
                key = (item["pk"], item.get("rule_id", ""))
                if key in seen or item.get("rule_id") not in active:
                    continue
                if str(item.get("time", "")) >= cutoff:
                    newer.append((item["pk"], item["sk"]))
                    continue
                previous[(item["pk"], item["sk"])] = {k: item[k] for k in STATE_FIELDS if k in item}
                reason = (f"not seen by the sweep of {cutoff}: the resource is gone or no longer in the rule's "
                          f"scope (was {item.get('status')})")
                closed.append(Outcome(finding=Finding(
                    rule_id=item["rule_id"], resource_id=item["resource_id"],
                    resource_type=item.get("resource_type", ""), vpc_id=item.get("vpc_id"),
                    status=Status.NOT_APPLICABLE, reason=reason,
                    details={"previous_status": item.get("status"), "previous_time": item.get("time")},
                ), status=Status.NOT_APPLICABLE, reason=reason))
        if not closed:
            return WriteReport(left_open=newer)
        # Observed when the sweep read the account-region (default: when it began): an event that saw the resource
        # after that keeps its state.
        report = self.write(records_for(closed, trigger, account=account, region=region, ttl_days=ttl_days, now=now,
                                        observed=observed or before), previous=previous)
        report.left_open += newer
        return report

    def states(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """State items by (pk, sk), only the fields a write compares (STATE_FIELDS); batches go out side by
        side. A key without a state item maps to {} (read, and known to have none)."""
        ordered = sorted(set(keys))
        batches = [ordered[i:i + GET_BATCH_SIZE] for i in range(0, len(ordered), GET_BATCH_SIZE)]
        found = {(i["pk"], i["sk"]): i for items in side_by_side(self._get_batch, batches) for i in items}
        return {key: found.get(key, {}) for key in ordered}

    def unit(self, account: str, region: str) -> UnitDigest:
        """The digest item of an account-region (unit_digest.py): one consistent GetItem."""
        resp = self.table.get_item(Key={"pk": unit_pk(account, region), "sk": DIGEST_SK}, ConsistentRead=True,
                                   ProjectionExpression="#v, digest, digest_version, verified_at",
                                   ExpressionAttributeNames={"#v": "version"})
        return UnitDigest.from_item(resp.get("Item"))

    def vouch(self, account: str, region: str, digest: str, *, read: UnitDigest, own_bumps: int,
              now: datetime | None = None) -> bool:
        """Store the digest of a sweep that read the account-region's state items back and wrote what changed,
        on condition that the version is what it read plus its own writes: no one else wrote a state item of the
        account-region meanwhile. Returns whether it was stored (if not, the next sweep takes the full path)."""
        expected = read.version + own_bumps
        condition = "attribute_not_exists(#v)" if expected == 0 else "#v = :v"
        try:
            self.table.update_item(
                Key={"pk": unit_pk(account, region), "sk": DIGEST_SK},
                UpdateExpression="SET digest = :d, digest_version = :v, verified_at = :t, record_type = :rt, "
                                 "account = :a, #r = :r",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": "version", "#r": "region"},
                ExpressionAttributeValues={":d": digest, ":v": expected, ":t": stamp(now or _now()),
                                           ":rt": "digest", ":a": account, ":r": region})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            logger.info("account-region written meanwhile: its digest is not stored, the next sweep reads back",
                        extra={"account": account, "region": region})
            return False
        return True

    def _get_batch(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One BatchGetItem, and again for what DynamoDB leaves unprocessed, after a growing pause (what it
        leaves is throttled capacity; botocore retries only whole-call errors)."""
        client = self.table.meta.client
        request: dict[str, Any] = {self.table.name: {
            "Keys": [{"pk": pk, "sk": sk} for pk, sk in keys], "ConsistentRead": True,
            "ProjectionExpression": "pk, sk, #s, reason, observed_at", "ExpressionAttributeNames": {"#s": "status"}}}
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

    def index_open_states(self) -> dict[str, int]:
        """Put the open state items written before OPEN_INDEX existed (vpce-guard 0.1.0) into it.

        Such an item has an open status but no `open_place`, so a sweep's `close_unseen` cannot see it: a finding
        on a resource that went while its event was lost would stay open for ever. Every open state item is read
        from the by-status index (one paginated Query per open status, no scan) and each one without the keys
        gets them, on condition that its status is still the one read and it still has none (a run writing the
        state meanwhile wins; running this again changes nothing). Returns what was read and indexed."""
        from boto3.dynamodb.conditions import Attr

        counts = {"open_states": 0, "indexed": 0, "changed_meanwhile": 0}
        places: set[str] = set()
        for status in sorted(s.value for s in OPEN_STATUSES):
            for item in self.current(status):
                if item.get("record_type") != "state":
                    continue
                counts["open_states"] += 1
                if "open_place" in item:
                    continue
                try:
                    self.table.update_item(
                        Key={"pk": item["pk"], "sk": item["sk"]},
                        UpdateExpression="SET open_place = :place, open_key = :key",
                        ConditionExpression=Attr("status").eq(status) & Attr("open_place").not_exists(),
                        ExpressionAttributeValues={
                            ":place": open_place(str(item["account"]), str(item["region"])),
                            ":key": f"{item['rule_id']}#{item['resource_id']}"})
                    counts["indexed"] += 1
                    places.add(unit_pk(str(item["account"]), str(item["region"])))
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
                    counts["changed_meanwhile"] += 1
        for place in sorted(places):  # a digest stored before these were open-indexed no longer vouches (unit_digest)
            self.table.update_item(**_bump(place))
        return counts

    def open_in(self, account: str, region: str) -> Iterator[dict[str, Any]]:
        """The open state items of an account-region: one Query on OPEN_INDEX, paginated."""
        from boto3.dynamodb.conditions import Key

        cond = Key("open_place").eq(open_place(account, region))
        yield from self._query({"IndexName": OPEN_INDEX, "KeyConditionExpression": cond}, None)

    def activity(self, status: Status | str, since: datetime, until: datetime, *,
                 on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """History items of a status (remediated, dry_run, failed) recorded in [since, until], oldest first:
        one Query per UTC day on the by-status index, never a scan. For dry_run, the unchanged findings a sweep
        listed in its checks items come as items of their own (`would_fix_rows`, `record_type` checks)."""
        from boto3.dynamodb.conditions import Key

        value = status.value if isinstance(status, Status) else status
        if Status(value) not in ACTIVITY_STATUSES:
            raise ValueError(f"only {sorted(s.value for s in ACTIVITY_STATUSES)} are indexed by time, not {value}")
        lo, hi = stamp(since), stamp(until)
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            cond = Key("gsi1pk").eq(activity_pk(value, day.isoformat())) & Key("gsi1sk").between(lo, f"{hi}~")
            for item in self._query({"IndexName": STATUS_INDEX, "KeyConditionExpression": cond}, None, on_page):
                if item.get("record_type") == "checks":  # unchanged dry_run findings a sweep listed (checks_items)
                    yield from would_fix_rows(item)
                else:
                    yield item
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

