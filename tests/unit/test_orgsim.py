"""The organization-scale model (benchmarks/orgsim) assumes what the real code does.

- Retries: the number of attempts a throttled call gets, when it gives up, and the longest wait before
  each retry are taken from the real worker's sweep under injected throttling (moto, botocore's own retry
  code with aws.RETRY_CONFIG), not from the model's constants.
- The model's arithmetic: token buckets, stages from overlapping calls, the event source's scaling, the
  unit mix, and that a simulated sweep counts every unit once.
No timing is asserted here (the 25% check of the model against moto runs is tests/calibration/, run by
`make bench-org`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from benchmarks.orgsim import facts
from benchmarks.orgsim.fleet import MIX, REGIONS, Defaults, simulate, unit_types
from benchmarks.orgsim.unit import (
    AwsConditions,
    Call,
    ServerBucket,
    Stage,
    UnitProfile,
    _line,
    _size,
    attempts_for,
    aws_run,
    stages_from_spans,
)
from devkit.api_calls import count_api_calls
from devkit.caches import reset_process_caches
from devkit.seed import seed_vpc
from tests.support.faults import FaultInjector, throttle
from vpce_guard import pipeline
from vpce_guard.config import Mode, Settings
from vpce_guard.models import Targets, Trigger

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "orgsim-ledger"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from devkit import template

    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        reset_process_caches()
        boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(TABLE))
        seed_vpc(boto3.client("ec2", region_name=REGION), REGION)
        yield
    reset_process_caches()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """botocore's retry waits as it computes them (attempt number, seconds), not slept."""
    from botocore.retries import adaptive, standard

    out: list[tuple[int, float]] = []
    real = standard.ExponentialBackoff.delay_amount

    def record(self: Any, context: Any) -> float:
        out.append((context.attempt_number, real(self, context)))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", record)
    monkeypatch.setattr(adaptive.ClientRateLimiter, "on_sending_request", lambda self, request, **kw: None)
    return out


def _sweep_unit() -> pipeline.RunResult:
    rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=Mode.DRY_RUN))
    return pipeline.run_targets(rt, Targets(account=ACCOUNT, region=REGION, everything=True),
                                Trigger(source="sweep"))


@pytest.mark.parametrize("throttles", [1, 3, facts.MAX_ATTEMPTS - 1])
def test_a_throttled_call_in_a_real_sweep_gets_the_attempts_and_waits_the_model_assumes(
        world: None, waits: list[tuple[int, float]], throttles: int) -> None:
    injector = FaultInjector(throttle("ec2.DescribeVpcs", times=throttles, stage="send"))
    with injector.installed(), count_api_calls() as calls:
        result = _sweep_unit()
    assert result.disposition == "act", result.reason
    attempts, failed = attempts_for(throttles)
    assert not failed
    assert calls.attempts[("ec2", "DescribeVpcs")] == attempts == throttles + 1
    throttled_waits = [(n, s) for n, s in waits]
    assert len(throttled_waits) == throttles
    for n, seconds in throttled_waits:
        assert 0 <= seconds <= facts.backoff_bound(n), (n, seconds)


def test_a_call_throttled_on_every_attempt_fails_the_unit_as_the_model_assumes(
        world: None, waits: list[tuple[int, float]]) -> None:
    injector = FaultInjector(throttle("ec2.DescribeVpcs", times=None, stage="send"))
    with injector.installed(), count_api_calls() as calls:
        result = _sweep_unit()
    attempts, failed = attempts_for(10**6)
    assert failed and result.disposition == "failed" and result.retryable
    assert calls.attempts[("ec2", "DescribeVpcs")] == attempts == facts.MAX_ATTEMPTS
    # The longest waits the model allows, retry by retry: 1, 2, 4, 8, 16, then 20 s.
    assert [facts.backoff_bound(i) for i in range(1, 9)] == [1, 2, 4, 8, 16, 20, 20, 20]
    assert all(0 <= s <= facts.backoff_bound(n) for n, s in waits)


def test_a_token_bucket_gives_its_share_then_its_share_of_the_refill() -> None:
    b = ServerBucket(facts.Bucket(capacity=100, refill=20.0), share=0.5)
    assert sum(b.take(0.0) for _ in range(60)) == 50
    assert sum(b.take(1.0) for _ in range(60)) == 10
    assert sum(b.take(0.5) for _ in range(5)) == 0, "time does not run backwards"


def test_calls_that_overlapped_form_one_stage_with_their_parallelism() -> None:
    spans = [("ec2", "DescribeVpcs", 0.0, 1.0, 2048), ("ec2", "DescribeVpcAttribute", 1.0, 2.0, 100),
             ("ec2", "DescribeVpcAttribute", 1.1, 2.1, 100), ("ec2", "DescribeVpcAttribute", 1.2, 1.5, 100),
             ("dynamodb", "BatchWriteItem", 3.0, 3.1, 10)]
    stages = stages_from_spans(spans, max_parallel=8)
    assert [len(s.calls) for s in stages] == [1, 3, 1]
    assert [s.parallel for s in stages] == [1, 3, 1]
    assert stages[0].calls[0] == Call("ec2", "DescribeVpcs", 2.0)


def _profile(name: str, describes: int) -> UnitProfile:
    stages = [Stage([Call("ec2", "DescribeVpcEndpoints", 5.0)], 1),
              Stage([Call("ec2", "DescribeVpcAttribute", 0.2) for _ in range(describes)], 8),
              Stage([Call("dynamodb", "BatchWriteItem", 1.0)], 1)]
    return UnitProfile(name=name, endpoints=describes, vpcs=describes, evaluations=3 * describes, stages=stages,
                       seconds=1.0, gap_seconds=0.01, cpu_seconds=0.02)


def test_a_large_unit_drains_its_bucket_and_is_paced_not_failed() -> None:
    run = aws_run(_profile("large", 300), AwsConditions(), random.Random(3))
    assert run.throttled > 0 and not run.failed
    assert run.calls == 302 and run.attempts == run.calls + run.throttled
    # 50 tokens, then 10 a second: 250 more calls take at least 25 s.
    assert run.seconds >= 25
    assert aws_run(_profile("small", 3), AwsConditions(), random.Random(3)).throttled == 0


def test_the_unit_mix_gives_every_account_its_regions() -> None:
    layout = unit_types(2000, random.Random(1))
    assert all(len(regions) == REGIONS for regions in layout)
    large = sum("large" in regions for regions in layout) / len(layout)
    assert abs(large - MIX[-1][0]) < 0.02


def test_a_simulated_sweep_counts_every_unit_once_and_more_workers_finish_sooner() -> None:
    profiles = {name: _profile(name, n) for name, n in (("empty", 0), ("small", 3), ("medium", 50),
                                                         ("large", 100))}
    slow = simulate(profiles, 60, Defaults(max_concurrency=5, batch_size=5, parallel_calls=8), init_seconds=1.0)
    fast = simulate(profiles, 60, Defaults(max_concurrency=50, batch_size=5, parallel_calls=8), init_seconds=1.0)
    for r in (slow, fast):
        assert r.units == 60 * REGIONS and r.failed_units == 0
        assert r.invocations >= r.units / 5
    assert fast.wall_seconds < slow.wall_seconds / 3
    assert fast.cold_starts <= 50 and slow.cold_starts <= 5
    assert fast.cost_usd["per_sweep"] > 0 and fast.cost_usd["per_month"] > fast.cost_usd["per_sweep"]


def test_the_templates_sweep_defaults_are_the_ones_the_simulation_chose() -> None:
    """template.yaml's SweepMaxConcurrency, SweepBatchSize and SweepParallelCalls are what `make bench-org`
    found to sweep 1,000 accounts x 17 Regions within 15 minutes with no unit failing (docs/org-scale.md)."""
    import json
    from pathlib import Path

    from devkit import template

    results = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "org-scale.json")
                         .read_text())
    params = template.load()["Parameters"]
    chosen = results["defaults"]
    assert int(params["SweepMaxConcurrency"]["Default"]) == chosen["max_concurrency"]
    assert int(params["SweepBatchSize"]["Default"]) == chosen["batch_size"]
    assert int(params["SweepParallelCalls"]["Default"]) == chosen["parallel_calls"]
    row = next(r for r in results["rows"] if r["case"].startswith("1,000 accounts x"))
    assert row["wall_seconds"] <= 15 * 60 and row["failed_units"] == 0


def test_the_cost_fit_never_goes_below_zero_and_keeps_the_best_line_that_does_not() -> None:
    # Sizes that hardly vary with noisy times: the free line crosses far below zero. The best line with a zero
    # intercept goes through the origin and predicts the mean, not the free slope (which would say 4x it).
    xs, ys = [0.266, 0.267, 0.267, 0.268], [0.004, 0.002, 0.003, 0.005]
    intercept, slope = _line(xs, ys)
    assert intercept == 0.0
    assert slope * 0.267 == pytest.approx(sum(ys) / len(ys), rel=0.01)
    assert _line([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx((1.0, 1.0))  # a free line above zero is kept
    assert _line([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == (2.0, 0.0)  # never a negative slope: the mean
    assert _line([0.5, 0.5], [0.01, 0.03]) == (0.02, 0.0)  # no spread in size: the mean


def test_a_query_costs_with_its_answer_and_a_transaction_with_the_table() -> None:
    query, transaction = Call("dynamodb", "Query", 817.0), Call("dynamodb", "TransactWriteItems", 0.05)
    assert _size(query, table_items=1300) == 817.0
    assert _size(transaction, table_items=1300) == 1.3
