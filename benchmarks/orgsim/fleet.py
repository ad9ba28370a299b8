"""A whole sweep of an organization, simulated: from the schedule to the last unit counted.

What is modelled, in order (facts.py has the sources):
1. SweepFunction lists the accounts (ListAccounts, 20 a page) and queues the units, ten per SendMessageBatch,
   account by account, so a message becomes visible as its batch is sent.
2. The SQS event source polls with 5 concurrent batches at first and adds up to 300 a minute while messages
   wait, up to the worker's MaximumConcurrency; each poll takes up to BatchSize messages.
3. A worker instance that is new pays its cold start (init, billed). Per invocation it asks each account of
   its batch for its Regions (ec2:DescribeRegions, in the hub's Region); an instance assumes an account's
   spoke role once (sts:AssumeRole) and keeps the credentials.
4. Each unit runs its calibrated profile against AWS (unit.aws_run): latencies, EC2's per-API buckets of
   that account-region, botocore's retries and adaptive rate limiter.
5. Each unit is counted in the sweep's summary item by a transaction; transactions on the same item at the
   same time conflict, and the worker retries them (sweep.COUNT_CONFLICT_ROUNDS); units hash over counter shards.
Units of one account-region never run at the same time, so their buckets are their own; DescribeRegions
shares the hub Region's bucket of the account.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import devkit  # noqa: F401  (puts the layer on sys.path)
from vpce_guard.sweep import COUNT_CONFLICT_ROUNDS, counter_shards

from . import facts
from .unit import AwsConditions, ServerBucket, UnitProfile, aws_run

REGIONS = 17
#: (share of accounts, unit types of its Regions besides the empty ones)
MIX: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.80, ("small",)),
    (0.15, ("medium", "small", "small")),
    (0.05, ("large", "medium", "small", "small")),
)
#: Calls the fleet model accounts for itself, outside the unit profiles. A calibration sweep has one unit, so its
#: worker also completes the sweep: the summary's notification (sns:Publish) is made once per sweep, not per unit.
FLEET_CALLS = ("ec2:DescribeRegions", "sts:AssumeRole", "sts:GetCallerIdentity", "dynamodb:TransactWriteItems",
               "dynamodb:GetItem", "ssm:GetParameter", "organizations:DescribeOrganization",
               "ec2:DescribeVpcEndpointServices", "ec2:DescribePrefixLists", "sns:Publish")
INVOKE_OVERHEAD = 0.010


@dataclass(frozen=True)
class Defaults:
    """The knobs of template.yaml the simulation sets."""

    max_concurrency: int
    batch_size: int
    parallel_calls: int
    memory_mb: int = 512


@dataclass
class SweepResult:
    accounts: int
    units: int
    wall_seconds: float
    queued_seconds: float
    peak_concurrency: int
    invocations: int
    cold_starts: int
    ec2_calls: int
    ec2_attempts: int
    throttled: int
    failed_units: int
    conflicts: int
    peak_rate_vs_bucket: dict[str, tuple[int, float]]
    gb_seconds: float
    dynamodb_wru: float
    dynamodb_rru: float
    peak_dynamodb_wru_per_s: float
    sqs_requests: int
    cost_usd: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def unit_types(accounts: int, rng: random.Random) -> list[list[str]]:
    """Per account, the unit type of each of its REGIONS Regions."""
    out = []
    for _ in range(accounts):
        x, acc = rng.random(), 0.0
        chosen = MIX[-1][1]
        for share, busy in MIX:
            acc += share
            if x <= acc:
                chosen = busy
                break
        out.append(list(chosen) + ["empty"] * (REGIONS - len(chosen)))
    return out


def _kb_units(kb: float) -> float:
    return max(1.0, math.ceil(kb))


def _ddb_units(profile: UnitProfile) -> tuple[float, float]:
    """Write and read request units of a unit's ledger calls (a BatchWriteItem of n items of about 1 KB,
    the by-status index written alongside: 2 units an item; reads: 4 KB per unit, strongly consistent)."""
    wru = rru = 0.0
    for s in profile.stages:
        for c in s.calls:
            if c.name == "dynamodb:BatchWriteItem":
                wru += 25 * 2.0
            elif c.name in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
                wru += 2.0
            elif c.name in ("dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:GetItem"):
                rru += max(1.0, c.kb / 4)
    return wru, rru


def simulate(profiles: dict[str, UnitProfile], accounts: int, defaults: Defaults, *,
             init_seconds: float, seed: int = 7, latency_scale: float = 1.0,
             bucket_share: float = 0.5, events_per_day: int = 1000) -> SweepResult:
    rng = random.Random(seed)
    cond = AwsConditions(latency_scale=latency_scale, bucket_share=bucket_share, memory_mb=defaults.memory_mb)
    profiles = {name: _with_parallel(p.without(*FLEET_CALLS), defaults.parallel_calls)
                for name, p in profiles.items()}
    layout = unit_types(accounts, rng)
    # 1. The sweep function: list accounts, then queue units ten a batch, account-major.
    t = init_seconds + math.ceil(accounts / 20) * facts.LATENCY["organizations"].median
    messages: list[tuple[float, int, int]] = []  # (visible at, account, region index)
    pending: list[tuple[int, int]] = [(a, r) for a in range(accounts) for r in range(REGIONS)]
    sqs_requests = 0
    for i in range(0, len(pending), 10):
        t += facts.LATENCY["sqs"].median
        sqs_requests += 1
        messages += [(t, a, r) for a, r in pending[i:i + 10]]
    queued = t
    # 2-5. Workers.
    slots: list[tuple[float, int]] = [(0.0, k) for k in range(min(defaults.max_concurrency,
                                                                  facts.SQS_START_CONCURRENCY))]
    next_slot = len(slots)
    heapq.heapify(slots)
    instances: list[tuple[float, set[int]]] = []  # (busy until, accounts with credentials)
    head = 0
    invocations = cold = failed = throttled = ec2_calls = ec2_attempts = 0
    gb_seconds = wru = rru = 0.0
    peaks: dict[str, int] = {}
    tx_times: list[float] = []
    wru_by_second: Counter[int] = Counter()
    hub_buckets: dict[int, dict[str, ServerBucket]] = {}
    end = 0.0
    concurrency_peak = 0
    while head < len(messages):
        free_at, slot = heapq.heappop(slots)
        start = max(free_at, messages[head][0])
        # The event source adds pollers while messages wait.
        while next_slot < defaults.max_concurrency and next_slot < facts.SQS_MAX_CONCURRENCY and \
                (next_slot - facts.SQS_START_CONCURRENCY + 1) / facts.SQS_ADDED_PER_SECOND <= start:
            heapq.heappush(slots, ((next_slot - facts.SQS_START_CONCURRENCY + 1) / facts.SQS_ADDED_PER_SECOND,
                                   next_slot))
            next_slot += 1
        batch = []
        while head < len(messages) and len(batch) < defaults.batch_size and messages[head][0] <= start:
            batch.append(messages[head])
            head += 1
        # An idle instance, else a cold start.
        instance = next((i for i, (busy, _) in enumerate(instances) if busy <= start), None)
        now = start + INVOKE_OVERHEAD
        billed = 0.0
        if instance is None:
            instances.append((0.0, set()))
            instance = len(instances) - 1
            cold += 1
            now += init_seconds
            billed += init_seconds
        known = instances[instance][1]
        invocations += 1
        regions_asked: set[int] = set()
        for _, account, region in batch:
            if account not in known:
                now += rng.lognormvariate(math.log(facts.LATENCY["sts"].median), facts.LATENCY["sts"].sigma)
                known.add(account)
            if account not in regions_asked:
                b = hub_buckets.setdefault(account, {}).setdefault(
                    "DescribeRegions", ServerBucket(facts.ec2_bucket("DescribeRegions"), bucket_share))
                while not b.take(now):
                    throttled += 1
                    now += rng.random() * facts.backoff_bound(1)
                now += facts.LATENCY["ec2:read"].median * latency_scale
                regions_asked.add(account)
                ec2_calls += 1
                ec2_attempts += 1
            kind = layout[account][region]
            run = aws_run(profiles[kind], cond, rng, buckets={}, start=now)
            now += run.seconds
            throttled += run.throttled
            ec2_calls += sum(1 for s in profiles[kind].stages for c in s.calls if c.service == "ec2")
            ec2_attempts += run.attempts - sum(1 for s in profiles[kind].stages for c in s.calls
                                               if c.service != "ec2")
            for op, n in run.peak_rate.items():
                peaks[op] = max(peaks.get(op, 0), n)
            w, r = _ddb_units(profiles[kind])
            wru += w + 4.0  # + the summary transaction (2 items, 2 WRU each)
            rru += r + 1.0  # + finish_if_done's consistent GetItem
            wru_by_second[int(now)] += w + 4.0
            tx = rng.lognormvariate(math.log(facts.LATENCY["dynamodb:transact"].median),
                                    facts.LATENCY["dynamodb:transact"].sigma)
            tx_times.append(now)
            now += tx + facts.LATENCY["dynamodb:item"].median
            if run.failed:
                failed += 1
        duration = now - start
        billed += duration - (init_seconds if billed else 0.0)
        gb_seconds += billed * defaults.memory_mb / 1024
        instances[instance] = (now, known)
        concurrency_peak = max(concurrency_peak, next_slot)
        end = max(end, now)
        heapq.heappush(slots, (now, slot))
        sqs_requests += 2  # the event source's ReceiveMessage and DeleteMessageBatch
    conflicts, conflict_failures = _summary_conflicts(sorted(tx_times), rng,
                                                      counter_shards(accounts * REGIONS))
    failed += conflict_failures
    peak_rate = {op: (n, facts.ec2_bucket(op).refill) for op, n in sorted(peaks.items())}
    result = SweepResult(
        accounts=accounts, units=accounts * REGIONS, wall_seconds=round(end, 1), queued_seconds=round(queued, 1),
        peak_concurrency=min(concurrency_peak, defaults.max_concurrency), invocations=invocations, cold_starts=cold,
        ec2_calls=ec2_calls, ec2_attempts=ec2_attempts, throttled=throttled, failed_units=failed,
        conflicts=conflicts, peak_rate_vs_bucket=peak_rate, gb_seconds=round(gb_seconds, 1),
        dynamodb_wru=round(wru), dynamodb_rru=round(rru),
        peak_dynamodb_wru_per_s=round(max(wru_by_second.values(), default=0.0), 1), sqs_requests=sqs_requests)
    result.cost_usd = costs(result, events_per_day=events_per_day)
    return result


def _with_parallel(profile: UnitProfile, parallel: int) -> UnitProfile:
    for s in profile.stages:
        if s.parallel > 1:
            s.parallel = max(1, min(parallel, len(s.calls)))
    return profile


def _summary_conflicts(times: list[float], rng: random.Random, shards: int) -> tuple[int, int]:
    """Counting transactions that meet another on their counter shard (each holds its item for its latency;
    units hash evenly over the shards): how many were cancelled, and how many units still failed after
    the worker's retries (sweep.COUNT_CONFLICT_ROUNDS)."""
    hold = facts.LATENCY["dynamodb:transact"].median
    conflicts = failures = 0
    lo = 0
    for i, t in enumerate(times):
        while times[lo] < t - 10.0:
            lo += 1
        rate = (i - lo + 1) / 10.0 / shards  # transactions per second on one shard around t
        p = 1 - math.exp(-rate * 2 * hold)
        n = 0
        while n <= COUNT_CONFLICT_ROUNDS and rng.random() < p:
            n += 1
        conflicts += n
        failures += n > COUNT_CONFLICT_ROUNDS
    return conflicts, failures


def costs(r: SweepResult, *, events_per_day: int) -> dict[str, float]:
    p = facts.PRICES
    sweep = {
        "lambda": r.gb_seconds * p["lambda_gb_second_arm64"].usd + r.invocations * p["lambda_request"].usd,
        "dynamodb": r.dynamodb_wru * p["dynamodb_wru"].usd + r.dynamodb_rru * p["dynamodb_rru"].usd,
        "sqs": r.sqs_requests * p["sqs_request"].usd,
    }
    per_sweep = sum(sweep.values())
    # Events: 0.35 s at 512 MB each, 10 write units (idempotency claim and result, ledger items).
    events = events_per_day * 30 * (0.35 * 0.5 * p["lambda_gb_second_arm64"].usd + p["lambda_request"].usd
                                    + 10 * p["dynamodb_wru"].usd + 2 * p["dynamodb_rru"].usd)
    # The event source's pollers long-poll all month (about 5 of them, 20 s each).
    idle_polls = 5 * 30 * 86400 / 20 * p["sqs_request"].usd
    return {**{k: round(v, 4) for k, v in sweep.items()}, "per_sweep": round(per_sweep, 4),
            "per_month": round(30 * per_sweep + events + idle_polls, 2)}
