"""`make bench-org`: the organization-scale sweep simulation, calibrated on the real sweep worker.

    python -m benchmarks.bench_org [--quick] [--profiles FILE]

1. Calibrate (benchmarks/orgsim/calibrate.py): the real worker sweeps representative account-regions on a
   moto server, first, read-back and repeat sweeps; every call is recorded.
2. Check the model on moto: the cost per request fitted on the small units predicts the wall time of the
   N=200 and N=1,000 units (`calibration` rows; tests/calibration/ asserts the 25%).
3. Choose the defaults: the smallest worker concurrency (with batch size and calls side by side in a unit)
   with which 1,000 accounts x 17 Regions finish within 15 minutes and no unit fails on throttling.
4. Simulate 100, 1,000 and 5,000 accounts x 17 Regions with them (and 5,000 with the settings the docs
   recommend for that size), plus rows with EC2 latencies doubled, with every account-region read back (each
   changed since the day before) and for the first sweep after deploying.

Writes benchmarks/results/org-scale.{json,md} and the table in docs/org-scale.md (between its markers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit import api_calls, paging  # noqa: F401  (hook botocore before any session exists)

from .orgsim import calibrate, facts
from .orgsim.fleet import REGIONS, Defaults, simulate
from .orgsim.unit import UnitProfile, fit_moto, moto_seconds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "org-scale.md"
BEGIN, END = "<!-- org-scale:begin -->", "<!-- org-scale:end -->"
TARGET_SECONDS = 15 * 60
CALIBRATION_TOLERANCE = 0.25
SIZES = (100, 1000, 5000)
CONCURRENCY_CHOICES = (5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 300)
BATCH_CHOICES = (5, 10)
PARALLEL_CHOICES = (4, 8)
#: What docs/org-scale.md recommends for 5,000 accounts (checked by the simulation like the defaults).
LARGE_ORG = Defaults(max_concurrency=100, batch_size=10, parallel_calls=4)


def profiles_of(raw: dict[str, dict[str, Any]], round_name: str) -> dict[str, UnitProfile]:
    return {name: UnitProfile.from_json(rounds[round_name]) for name, rounds in raw.items() if round_name in rounds}


def calibration_check(raw: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Fit the moto cost on FIT_ON and predict the others: predicted / measured wall time. Each round is fitted on
    its own: a first sweep writes every state item in transactions and fixes what it finds, a read-back sweep reads
    every state item and writes the changes, a repeat sweep reads the account-region's digest and writes its
    checks; how much of a call's time the client's own work overlaps differs between them."""
    rows = []
    for round_name in ("repeat", "readback", "first"):
        cost = fit_moto([p for n, p in profiles_of(raw, round_name).items() if n in calibrate.FIT_ON])
        for name, p in profiles_of(raw, round_name).items():
            if name not in calibrate.PREDICTED:
                continue
            predicted = moto_seconds(p, cost)
            rows.append({"unit": name, "sweep": round_name, "endpoints": p.endpoints, "calls": sum(p.calls.values()),
                         "measured_s": round(p.seconds, 3), "predicted_s": round(predicted, 3),
                         "ratio": round(predicted / p.seconds, 3),
                         "within": abs(predicted / p.seconds - 1) <= CALIBRATION_TOLERANCE})
    return rows


def worker_init_seconds(memory_mb: int) -> tuple[float, float]:
    """The worker's cold start in Lambda: its import CPU (case 4's probe, median of 5) at the function's
    CPU share. Returns (import CPU s here, init s in Lambda)."""
    import tempfile

    from devkit import template

    from . import bench_cold_start

    with tempfile.TemporaryDirectory(prefix="vpce-guard-org-") as tmp:
        python, extra, _ = bench_cold_start.lambda_like_python(Path(tmp))
        spec = bench_cold_start._function_specs(template.load(), {"LedgerTable": "vpce-guard-ledger"})
        fn = next(f for f in spec if f.logical_id == "SweepWorkerFunction")
        cpu_ms = bench_cold_start.import_times(fn, python, extra, runs=5)["cpu_ms_median"]
    return cpu_ms / 1000, cpu_ms / 1000 * facts.FULL_VCPU_MB / memory_mb


def choose_defaults(profiles: dict[str, UnitProfile], init_s: float) -> tuple[Defaults, list[dict[str, Any]]]:
    """The smallest concurrency that meets the target at 1,000 accounts; among equals the fewest
    invocations (bigger batches), then the fewer calls side by side (gentler on the buckets)."""
    tried = []
    for concurrency in CONCURRENCY_CHOICES:
        ok = []
        for batch in BATCH_CHOICES:
            for parallel in PARALLEL_CHOICES:
                d = Defaults(concurrency, batch, parallel)
                r = simulate(profiles, 1000, d, init_seconds=init_s)
                row = {"max_concurrency": concurrency, "batch_size": batch, "parallel_calls": parallel,
                       "wall_minutes": round(r.wall_seconds / 60, 1), "failed_units": r.failed_units,
                       "throttled": r.throttled}
                tried.append(row)
                if r.wall_seconds <= TARGET_SECONDS and r.failed_units == 0:
                    ok.append((r.invocations, parallel, d))
        if ok:
            ok.sort(key=lambda x: (x[0], x[1]))
            return ok[0][2], tried
    raise RuntimeError(f"no setting tried meets {TARGET_SECONDS} s at 1,000 accounts: {tried[-4:]}")


def run(quick: bool = False, profiles_file: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    if profiles_file:
        raw = json.loads(Path(profiles_file).read_text())
    else:
        raw = calibrate.run(calibrate.UNITS[:3] if quick else calibrate.UNITS)
    repeat = profiles_of(raw, "repeat")
    first = profiles_of(raw, "first")
    import_cpu, init_s = worker_init_seconds(512)
    defaults, tried = choose_defaults(repeat, init_s)
    rows = []
    for accounts in SIZES:
        r = simulate(repeat, accounts, defaults, init_seconds=init_s)
        rows.append({"case": f"{accounts:,} accounts x {REGIONS} Regions, daily (repeat) sweep", **r.as_row()})
    big = simulate(repeat, 5000, LARGE_ORG, init_seconds=init_s)
    rows.append({"case": f"5,000 accounts, MaximumConcurrency {LARGE_ORG.max_concurrency}, batch "
                         f"{LARGE_ORG.batch_size}", **big.as_row()})
    slow = simulate(repeat, 1000, defaults, init_seconds=init_s, latency_scale=2.0)
    rows.append({"case": "1,000 accounts, EC2 latencies doubled", **slow.as_row()})
    readback = profiles_of(raw, "readback")
    if readback:
        b = simulate(readback, 1000, defaults, init_seconds=init_s)
        rows.append({"case": "1,000 accounts, every account-region changed since the day before (state items read "
                             "back)", **b.as_row()})
    if "large" in first:
        f = simulate(first, 1000, defaults, init_seconds=init_s)
        rows.append({"case": "1,000 accounts, first sweep after deploying (empty ledger)", **f.as_row()})
    res = {
        "meta": {"time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": quick,
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                 "load": round(os.getloadavg()[0], 2)},
        "profiles": raw, "calibration": calibration_check(raw) if not quick else [],
        "worker_import_cpu_s": round(import_cpu, 3), "worker_init_s": round(init_s, 3),
        "defaults": defaults.__dict__, "tried": tried, "rows": rows,
    }
    res["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return res


def _md(res: dict[str, Any]) -> str:
    d = res["defaults"]
    lines = [f"Simulated {res['meta']['time']}; calibrated on {res['meta']['machine']} (load average "
             f"{res['meta']['load']}). Reproduce: `make bench-org`.", "",
             f"Defaults chosen (template.yaml): SweepMaxConcurrency {d['max_concurrency']}, SweepBatchSize "
             f"{d['batch_size']}, SweepParallelCalls {d['parallel_calls']}, worker memory {d['memory_mb']} MB; "
             f"worker cold start {res['worker_init_s']} s ({res['worker_import_cpu_s']} s of import CPU here).", "",
             "| case | wall min | units | peak workers | invocations (cold) | EC2 calls (attempts) | throttled | "
             "failed units | summary conflicts | peak EC2 req/s vs refill | GB-s | WRU / RRU | $ per sweep | "
             "$ per month |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        peak = ", ".join(f"{op} {n}/{int(refill)}" for op, (n, refill) in r["peak_rate_vs_bucket"].items()
                         if n > 5) or "-"
        lines.append(f"| {r['case']} | {round(r['wall_seconds'] / 60, 1)} | {r['units']:,} | {r['peak_concurrency']} | "
                     f"{r['invocations']:,} ({r['cold_starts']}) | {r['ec2_calls']:,} ({r['ec2_attempts']:,}) | "
                     f"{r['throttled']:,} | {r['failed_units']} | {r['conflicts']:,} | {peak} | {r['gb_seconds']:,} | "
                     f"{r['dynamodb_wru']:,} / {r['dynamodb_rru']:,} | {r['cost_usd']['per_sweep']} | "
                     f"{r['cost_usd']['per_month']} |")
    lines += ["", "What the model takes from AWS (each read on the date shown):", "", "| fact | source | read |",
              "|---|---|---|"]
    for src in (facts.EC2_THROTTLING, facts.SQS_SCALING, facts.MAXIMUM_CONCURRENCY, facts.LAMBDA_CPU,
                facts.INIT_BILLED, facts.DYNAMODB_ON_DEMAND, facts.TRANSACTION_CONFLICTS, facts.SECURITY_HUB_IMPORT,
                facts.RETRIES, facts.EC2_STS_API_CALLS_ARE_FREE):
        lines.append(f"| {src.fact} | {src.url} | {src.read_on} |")
    lines += ["", "| price (us-east-1) | USD | source |", "|---|---|---|"]
    for name, price in facts.PRICES.items():
        lines.append(f"| {name}: {price.unit} | {price.usd:.10g} | {price.source.url} (read {price.source.read_on}) |")
    lines += ["", "What the model assumes (no AWS source):", "", "| assumption | value | why |", "|---|---|---|"]
    for a in facts.ASSUMPTIONS:
        lines.append(f"| {a.name} | {a.value} | {a.why} |")
    lines += ["", "| latency (assumed) | median ms | p99 ms | per KB of answer, ms |", "|---|---|---|---|"]
    for family, lat in facts.LATENCY.items():
        lines.append(f"| {family} | {lat.median * 1000:g} | {lat.p99 * 1000:g} | {lat.per_kb * 1000:g} |")
    if res["calibration"]:
        lines += ["", "Calibration check (moto cost fitted on the empty, small and medium units, each round on its "
                  "own; wall time of the others predicted from their calls):", "",
                  "| unit | sweep | endpoints | calls | measured s | predicted s | predicted / measured |",
                  "|---|---|---|---|---|---|---|"]
        for c in res["calibration"]:
            lines.append(f"| {c['unit']} | {c['sweep']} | {c['endpoints']} | {c['calls']} | {c['measured_s']} | "
                         f"{c['predicted_s']} | {c['ratio']} |")
    return "\n".join(lines) + "\n"


def update_doc(md: str, doc: Path = DOC) -> bool:
    from .harness import replace_marked

    return replace_marked(doc, BEGIN, END, md)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="calibrate on the small units only (a smoke run)")
    parser.add_argument("--profiles", help="reuse calibration profiles (the `profiles` of an earlier result)")
    args = parser.parse_args(argv)
    res = run(args.quick, args.profiles)
    name = "org-scale-quick" if args.quick else "org-scale"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    md = _md(res)
    (RESULTS / f"{name}.md").write_text(md)
    if not args.quick:
        update_doc(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
