"""`make bench`: run every benchmark case, write benchmarks/results/latest.{json,md}, print the table.

    python -m benchmarks.run [--quick] [--only events,sweep,cold,c7n]

--quick runs small sizes (a smoke run, not for docs/performance.md). Exit status is 0 even when a target is missed:
the table says which, and why is for a person to find (targets are measurements, not tests).
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

RESULTS = Path(__file__).resolve().parent / "results"

#: Issue 16's targets (each a ratio measured in one run) and the earlier ones still held.
TARGETS = {
    "event_ratio": 1.5,  # 4. calls per event / lower bound, every events/ file, after the re-read before writes
    "sweep_to_floor_at_200": 1.2,  # 1. all-rules sweep / the reads alone (benchmarks/floor_once.py)
    "c7n_policy_only_at_200": 1.0,  # 2. endpoint policies only, repeat sweeps / Cloud Custodian
    "first_result_to_baseline": 0.75,  # 3. cold start to the first result / the same at issue 16's start
    "sweep_ratio_at_1000": 1.2,
    "artifacts_mb": 15.0,
}


def _targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, limit: Any, ok: bool | None, note: str = "", group: str = "",
            label: str = "") -> None:
        """`group`: targets shown as one row in docs/performance.md's summary, each as `label value`."""
        out.append({"target": name, "measured": value, "limit": limit,
                    "met": ok, "note": note, "group": group, "label": label})

    if "events" in res:
        worst = max(res["events"]["cases"], key=lambda c: c["ratio"] or 0)
        add("4. per-event calls / lower bound (every event file, both scenarios)", worst["ratio"],
            TARGETS["event_ratio"], worst["ratio"] <= TARGETS["event_ratio"],
            f"worst: {worst['event']} ({worst['scenario']})")
    if "sweep" in res:
        rows = {r["endpoints"]: r for r in res["sweep"]["sizes"]}
        if 1000 in rows:
            r = rows[1000]
            add("sweep calls at 1,000 endpoints / page-count lower bound", r["ratio"], TARGETS["sweep_ratio_at_1000"],
                r["ratio"] <= TARGETS["sweep_ratio_at_1000"])
        growths = [r["growth"] for r in res["sweep"]["sizes"] if "growth" in r]
        if growths:
            g = growths[-1]
            add("sweep time growth per 10x resources (CPU of the sweeping process: our code and botocore; "
                "moto runs in its own process)", g["cpu_seconds"], None, None,
                f"for information; total wall incl. moto: {g['seconds']}x")
    if "c7n" in res and "skipped" not in res["c7n"]:
        c = res["c7n"]
        if "floor" in c:
            ratio = round(c["vpce_guard"]["seconds_median"] / c["floor"]["seconds_median"], 3)
            c["ratio_vpce_guard_to_floor"] = ratio
            add(f"1. sweep wall time, all rules, repeat sweeps / the reads alone (benchmarks/floor_once.py; "
                f"N={c['vpcs']})", ratio, TARGETS["sweep_to_floor_at_200"], ratio <= TARGETS["sweep_to_floor_at_200"],
                f"{c['vpce_guard']['seconds_median']} s against {c['floor']['seconds_median']} s")
        if c.get("ratio_policy_only_to_c7n") is not None:
            add(f"2. sweep wall time, endpoint policies only (what Cloud Custodian checks), repeat sweeps, closing "
                f"unseen findings / Cloud Custodian's (N={c['vpcs']})", c["ratio_policy_only_to_c7n"],
                TARGETS["c7n_policy_only_at_200"], c["ratio_policy_only_to_c7n"] <= TARGETS["c7n_policy_only_at_200"],
                f"{c['vpce_guard_policy_only']['seconds_median']} s against {c['c7n']['seconds_median']} s")
        group = f"wall time / Cloud Custodian's (N={c['vpcs']}), for information"
        add(f"sweep wall time / Cloud Custodian's (N={c['vpcs']}, all rules)", c["ratio_vpce_guard_to_c7n"],
            None, None, f"of which VPC DNS reads {c['vpce_guard']['dns_seconds_median']} s", group=group,
            label="sweep, all rules")
        if "floor" in c:
            add(f"reads alone (what all rules need, nothing evaluated or recorded) / Cloud Custodian's "
                f"(N={c['vpcs']})", c["floor"]["ratio_to_c7n"], None, None,
                "no tool sweeps all rules faster on a moto server", group=group, label="reads alone")
    if "cold_start" in res:
        fe = res["cold_start"].get("first_event") or {}
        if fe.get("ratio_to_baseline") is not None:
            base = fe[f"baseline {fe['baseline_commit']}"]
            add(f"3. cold start to the first result (OnChangeFunction, import + one compliant event, median CPU of "
                f"{fe['runs']} fresh processes) / the same at {fe['baseline_commit']}, measured alternately",
                fe["ratio_to_baseline"], TARGETS["first_result_to_baseline"],
                fe["ratio_to_baseline"] <= TARGETS["first_result_to_baseline"],
                f"{fe['total_cpu_ms']} ms (import {fe['import_cpu_ms']}, event {fe['event_cpu_ms']}) against "
                f"{base['total_cpu_ms']} ms (import {base['import_cpu_ms']}, event {base['event_cpu_ms']})")
        for imp in res["cold_start"]["imports"]:
            add(f"{imp['function']} cold import, median CPU ms", imp["cpu_ms_median"], None, None,
                f"wall median {imp['wall_ms_median']} ms at load average {imp['load_average']}",
                group="cold import, median CPU ms, for information", label=imp["function"])
        art = res["cold_start"]["artifacts"]
        add("layer + functions unzipped, MB", art["total_mb"], TARGETS["artifacts_mb"],
            art["total_mb"] <= TARGETS["artifacts_mb"] and not art["bundles_boto"])
    return out


def _md(res: dict[str, Any]) -> str:
    # Markdown rows are written here rather than by tabulate (which the report and the demo use): its Markdown
    # formats pad every cell to the column's width, so one changed number would rewrite whole tables of
    # benchmarks/results/latest.md and the docs; unpadded rows keep a re-run's diff to the cells that changed.
    lines = [f"Measured {res['meta']['time']} on {res['meta']['machine']} (load average {res['meta']['load']});"
             " moto 5.2.5 with AWS paging modelled (devkit/paging.py). Reproduce: `make bench`.", ""]
    lines += ["| target | measured | limit | met |", "|---|---|---|---|"]
    for t in res["targets"]:
        note = f" ({t['note']})" if t["note"] else ""
        met = "-" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']}{note} | {t['measured']} | {t['limit'] if t['limit'] is not None else '-'} | "
                     f"{met} |")
    if "events" in res:
        ev = res["events"]
        lines += ["", f"**1. Events** (warm function; rules read: {', '.join(ev['reads_needed'])}; a cold start adds "
                  f"{', '.join(f'{k} {v}' for k, v in ev['cold_start_extra_calls'].items())})", "",
                  "| event | scenario | calls | lower bound | ratio | ledger items | outcome |",
                  "|---|---|---|---|---|---|---|"]
        for c in ev["cases"]:
            outcome = ", ".join(f"{k} {v}" for k, v in sorted(c["statuses"].items())) or "nothing in scope"
            lines.append(f"| {c['event']} | {c['scenario']} | {c['calls']} | {c['bound']} | {c['ratio']} | "
                         f"{c['ledger_items']} | {outcome} |")
    if "sweep" in res:
        lines += ["", "**2-3. Sweep of one account-region** (warm unit, enforce mode, one policy in ten open; "
                  "moto server)", "",
                  "| endpoints | route tables | calls | lower bound | ratio | EC2 calls (bound) | wall s | "
                  "CPU s | calls growth | CPU growth | ledger items/call |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["sweep"]["sizes"]:
            g = r.get("growth", {})
            lines.append(f"| {r['endpoints']} | {r['route_tables']} | {r['calls']} | {r['bound']} | {r['ratio']} | "
                         f"{r['ec2_calls']} ({r['ec2_bound']}) | {r['seconds']} | {r['cpu_seconds']} | "
                         f"{g.get('calls', '-')} | {g.get('cpu_seconds', '-')} | {r['ledger']['items_per_call']} |")
        big = res["sweep"]["sizes"][-1]
        lines += ["", f"Calls at {big['endpoints']} endpoints: "
                  + ", ".join(f"{k} {v}" for k, v in big["by_operation"].items())
                  + f"; cold start adds {', '.join(f'{k} {v}' for k, v in big['cold_extra'].items())}."]
    if "cold_start" in res:
        cs = res["cold_start"]
        lines += ["", f"**4. Cold start** ({cs['interpreter']})", "",
                  "| function | import CPU ms (median) | wall ms (median) | largest self-time packages, ms |",
                  "|---|---|---|---|"]
        for imp in cs["imports"]:
            top = ", ".join(f"{k} {v}" for k, v in list(imp["top_packages_ms"].items())[:5])
            lines.append(f"| {imp['function']} | {imp['cpu_ms_median']} | {imp['wall_ms_median']} | {top} |")
        fe = cs.get("first_event")
        if fe:
            lines += ["", f"Cold start to the first result ({fe['function']}, a fresh process per run, median of "
                      f"{fe['runs']}; {fe['event']} on a compliant endpoint, against a moto server): import "
                      f"{fe['import_cpu_ms']} ms CPU, then the first event {fe['event_cpu_ms']} ms CPU "
                      f"({fe['event_wall_ms']} ms wall, moto's time included): {fe['total_cpu_ms']} ms CPU in all. "
                      "The import creates the idempotency store's DynamoDB client (needed before the first event; "
                      "the first event's ledger reuses its parsed model)."]
            if fe.get("baseline_commit"):
                b = fe[f"baseline {fe['baseline_commit']}"]
                lines[-1] += (f" The same at {fe['baseline_commit']} (issue 16's start), run alternately with it in "
                              f"this run: import {b['import_cpu_ms']} ms, first event {b['event_cpu_ms']} ms, "
                              f"{b['total_cpu_ms']} ms in all; ratio {fe['ratio_to_baseline']}.")
        art = cs["artifacts"]
        sizes = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in art["bytes"].items())
        lines += ["", f"Artifacts ({art['method']}): {sizes}; total {art['total_mb']} MB unzipped; "
                  f"boto3/botocore bundled: {'yes' if art['bundles_boto'] else 'no'}. Largest in the layer: "
                  + ", ".join(f"{k} {v} MB" for k, v in art["layer_largest"].items()) + "."]
    if "c7n" in res:
        c = res["c7n"]
        if "skipped" in c:
            lines += ["", f"**5. Cloud Custodian**: skipped ({c['skipped']})"]
        else:
            lines += ["", f"**5. Side by side with Cloud Custodian {c['c7n']['version']}** ({c['vpcs']} VPCs, "
                      f"{c['endpoints']} S3 gateway endpoints, {c['open']} open; moto server; fresh processes, "
                      f"median of {c['repeats']})", "",
                      "| tool | wall s | CPU s | flagged | true positives | false positives | missed | calls |",
                      "|---|---|---|---|---|---|---|---|"]
            rows = (("Cloud Custodian (cross-account, detection)", "c7n"),
                    ("vpce-guard sweep, all rules (repeat sweeps)", "vpce_guard"),
                    ("vpce-guard sweep, all rules, first sweep (empty ledger)", "vpce_guard_first_sweep"),
                    ("vpce-guard sweep, endpoint policies only (repeat sweeps)", "vpce_guard_policy_only"))
            for name, key in rows:
                if key not in c:
                    continue
                d = c[key]
                calls = ", ".join(f"{k} {v}" for k, v in d["calls"].items())
                lines.append(f"| {name} | {d['seconds_median']} | {d['cpu_seconds_median']} | {d['flagged']} | "
                             f"{d['true_positives']} | "
                             f"{d['false_positives']} | {d['missed']} | {calls} |")
            if "floor" in c:
                f = c["floor"]
                lines.append(f"| reads alone: endpoints, route tables, VPCs, {f['dns_reads']} DNS attributes "
                             f"(benchmarks/floor_once.py) | {f['seconds_median']} | - | - | - | - | - | - |")
            g = c["vpce_guard"]
            writing = round(g["seconds_median"] - g["detection_seconds_median"], 3)
            ledger_ops = {op: n for op, n in g["calls"].items() if op.startswith("dynamodb:")}
            ledger_seconds = round(sum(v for k, v in g["seconds_by_operation"].items() if k.startswith("dynamodb:")), 3)
            vouched = (g.get("digest") or {}).get("vouched", 0)
            lines += ["", f"Ratios to Cloud Custodian: all rules {c['ratio_vpce_guard_to_c7n']} (first sweep "
                      f"{c.get('ratio_first_sweep_to_c7n')}), endpoint policies only "
                      f"{c.get('ratio_policy_only_to_c7n')}. A repeat sweep of all rules ({g['evaluations']} "
                      f"evaluations) spends {g['detection_seconds_median']} s on detection (process start to the first "
                      f"ledger call: every endpoint, route table and VPC read, every rule evaluated), of which "
                      f"{g['dns_seconds_median']} s reading VPC DNS attributes (one DescribeVpcAttribute per VPC: "
                      f"AWS has no batch form, and moto serves them one at a time), and the remaining {writing} s "
                      f"on the ledger ({ledger_seconds} s of calls: "
                      f"{', '.join(f'{k} {v}' for k, v in sorted(ledger_ops.items()))}; the account-region's digest "
                      f"vouched for the state items in {vouched} of {c['repeats']} runs, docs/ledger.md), which "
                      "Cloud Custodian's run has no counterpart for, and on the interpreter's start and exit."]
    return "\n".join(lines) + "\n"


PERFORMANCE_DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def summary_table(targets: list[dict[str, Any]]) -> list[str]:
    """The targets as docs/performance.md shows them: one row per target, except that targets of one `group`
    (the four cold imports, the three comparisons with Cloud Custodian) share a row that lists each value and
    says how many of them met the limit. benchmarks/results/latest.md keeps one row per target."""
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for t in targets:
        group = t.get("group") or ""
        if group and rows and rows[-1][0] == group:
            rows[-1][1].append(t)
        else:
            rows.append((group, [t]))
    lines = ["| target | measured | limit | met |", "|---|---|---|---|"]
    for group, members in rows:
        met = sum(1 for t in members if t["met"])
        if len(members) == 1:
            t = members[0]
            note = f" ({t['note']})" if t["note"] else ""
            verdict = "-" if t["met"] is None else "yes" if t["met"] else "**no**"
            lines.append(f"| {group or t['target']}{note} | {t['measured']} | "
                         f"{'-' if t['limit'] is None else t['limit']} | {verdict} |")
            continue
        values = ", ".join(f"{t['label']} {t['measured']}" for t in members)
        if members[0]["limit"] is None:
            verdict = "-"
        else:
            verdict = "yes" if met == len(members) else "**no**" if met == 0 else f"{met} of {len(members)}"
        lines.append(f"| {group} | {values} | {'-' if members[0]['limit'] is None else members[0]['limit']} | "
                     f"{verdict} |")
    return lines


def update_doc(md: str, res: dict[str, Any], doc: Path = PERFORMANCE_DOC) -> bool:
    """Put the measurements of a full run between the markers of docs/performance.md: when and where they were
    taken, the targets (grouped, `summary_table`), and the sweep, cold start and Cloud Custodian sections of
    latest.md (the per-event table stays in latest.md, which the block links)."""
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        return False
    keep = [md.split("\n\n", 1)[0], "\n".join(summary_table(res["targets"]))]
    for block in md.split("\n\n"):
        if block.startswith(("**2-3.", "| endpoints", "Calls at", "**4.", "| function", "Cold start to",
                             "Artifacts", "**5.", "| tool", "Ratio")):
            keep.append(block)
    body = "\n\n".join(keep) + "\n\nEvery target on its own row, and every event file on a compliant and a " \
        "violating VPC: [benchmarks/results/latest.md](../benchmarks/results/latest.md)."
    from .harness import replace_marked

    return replace_marked(doc, BEGIN, END, body + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="events,sweep,cold,c7n")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--sweep-sizes", default=",".join(str(n) for n in (10, 100, 1000)),
                        help="endpoints per swept account-region (comma-separated)")
    parser.add_argument("--render", action="store_true",
                        help="only re-render latest.md and docs/performance.md from latest.json (no measuring; "
                             "the targets are derived again from the measurements)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if args.render:
        res = json.loads((Path(args.out) / "latest.json").read_text())
        res["targets"] = _targets(res)
        (Path(args.out) / "latest.json").write_text(json.dumps(res, indent=2) + "\n")
        md = _md(res)
        (Path(args.out) / "latest.md").write_text(md)
        update_doc(md, res)
        print(md)
        return 0
    res: dict[str, Any] = {"meta": {
        "time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load": round(os.getloadavg()[0], 2), "quick": args.quick}}
    started = time.perf_counter()
    if "events" in only:
        from . import bench_events

        print("events …", file=sys.stderr)
        res["events"] = bench_events.run(quick=args.quick)
    if "sweep" in only:
        from . import bench_sweep

        print("sweep …", file=sys.stderr)
        sizes = tuple(int(n) for n in args.sweep_sizes.split(","))
        res["sweep"] = bench_sweep.run((10, 100) if args.quick else sizes)
    if "cold" in only:
        from . import bench_cold_start

        print("cold start …", file=sys.stderr)
        res["cold_start"] = bench_cold_start.run(3 if args.quick else bench_cold_start.RUNS)
    if "c7n" in only:
        from . import bench_c7n

        print("Cloud Custodian …", file=sys.stderr)
        res["c7n"] = bench_c7n.run(20 if args.quick else 200, 1 if args.quick else 3)
    res["targets"] = _targets(res)
    res["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "latest"
    (out / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    md = _md(res)
    (out / f"{name}.md").write_text(md)
    if not args.quick and only >= {"events", "sweep", "cold", "c7n"} and args.out == str(RESULTS):
        update_doc(md, res)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
