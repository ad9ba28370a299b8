"""One sweep unit (an account-region), from the calls the real worker made, timed on moto or on AWS.

A `UnitProfile` is what calibration recorded: the unit's calls in order, grouped into stages (calls that
overlapped ran side by side, `aws.side_by_side`), each call's response size, and the time the worker spent
outside calls (rules, records: its own CPU). From it:

- `moto_seconds`: the wall time the same calls take on a moto server, whose per-request cost grows with the
  answer and which serves one request at a time (shared/docs/moto-notes.md), plus the time outside calls.
  Fitted on some units and used to predict others: the calibration check.
- `aws_run`: the time on AWS from a Lambda function: a latency per API family, EC2's per-API token buckets
  (what the account's other tools leave), botocore's retries (its backoff formula and its adaptive rate
  limiter, driven by botocore's own CUBIC classes on a simulated clock), and the time outside calls scaled
  by the function's CPU share.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.retries import bucket as botocore_bucket
from botocore.retries import throttling as botocore_throttling
from botocore.retries.adaptive import RateClocker

from . import facts


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    kb: float

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class Stage:
    calls: list[Call]
    parallel: int
    #: Observed wall time of the stage on moto (for fitting).
    seconds: float = 0.0


@dataclass
class UnitProfile:
    name: str
    endpoints: int
    vpcs: int
    evaluations: int
    stages: list[Stage]
    #: Wall seconds of the unit on moto, and of it outside any call (the worker's own work).
    seconds: float
    gap_seconds: float
    cpu_seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    #: Items in the ledger table when the unit began, and when it ended (moto copies the table for every
    #: TransactWriteItems: a first sweep's transactions see it grow from the one to the other).
    table_items: int = 0
    table_items_after: int | None = None

    @property
    def table_items_during(self) -> float:
        """The table a call of the unit met, on average (it grows about evenly while the unit writes)."""
        after = self.table_items if self.table_items_after is None else self.table_items_after
        return (self.table_items + after) / 2

    @property
    def calls(self) -> Counter[str]:
        return Counter(c.name for s in self.stages for c in s.calls)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> UnitProfile:
        stages = [Stage([Call(**c) for c in s["calls"]], s["parallel"], s.get("seconds", 0.0)) for s in d["stages"]]
        return cls(**{**d, "stages": stages})

    def without(self, *operations: str) -> UnitProfile:
        """The profile less some calls (those the fleet model accounts for itself)."""
        stages = [Stage([c for c in s.calls if c.name not in operations], s.parallel, s.seconds)
                  for s in self.stages]
        return UnitProfile(**{**asdict(self), "stages": [s for s in stages if s.calls]})


def stages_from_spans(spans: Sequence[tuple[str, str, float, float, int]], max_parallel: int) -> list[Stage]:
    """Calls that overlap in time form one stage (they were sent side by side); the rest are one each."""
    ordered = sorted(spans, key=lambda s: s[2])
    stages: list[Stage] = []
    reach = float("-inf")
    group: list[tuple[str, str, float, float, int]] = []

    def close() -> None:
        if not group:
            return
        points = sorted([(s[2], 1) for s in group] + [(s[3], -1) for s in group])
        level = peak = 0
        for _, step in points:
            level += step
            peak = max(peak, level)
        stages.append(Stage([Call(s[0], s[1], round(s[4] / 1024, 3)) for s in group],
                            max(1, min(peak, max_parallel)),
                            round(max(s[3] for s in group) - min(s[2] for s in group), 6)))

    for span in ordered:
        if span[2] >= reach:
            close()
            group = []
        group.append(span)
        reach = max(reach, span[3])
    close()
    return stages


# ------------------------------------------------------------------------------------------------ moto
@dataclass
class MotoCost:
    """A moto server's cost per request: `base[op] + per_kb[op] x KB` (one request at a time), and the
    worker's own time outside calls: `gap0 + gap1 x evaluations`."""

    base: dict[str, float]
    per_kb: dict[str, float]
    default: tuple[float, float]
    gap: tuple[float, float]

    def call(self, c: Call, table_items: float = 0) -> float:
        return self.base.get(c.name, self.default[0]) + self.per_kb.get(c.name, self.default[1]) * _size(c, table_items)


#: Calls whose cost on moto grows with the table, not with the answer: moto copies the whole table for every
#: TransactWriteItems (to roll a cancelled one back). A Query's cost grows with its answer like the other calls
#: (measured: the open-index Query of a 1,300-item table answered 0.04 KB in 4 ms, 817 KB in 1.1 s; moto's
#: response serializer costs about 0.1 ms per attribute value returned).
SCANS_TABLE = frozenset({"dynamodb:TransactWriteItems"})


def _size(c: Call, table_items: float) -> float:
    """The size a call's moto cost grows with: its answer in KB, or the table in thousands of items."""
    return table_items / 1000 if c.name in SCANS_TABLE else c.kb


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares intercept and slope, neither below zero (slope 0 when x does not vary).

    The constraint is part of the fit: where the free line would cross below zero, the best line with a zero
    intercept is the one through the origin (slope = sum(xy) / sum(x^2)), not the free line's slope with its
    intercept cut off, which overstates every prediction when the sizes hardly vary (DescribeVpcAttribute's
    answers are all about 0.27 KB)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = max(0.0, sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var) if var > 1e-12 else 0.0
    intercept = my - slope * mx
    if intercept >= 0:
        return intercept, slope
    squares = sum(x * x for x in xs)
    return 0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / squares if squares else 0.0


def fit_moto(profiles: Sequence[UnitProfile]) -> MotoCost:
    """Per operation, each call's share of its stage's time (moto serves a stage's calls one at a time)
    against its answer's size; and the time outside calls against the evaluations."""
    points: dict[str, list[tuple[float, float]]] = {}
    for p in profiles:
        for s in p.stages:
            sizes = [_size(c, p.table_items_during) for c in s.calls]
            total = sum(sizes) or 1.0
            for c, size in zip(s.calls, sizes, strict=True):
                share = s.seconds * ((size / total) * 0.5 + 0.5 / len(s.calls))
                points.setdefault(c.name, []).append((size, share))
    base, per_kb = {}, {}
    for op, pts in points.items():
        base[op], per_kb[op] = _line([x for x, _ in pts], [y for _, y in pts])
    every = [pt for pts in points.values() for pt in pts]
    default = _line([x for x, _ in every], [y for _, y in every])
    gap = _line([float(p.evaluations) for p in profiles], [p.gap_seconds for p in profiles])
    return MotoCost(base, per_kb, default, gap)


def moto_seconds(profile: UnitProfile, cost: MotoCost) -> float:
    """Predicted wall time of the unit on a moto server."""
    calls = sum(cost.call(c, profile.table_items_during) for s in profile.stages for c in s.calls)
    return calls + cost.gap[0] + cost.gap[1] * profile.evaluations


# ------------------------------------------------------------------------------------------------ AWS
class _SimClock:
    """botocore's Clock interface on simulated time (the adaptive limiter's classes read it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def current_time(self) -> float:
        return self.now

    def sleep(self, amount: float) -> None:  # never called: acquire is used without blocking
        self.now += amount


class AdaptiveLimiter:
    """botocore's adaptive client rate limiter (botocore.retries.adaptive.ClientRateLimiter's decisions,
    with its CubicCalculator, RateClocker and TokenBucket) on a simulated clock."""

    def __init__(self) -> None:
        self.clock = _SimClock()
        self.cubic = botocore_throttling.CubicCalculator(starting_max_rate=0, start_time=0.0)
        self.bucket = botocore_bucket.TokenBucket(max_rate=1, clock=self.clock)
        self.rates = RateClocker(self.clock)
        self.enabled = False

    def ready_at(self, t: float) -> float:
        """When a request wanting to leave at `t` may leave."""
        if not self.enabled:
            return t
        self.clock.now = t
        while True:
            try:
                self.bucket.acquire(block=False)
                return self.clock.now
            except botocore_bucket.CapacityNotAvailableError:
                self.clock.now += max(0.001, (1 - self.bucket.available_capacity) / max(self.bucket.max_rate, 0.5))

    def response(self, t: float, throttled: bool) -> None:
        self.clock.now = max(self.clock.now, t)
        measured = self.rates.record()
        if not throttled:
            new_rate = self.cubic.success_received(self.clock.now)
        else:
            rate = measured if not self.enabled else min(measured, self.bucket.max_rate)
            new_rate = self.cubic.error_received(rate, self.clock.now)
            self.enabled = True
        self.bucket.max_rate = min(new_rate, 2.0 * measured)


@dataclass
class ServerBucket:
    """An EC2 (or Security Hub) token bucket as the service keeps it, less what other callers take."""

    spec: facts.Bucket
    share: float
    tokens: float = -1.0
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.spec.capacity * self.share

    def take(self, t: float) -> bool:
        cap = self.spec.capacity * self.share
        # Requests may be simulated out of time order (two invocations of one account): no refill backwards.
        self.tokens = min(cap, self.tokens + max(0.0, t - self.at) * self.spec.refill * self.share)
        self.at = max(self.at, t)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class AwsRun:
    seconds: float
    cpu_seconds: float
    calls: int
    attempts: int
    throttled: int
    failed_calls: int
    #: Peak EC2 requests in any one second, per API, as sent (throttled attempts included).
    peak_rate: dict[str, int]

    @property
    def failed(self) -> bool:
        return self.failed_calls > 0


@dataclass
class AwsConditions:
    latency_scale: float = 1.0
    bucket_share: float = 0.5
    memory_mb: int = 512
    #: Client-side CPU per call (botocore building and parsing), seconds on the calibrating machine.
    cpu_per_call: float = 0.002


def _latency(rng: random.Random, c: Call, cond: AwsConditions) -> float:
    lat = facts.LATENCY[facts.latency_family(c.service, c.operation)]
    scale = cond.latency_scale if c.service == "ec2" else 1.0
    return rng.lognormvariate(math.log(lat.median * scale), lat.sigma) + lat.per_kb * c.kb


def aws_run(profile: UnitProfile, cond: AwsConditions, rng: random.Random,
            buckets: dict[str, ServerBucket] | None = None, start: float = 0.0) -> AwsRun:
    """The unit on AWS, from a Lambda function of `cond.memory_mb`: stages in order, each stage's calls
    `parallel` at a time; EC2 calls take a token from their API's bucket (others' share removed) or are
    throttled and retried as botocore does; CPU (outside calls, and per call) runs at the function's share."""
    cpu_factor = facts.FULL_VCPU_MB / cond.memory_mb
    buckets = {} if buckets is None else buckets
    limiter = AdaptiveLimiter()
    t = start
    attempts = throttled = failed = calls = 0
    sent: Counter[tuple[str, int]] = Counter()
    cpu_calls = 0.0
    for stage in profile.stages:
        workers = [(t, i) for i in range(min(stage.parallel, len(stage.calls)))]
        heapq.heapify(workers)
        for c in stage.calls:
            free, w = heapq.heappop(workers)
            now = free + cond.cpu_per_call * cpu_factor
            cpu_calls += cond.cpu_per_call
            calls += 1
            retry = 0
            while True:
                if c.service == "ec2":
                    now = limiter.ready_at(now)
                attempts += 1
                ok = True
                if c.service == "ec2":
                    sent[(c.operation, int(now))] += 1
                    b = buckets.setdefault(c.operation, ServerBucket(facts.ec2_bucket(c.operation), cond.bucket_share))
                    ok = b.take(now)
                now += _latency(rng, c, cond) if ok else _latency(rng, c, cond) * 0.3
                if c.service == "ec2":
                    limiter.response(now, throttled=not ok)
                if ok:
                    break
                throttled += 1
                retry += 1
                if retry >= facts.MAX_ATTEMPTS:
                    failed += 1
                    break
                now += rng.random() * facts.backoff_bound(retry)
            heapq.heappush(workers, (now, w))
        t = max(when for when, _ in workers)
    gap = profile.gap_seconds * cpu_factor
    peaks: dict[str, int] = {}
    for (op, _), n in sent.items():
        peaks[op] = max(peaks.get(op, 0), n)
    return AwsRun(seconds=t - start + gap, cpu_seconds=profile.gap_seconds + cpu_calls, calls=calls,
                  attempts=attempts, throttled=throttled, failed_calls=failed, peak_rate=peaks)


def attempts_for(consecutive_throttles: int) -> tuple[int, bool]:
    """How botocore (as the model assumes it) answers a call throttled `n` times in a row: attempts made,
    and whether the call failed."""
    attempts = min(consecutive_throttles + 1, facts.MAX_ATTEMPTS)
    return attempts, consecutive_throttles >= facts.MAX_ATTEMPTS
