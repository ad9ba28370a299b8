"""The scheduled sweep: every active account of the organization times every governed region, through the same
pipeline as an event, to catch what late or lost CloudTrail events missed.

Shape (template.yaml wires it; `run_sweep` does the same in one process for the demo, benchmarks and tests):

* `start_sweep` (SweepFunction, on a schedule) lists the active accounts (organizations:ListAccounts,
  paginated; suspended/closed and skip-listed accounts left out) and the governed regions, writes the
  sweep's summary record, and queues one SQS message per (account, region) unit.
* `Worker.process` (SweepWorkerFunction, SQS batches with partial-failure reporting) runs one unit: checks
  the region is enabled in that account (ec2:DescribeRegions through the spoke role), then
  `pipeline.run_targets(..., Targets(everything=True), Trigger(source="sweep"))`, then accounts for it
  in the summary. A role that cannot be assumed or a region that is not enabled is a recorded failure
  of that unit, never an error of the sweep.
* Accounting is exactly-once per unit: the unit item and the summary counters are written in one
  DynamoDB transaction that is refused if the unit was already counted (SQS delivers at least once). The
  worker that counts the last unit marks the sweep complete (a conditional update only one can win) and
  emits the sweep's metrics.

Ledger items (same table as evaluations, see docs/ledger.md):
  pk = SWEEP#<sweep id>  sk = PLAN                       accounts, regions, accounts left out (written once)
  pk = SWEEP#<sweep id>  sk = SUMMARY                    status, totals (gsi1pk = SWEEPS: newest sweeps by index)
  pk = SWEEP#<sweep id>  sk = COUNTS#<nn>                 counters of the units hashed to this shard
  pk = SWEEP#<sweep id>  sk = UNIT#<account>#<region>    one per unit: outcome, counts, failure reason
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import aws, ledger, pipeline
from .models import Status, Targets, Trigger

logger = Logger(service="vpce-guard", child=True)

ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
SWEEP_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")

#: Region opt-in states in which an account can use a region (DescribeRegions `OptInStatus`).
ENABLED_OPT_IN = frozenset({"opt-in-not-required", "opted-in"})
#: Failures kept on the summary item (all of them are on their unit items). Every unit updates that item, and
#: a write costs by item size, so it stays small: counters and a sample of failures; the account list is on
#: the sweep's PLAN item, written once.
MAX_SUMMARY_FAILURES = 25
#: Counter shards: units are counted on COUNTS#<nn> items, one per UNITS_PER_COUNTER_SHARD units (at most
#: MAX_COUNTER_SHARDS). Each unit is counted by a transaction, and DynamoDB cancels a transaction that meets
#: another one on the same item (TransactionConflict): on one item, a thousand-account sweep's workers would
#: keep cancelling each other (benchmarks/orgsim: a few hundred conflicts a minute at 50 workers).
UNITS_PER_COUNTER_SHARD = 250
MAX_COUNTER_SHARDS = 64
#: Counting transactions cancelled by a concurrent one are sent again, after a short random pause.
COUNT_CONFLICT_ROUNDS = 8
#: A worker does not start a unit with less time than this left (the message is retried instead).
MIN_MILLIS_PER_UNIT = 60_000
#: Deliveries of a unit before SQS moves it to the dead-letter queue (template.yaml: SweepQueue
#: RedrivePolicy maxReceiveCount). A transient failure is retried until the last delivery, where it is
#: recorded instead, so the sweep still completes.
MAX_RECEIVES = 3
SWEEP_TRIGGER_NAME = "ScheduledSweep"


class RetryUnit(Exception):
    """A transient failure (throttling, 5xx, network, stale credentials): run the unit again later."""


class FailureKind:
    """Why a unit could not be swept (the summary counts failures per kind)."""

    ROLE_UNAVAILABLE = "role_unavailable"  # AssumeRole refused: spoke missing, trust not matching, …
    ACCOUNT_UNREACHABLE = "account_unreachable"  # another account but no SPOKE_ROLE_NAME configured
    REGION_NOT_ENABLED = "region_not_enabled"  # opt-in region not enabled in that account
    READ_FAILED = "read_failed"  # the role works but reading configuration failed


# ---------------------------------------------------------------------------------------------------------
# Settings and messages (the edges: validated with pydantic)
# ---------------------------------------------------------------------------------------------------------


class SweepSettings(BaseModel):
    """What template.yaml gives the sweep functions (read once per cold start)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue_url: str = ""
    #: Governed regions (the StackSet's regions); empty: the regions enabled in the hub account.
    regions: tuple[str, ...] = ()
    skip_accounts: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SweepSettings:
        env = os.environ if env is None else env
        regions = _csv(env.get("SWEEP_REGIONS", ""))
        skip = _csv(env.get("SWEEP_SKIP_ACCOUNTS", ""))
        bad = [r for r in regions if not REGION_RE.match(r)] + [a for a in skip if not ACCOUNT_RE.match(a)]
        if bad:
            from .config import ConfigError

            raise ConfigError(f"invalid vpce-guard configuration: SWEEP_REGIONS/SWEEP_SKIP_ACCOUNTS: {bad}")
        return cls(queue_url=env.get("SWEEP_QUEUE_URL", ""), regions=tuple(dict.fromkeys(regions)),
                   skip_accounts=frozenset(skip))


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class SweepUnit(BaseModel):
    """One SQS message: sweep this account in this region for this sweep."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sweep_id: str = Field(pattern=SWEEP_ID_RE.pattern)
    account: str = Field(pattern=ACCOUNT_RE.pattern)
    region: str = Field(pattern=REGION_RE.pattern)
    started_at: str = Field(max_length=40)
    #: Counter shards of the sweep (messages queued before shards existed count on the one shard).
    counter_shards: int = Field(default=1, ge=1, le=MAX_COUNTER_SHARDS)

    @property
    def counter_shard(self) -> int:
        """The shard this unit is counted on: a stable hash of (account, region)."""
        return zlib.crc32(f"{self.account}#{self.region}".encode()) % self.counter_shards


def counter_shards(units: int) -> int:
    return max(1, min(MAX_COUNTER_SHARDS, math.ceil(units / UNITS_PER_COUNTER_SHARD)))


class SweepPlan(BaseModel):
    """What a sweep covers, decided once at its start."""

    sweep_id: str
    started_at: str
    accounts: list[str]
    regions: list[str]
    skipped_accounts: list[dict[str, str]] = Field(default_factory=list)

    def units(self) -> list[SweepUnit]:
        """Account-major, so a worker batch tends to hold several regions of one account (one AssumeRole)."""
        shards = counter_shards(len(self.accounts) * len(self.regions))
        return [SweepUnit(sweep_id=self.sweep_id, account=a, region=r, started_at=self.started_at,
                          counter_shards=shards) for a in self.accounts for r in self.regions]

    def brief(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "accounts": len(self.accounts), "regions": self.regions,
                "units": len(self.accounts) * len(self.regions), "skipped_accounts": self.skipped_accounts}


class UnitResult(BaseModel):
    """What sweeping one (account, region) gave."""

    unit: SweepUnit
    failure_kind: str | None = None
    reason: str = ""
    endpoints_seen: int = 0
    #: (rule id, status) → number of evaluations.
    findings: dict[tuple[str, str], int] = Field(default_factory=dict)
    ledger_items: int = 0
    #: How the unit knew its state items: "vouched" by the account-region's digest, or "read_back" (unit_digest).
    digest: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure_kind is not None


class SweepSummary(BaseModel):
    """The summary record of one sweep, as stored."""

    sweep_id: str
    status: str  # running | complete
    started_at: str
    finished_at: str | None = None
    accounts: list[str]
    regions: list[str]
    skipped_accounts: list[dict[str, str]] = Field(default_factory=list)
    units_total: int
    units_done: int = 0
    units_failed: int = 0
    endpoints_seen: int = 0
    #: rule id → status → evaluations
    findings_by_rule: dict[str, dict[str, int]] = Field(default_factory=dict)
    #: status → evaluations (every rule)
    statuses: dict[str, int] = Field(default_factory=dict)
    failures_by_kind: dict[str, int] = Field(default_factory=dict)
    #: The first MAX_SUMMARY_FAILURES failed units: account, region, kind, reason.
    failures: list[dict[str, str]] = Field(default_factory=list)

    @classmethod
    def from_items(cls, item: Mapping[str, Any], plan: Mapping[str, Any] | None,
                   counts: Iterable[Mapping[str, Any]] = ()) -> SweepSummary:
        """From the SUMMARY item, the PLAN item (None: the summary without the account lists) and the
        COUNTS items (none: the counters are on the SUMMARY item, as sweeps before counter shards kept them)."""
        shards = list(counts)
        if shards:
            item = {**item, **_add_counters(shards)}
        findings: dict[str, dict[str, int]] = {}
        for key, n in (item.get("findings") or {}).items():
            rule, _, status = key.rpartition("/")
            findings.setdefault(rule, {})[status] = int(n)
        plan = plan or {}
        return cls(
            sweep_id=item["sweep_id"], status=item["status"], started_at=item["started_at"],
            finished_at=item.get("finished_at"), accounts=list(plan.get("accounts") or []),
            regions=list(item.get("regions") or []), skipped_accounts=list(plan.get("skipped_accounts") or []),
            units_total=int(item["units_total"]), units_done=int(item["units_done"]),
            units_failed=int(item["units_failed"]), endpoints_seen=int(item["endpoints_seen"]),
            findings_by_rule=findings, statuses={k: int(v) for k, v in (item.get("statuses") or {}).items()},
            failures_by_kind={k: int(v) for k, v in (item.get("failures_by_kind") or {}).items()},
            failures=[dict(f) for f in item.get("failures") or []],
        )


_COUNTERS = ("units_done", "units_failed", "endpoints_seen")
_COUNTER_MAPS = ("findings", "statuses", "failures_by_kind")


def _add_counters(shards: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The counters of several COUNTS items, added up."""
    out: dict[str, Any] = {k: 0 for k in _COUNTERS} | {k: Counter() for k in _COUNTER_MAPS}
    for shard in shards:
        for k in _COUNTERS:
            out[k] += int(shard.get(k, 0))
        for k in _COUNTER_MAPS:
            out[k].update({key: int(n) for key, n in (shard.get(k) or {}).items()})
    return {k: dict(v) if isinstance(v, Counter) else v for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------------
# Planning: accounts and regions
# ---------------------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def new_sweep_id(now: datetime) -> str:
    """Sortable by start time, unique across concurrent or retried starts."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def list_accounts(organizations: Any, skip: Iterable[str] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """Active accounts of the organization (every ListAccounts page), and those left out with why."""
    skip = set(skip)
    active: list[str] = []
    skipped: list[dict[str, str]] = []
    for page in organizations.get_paginator("list_accounts").paginate():
        for acct in page.get("Accounts", []):
            account_id = acct["Id"]
            # `State` replaces the deprecated `Status` (ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED, …).
            state = str(acct.get("State") or acct.get("Status") or "").upper()
            if state != "ACTIVE":
                skipped.append({"account": account_id, "reason": f"account is {state.lower() or 'unknown'}"})
            elif account_id in skip:
                skipped.append({"account": account_id, "reason": "in the skip list (SWEEP_SKIP_ACCOUNTS)"})
            else:
                active.append(account_id)
    return sorted(set(active)), sorted(skipped, key=lambda s: s["account"])


def enabled_regions(ctx: aws.AwsContext) -> frozenset[str]:
    """Regions this account can use, from its own point of view (ec2:DescribeRegions through its role).

    Why DescribeRegions and not account:ListRegions: it needs nothing beyond the spoke role (ListRegions for
    another account must run in the management account with trusted access for Account Management), it
    answers for the account the role is in, and the opt-in status tells enabled from not enabled. Asked in
    the hub's region, which every account has, so a disabled region is never called to find out.
    """
    def partition_of(region: str) -> str | None:
        try:
            return ctx.session.get_partition_for_region(region)
        except BotoCoreError:  # a name no partition pattern knows: keep it rather than miss a region
            return None

    home = partition_of(ctx.region)
    regions = ctx.client("ec2").describe_regions(AllRegions=True)["Regions"]
    # AWS lists only its own partition's regions; the partition check (by region-name pattern, so regions
    # launched after this botocore still count) keeps an emulator's extra partitions out.
    return frozenset(
        r["RegionName"] for r in regions
        if r.get("OptInStatus", "opt-in-not-required") in ENABLED_OPT_IN
        and partition_of(r["RegionName"]) in (home, None)
    )


def plan_sweep(rt: pipeline.Runtime, settings: SweepSettings, *, now: datetime | None = None) -> SweepPlan:
    now = now or _now()
    home = rt.factory.home()
    accounts, skipped = list_accounts(home.client("organizations"), settings.skip_accounts)
    regions = list(settings.regions) or sorted(enabled_regions(home))
    return SweepPlan(sweep_id=new_sweep_id(now), started_at=ledger.stamp(now), accounts=accounts, regions=regions,
                     skipped_accounts=skipped)


# ---------------------------------------------------------------------------------------------------------
# Running one unit
# ---------------------------------------------------------------------------------------------------------


class UnitRunner:
    """Runs units; remembers per account (for its own lifetime: one worker invocation or one in-process
    sweep) which regions are enabled, or why the account cannot be reached, so a batch of several regions
    of one account asks once."""

    def __init__(self, rt: pipeline.Runtime) -> None:
        self.rt = rt
        self._regions: dict[str, frozenset[str] | tuple[str, str]] = {}

    def _account_regions(self, account: str, *, last_attempt: bool) -> frozenset[str] | tuple[str, str]:
        if account not in self._regions:
            try:
                self._regions[account] = enabled_regions(self.rt.factory.context(account, self.rt.factory.home_region))
            except aws.AccountUnreachable as exc:
                self._regions[account] = (FailureKind.ACCOUNT_UNREACHABLE, str(exc))
            except (ClientError, BotoCoreError) as exc:
                if aws.is_transient(exc):
                    self.rt.factory.forget(account)  # the next attempt starts from fresh credentials
                    if not last_attempt:
                        raise RetryUnit(f"{account}: {exc}") from exc
                    return (FailureKind.READ_FAILED, f"cannot list the account's regions: {exc}")
                if aws.is_assume_role_failure(exc):
                    self._regions[account] = (
                        FailureKind.ROLE_UNAVAILABLE,
                        f"cannot assume {self.rt.factory.spoke_role_arn(account)}: {exc}")
                else:
                    self._regions[account] = (FailureKind.READ_FAILED, f"cannot list the account's regions: {exc}")
        return self._regions[account]

    def run(self, unit: SweepUnit, *, last_attempt: bool = True) -> UnitResult:
        """Sweep one unit. Raises `RetryUnit` on a transient failure unless this is the last attempt, where
        the failure is recorded like any other."""
        trigger = Trigger(source="sweep", event_id=unit.sweep_id, event_name=SWEEP_TRIGGER_NAME,
                          event_time=unit.started_at)
        regions = self._account_regions(unit.account, last_attempt=last_attempt)
        failure: tuple[str, str] | None = None
        if isinstance(regions, tuple):
            failure = regions
        elif unit.region not in regions:
            failure = (FailureKind.REGION_NOT_ENABLED, f"region {unit.region} is not enabled in account {unit.account}")
        if failure is not None:
            kind, reason = failure
            logger.warning(f"sweep unit failed: {reason}", extra={"account": unit.account, "region": unit.region,
                                                                  "sweep_id": unit.sweep_id, "failure": kind})
            record = ledger.intake_record(trigger, account=unit.account, region=unit.region, status=Status.FAILED,
                                          reason=reason, ttl_days=self.rt.settings.ledger_ttl_days)
            written = self.rt.ledger.write([record]).items
            return UnitResult(unit=unit, failure_kind=kind, reason=reason[:2000], ledger_items=written)

        result = pipeline.run_targets(self.rt, Targets(account=unit.account, region=unit.region, everything=True),
                                      trigger)
        if result.retryable and not last_attempt:  # recorded by run_targets; the retry re-reads and finishes
            raise RetryUnit(f"{unit.account}/{unit.region}: {result.reason or 'a fix failed transiently'}")
        findings = Counter((o.finding.rule_id, o.status.value) for o in result.outcomes)
        out = UnitResult(unit=unit, endpoints_seen=result.seen.get("endpoints", 0), findings=dict(findings),
                         ledger_items=result.ledger_items, digest=result.digest)
        if result.disposition == "failed":
            kind = FailureKind.ROLE_UNAVAILABLE if "AssumeRole" in result.reason else FailureKind.READ_FAILED
            out = out.model_copy(update={"failure_kind": kind, "reason": result.reason[:2000]})
        return out


# ---------------------------------------------------------------------------------------------------------
# Accounting in the ledger table
# ---------------------------------------------------------------------------------------------------------


class UnknownSweep(Exception):
    """A unit names a sweep with no summary record (never started, or expired)."""


def _pk(sweep_id: str) -> str:
    return f"SWEEP#{sweep_id}"


def _counts_sk(shard: int) -> str:
    return f"COUNTS#{shard:02d}"


def _ddb(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


class SweepRecords:
    """The sweep's items in the ledger table (a boto3 Table resource)."""

    def __init__(self, table: Any, ttl_days: int) -> None:
        self.table = table
        self.ttl_days = ttl_days

    def _expires(self, now: datetime) -> int:
        return ledger.expires_at(now, self.ttl_days)

    def start(self, plan: SweepPlan, *, now: datetime | None = None) -> None:
        now = now or _now()
        units = len(plan.accounts) * len(plan.regions)
        self.table.put_item(Item=_ddb({
            "pk": _pk(plan.sweep_id), "sk": "PLAN", "record_type": "sweep_plan", "sweep_id": plan.sweep_id,
            "started_at": plan.started_at, "accounts": plan.accounts, "regions": plan.regions,
            "skipped_accounts": plan.skipped_accounts, "expires_at": self._expires(now),
        }), ConditionExpression="attribute_not_exists(pk)")
        shards = counter_shards(units)
        with self.table.batch_writer() as batch:  # the counters first: a unit is counted on its shard
            for k in range(shards):
                batch.put_item(Item=_ddb({
                    "pk": _pk(plan.sweep_id), "sk": _counts_sk(k), "record_type": "sweep_counts",
                    "sweep_id": plan.sweep_id, "units_done": 0, "units_failed": 0, "endpoints_seen": 0,
                    "findings": {}, "statuses": {}, "failures_by_kind": {}, "expires_at": self._expires(now)}))
        item = {
            "pk": _pk(plan.sweep_id), "sk": "SUMMARY", "record_type": "sweep_summary",
            "sweep_id": plan.sweep_id, "status": "running" if units else "complete",
            "started_at": plan.started_at, "regions": plan.regions, "accounts_total": len(plan.accounts),
            "units_total": units, "counter_shards": shards,
            "failures": [], "gsi1pk": "SWEEPS", "gsi1sk": f"{plan.started_at}#{plan.sweep_id}",
            "expires_at": self._expires(now),
        }
        if not units:
            item["finished_at"] = plan.started_at
        self.table.put_item(Item=_ddb(item), ConditionExpression="attribute_not_exists(pk)")

    def record_unit(self, result: UnitResult, *, now: datetime | None = None) -> bool:
        """Count the unit in its sweep, once: False when it was already counted (a redelivered message)."""
        now = now or _now()
        u = result.unit
        statuses: Counter[str] = Counter()
        for (_, status), n in result.findings.items():
            statuses[status] += n
        unit_item = {
            "pk": _pk(u.sweep_id), "sk": f"UNIT#{u.account}#{u.region}", "record_type": "sweep_unit",
            "sweep_id": u.sweep_id, "account": u.account, "region": u.region,
            "outcome": "failed" if result.failed else "ok", "failure_kind": result.failure_kind,
            "reason": result.reason, "endpoints_seen": result.endpoints_seen,
            "findings": {f"{rule}/{status}": n for (rule, status), n in sorted(result.findings.items())},
            "ledger_items": result.ledger_items, "digest": result.digest, "time": ledger.stamp(now),
            "expires_at": self._expires(now),
        }
        names: dict[str, str] = {}
        values: dict[str, Any] = {":one": 1, ":zero": 0, ":failed": 1 if result.failed else 0,
                                  ":endpoints": result.endpoints_seen}
        sets = ["units_done = units_done + :one", "units_failed = units_failed + :failed",
                "endpoints_seen = endpoints_seen + :endpoints"]

        def add(map_name: str, key: str, n: int) -> None:
            i = len(names)
            names[f"#k{i}"] = key
            values[f":n{i}"] = n
            sets.append(f"{map_name}.#k{i} = if_not_exists({map_name}.#k{i}, :zero) + :n{i}")

        for (rule, status), n in sorted(result.findings.items()):
            add("findings", f"{rule}/{status}", n)
        for status, n in sorted(statuses.items()):
            add("statuses", status, n)
        if result.failure_kind:
            add("failures_by_kind", result.failure_kind, 1)
        update: dict[str, Any] = {
            "TableName": self.table.name, "Key": {"pk": _pk(u.sweep_id), "sk": _counts_sk(u.counter_shard)},
            "UpdateExpression": "SET " + ", ".join(sets), "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        items = [{"Put": {"TableName": self.table.name, "Item": _ddb({k: v for k, v in unit_item.items()
                                                                       if v is not None}),
                          "ConditionExpression": "attribute_not_exists(pk)"}},
                 {"Update": update}]
        for attempt in range(COUNT_CONFLICT_ROUNDS + 1):
            try:
                self.table.meta.client.transact_write_items(TransactItems=items)
                break
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "TransactionConflict" in reasons and attempt < COUNT_CONFLICT_ROUNDS:
                    # Another worker is counting on the same shard: go again after a short random pause.
                    time.sleep(random.uniform(0, 0.05 * 2 ** attempt))
                    continue
                self._cancelled(u, reasons, exc)
                return False
        if result.failed:
            self._append_failure(u, result)
        return True

    def _cancelled(self, u: SweepUnit, reasons: list[str | None], exc: ClientError) -> None:
        """A counting transaction DynamoDB cancelled for good: the unit was counted already (logged, and
        the caller returns False), or an error (raised)."""
        if reasons[:1] == ["ConditionalCheckFailed"]:
            logger.info("sweep unit already counted", extra={"sweep_id": u.sweep_id, "account": u.account,
                                                             "region": u.region})
            return
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            raise UnknownSweep(f"sweep {u.sweep_id} has no summary record") from exc
        raise exc

    def _append_failure(self, u: SweepUnit, result: UnitResult) -> None:
        """Best effort: the first MAX_SUMMARY_FAILURES failures in the summary (each is on its unit item)."""
        failure = {"account": u.account, "region": u.region, "kind": result.failure_kind or "",
                   "reason": result.reason[:300]}
        try:
            self.table.update_item(
                Key={"pk": _pk(u.sweep_id), "sk": "SUMMARY"},
                UpdateExpression="SET failures = list_append(failures, :f)",
                ConditionExpression="size(failures) < :cap",
                ExpressionAttributeValues={":f": [failure], ":cap": MAX_SUMMARY_FAILURES})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _item(self, sweep_id: str, sk: str) -> dict[str, Any] | None:
        return self.table.get_item(Key={"pk": _pk(sweep_id), "sk": sk}, ConsistentRead=True).get("Item")

    def _items(self, sweep_id: str, prefix: str, **kwargs: Any) -> list[dict[str, Any]]:
        """The sweep's items whose sort key starts with `prefix` (one Query, every page)."""
        from boto3.dynamodb.conditions import Key

        kwargs["KeyConditionExpression"] = Key("pk").eq(_pk(sweep_id)) & Key("sk").begins_with(prefix)
        out: list[dict[str, Any]] = []
        while True:
            resp = self.table.query(**kwargs)
            out += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def counts(self, sweep_id: str) -> list[dict[str, Any]]:
        """The sweep's COUNTS items (consistent: a unit just counted is in them)."""
        return self._items(sweep_id, "COUNTS#", ConsistentRead=True)

    def get(self, sweep_id: str) -> SweepSummary | None:
        item = self._item(sweep_id, "SUMMARY")
        if not item:
            return None
        return SweepSummary.from_items(item, self._item(sweep_id, "PLAN"), self.counts(sweep_id))

    def units(self, sweep_id: str) -> list[dict[str, Any]]:
        return self._items(sweep_id, "UNIT#")

    def finish_if_done(self, sweep_id: str, *, now: datetime | None = None) -> SweepSummary | None:
        """Mark the sweep complete when every unit is counted; returns the summary to the one caller that did."""
        item = self._item(sweep_id, "SUMMARY")
        if item is None or item["status"] != "running":
            return None
        counts = self.counts(sweep_id)
        if sum(int(c.get("units_done", 0)) for c in counts) < int(item["units_total"]):
            return None
        finished = ledger.stamp(now or _now())
        try:
            self.table.update_item(
                Key={"pk": _pk(sweep_id), "sk": "SUMMARY"},
                UpdateExpression="SET #s = :complete, finished_at = :t",
                ConditionExpression="#s = :running",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":complete": "complete", ":running": "running", ":t": finished})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        current = SweepSummary.from_items(item, self._item(sweep_id, "PLAN"), counts)
        summary = current.model_copy(update={"status": "complete", "finished_at": finished})
        logger.info("sweep complete", extra={"sweep": summary.model_dump(exclude={"accounts", "failures"})})
        return summary

    def latest(self, limit: int = 10) -> list[SweepSummary]:
        """The newest sweeps, without a scan (the by-status index, partition SWEEPS)."""
        from boto3.dynamodb.conditions import Key

        resp = self.table.query(IndexName=ledger.STATUS_INDEX, KeyConditionExpression=Key("gsi1pk").eq("SWEEPS"),
                                ScanIndexForward=False, Limit=limit)
        return [SweepSummary.from_items(i, self._item(i["sweep_id"], "PLAN"), self.counts(i["sweep_id"]))
                for i in resp.get("Items", [])]


def records(rt: pipeline.Runtime) -> SweepRecords:
    return SweepRecords(rt.ledger.table, rt.settings.ledger_ttl_days)


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------


def enqueue(sqs: Any, queue_url: str, units: Sequence[SweepUnit]) -> int:
    """SendMessageBatch, ten at a time; entries SQS refuses are sent again once, then it is an error."""
    sent = 0
    for start in range(0, len(units), 10):
        batch = {str(i): u.model_dump_json() for i, u in enumerate(units[start:start + 10])}
        for _attempt in range(3):
            resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": i, "MessageBody": body} for i, body in batch.items()])
            sent += len(resp.get("Successful", []))
            failed = {f["Id"] for f in resp.get("Failed", [])}
            batch = {i: body for i, body in batch.items() if i in failed}
            if not batch:
                break
        if batch:
            raise RuntimeError(f"SQS refused {len(batch)} sweep units three times: {resp.get('Failed')}")
    return sent


def start_sweep(rt: pipeline.Runtime, settings: SweepSettings, *, now: datetime | None = None) -> SweepPlan:
    """SweepFunction: decide the units, write the summary record, queue one message per unit."""
    if not settings.queue_url:
        from .config import ConfigError

        raise ConfigError("invalid vpce-guard configuration: SWEEP_QUEUE_URL is empty")
    plan = plan_sweep(rt, settings, now=now)
    records(rt).start(plan, now=now)
    sqs = rt.factory.home().client("sqs")
    sent = enqueue(sqs, settings.queue_url, plan.units())
    logger.info("sweep started", extra={"sweep": plan.brief(), "queued": sent})
    return plan


class Worker:
    """SweepWorkerFunction's logic for one invocation: parse a message, run the unit, count it."""

    def __init__(self, rt: pipeline.Runtime, *, millis_left: Callable[[], int] | None = None) -> None:
        self.rt = rt
        self.runner = UnitRunner(rt)
        self.records = records(rt)
        self.millis_left = millis_left

    def process(self, body: str, *, receive_count: int = 1) -> SweepSummary | None:
        """Raises on a malformed message, or on a transient failure before the last delivery (the message is
        retried; a malformed one ends in the dead-letter queue); returns the summary when this unit
        completed its sweep."""
        try:
            unit = SweepUnit.model_validate_json(body)
        except ValidationError as exc:
            raise ValueError(f"not a sweep unit: {exc.errors(include_input=False)}") from None
        if self.millis_left is not None and self.millis_left() < MIN_MILLIS_PER_UNIT:
            raise TimeoutError(f"{unit.account}/{unit.region}: too little time left, left for a later delivery")
        return process_unit(self.runner, self.records, unit, last_attempt=receive_count >= MAX_RECEIVES)


def process_unit(runner: UnitRunner, recs: SweepRecords, unit: SweepUnit, *,
                 last_attempt: bool = True) -> SweepSummary | None:
    result = runner.run(unit, last_attempt=last_attempt)
    if recs.record_unit(result):
        summary = recs.finish_if_done(unit.sweep_id)
        if summary is not None:  # the one worker that completed the sweep tells the notification topic
            runner.rt.publisher.notify_sweep(summary)
        return summary
    return None


def run_sweep(rt: pipeline.Runtime, settings: SweepSettings | None = None, *,
              now: datetime | None = None) -> SweepSummary:
    """The whole sweep in this process (demo, benchmarks, tests, an operator's one-off): the same planning,
    unit runs and ledger accounting as the Lambda fan-out, units run one after another."""
    settings = settings or SweepSettings()
    plan = plan_sweep(rt, settings, now=now)
    recs = records(rt)
    recs.start(plan, now=now)
    runner = UnitRunner(rt)
    for unit in plan.units():
        for attempt in range(1, MAX_RECEIVES + 1):  # as SQS would redeliver it, without the wait
            try:
                process_unit(runner, recs, unit, last_attempt=attempt == MAX_RECEIVES)
                break
            except RetryUnit as exc:
                logger.warning(f"sweep unit will be retried: {exc}", extra={"attempt": attempt})
    summary = recs.get(plan.sweep_id)
    assert summary is not None  # written by start() above
    return summary
