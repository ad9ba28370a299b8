"""Case 5: side by side with Cloud Custodian on the same moto server state.

State: N VPCs, each with an S3 gateway endpoint on its main route table; half keep AWS's default full-access
policy (open), half are confined by aws:PrincipalOrgID to the organization. Truth: the open half.

- Cloud Custodian 0.9.53 from PyPI, in its own virtualenv (benchmarks/.venv-c7n, made by `make bench`):
  `custodian run --cache-period 0` of an `aws.vpc-endpoint` policy with the `cross-account` filter and
  `whitelist_orgids: [<the organization>]` — detection only.
- vpce-guard: one sweep unit of the account-region in dry_run mode (`python -m benchmarks.sweep_once`),
  which evaluates every rule (endpoint policies, gateway route tables, VPC DNS) and writes the ledger;
  and the same with only the rule Cloud Custodian's policy answers (endpoint policies), through the
  per-rule mode overrides an operator would use (an SSM parameter: `{"*": "off", <policy rule>: "dry_run"}`).

Every run is a fresh process (interpreter start and imports included). The first vpce-guard sweep meets an
empty ledger (every evaluation is new: history and state for each); then the tools run alternately, several
times, and the median wall time of each and their ratios are reported (repeat sweeps: the steady state,
where a sweep writes only what changed), with the endpoints each flagged against the truth. The policy-only
configuration has its own ledger table, swept once before it is timed, as a deployment configured so would
(`POLICY_ONLY_TABLE`). vpce-guard's processes run as the deployed sweep worker does: its cold start's runtime
(warm.py), its account from its function ARN, and the SDK data its layer ships (`deployed_sdk_data`); Cloud
Custodian and the floor use boto3's own. Both processes use the same call counter and AWS paging model (c7n
through a sitecustomize).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
C7N_VENV = ROOT / "benchmarks" / ".venv-c7n"
REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "vpce-guard-ledger-c7n"
#: The policy-only runs keep their own ledger: a configuration's repeat sweeps are its steady state, and sweeps of
#: another configuration interleaved on one ledger would each find the other's evaluations (a change, every time).
POLICY_ONLY_TABLE = "vpce-guard-ledger-c7n-policy"
POLICY_RULE = "endpoint-policy-org-confined"
#: Per-rule modes of the like-for-like run: the policy rule only, as Cloud Custodian's policy checks.
POLICY_ONLY_PARAMETER = "/vpce-guard-bench/policy-only"

POLICY = """policies:
  - name: vpce-cross-account
    resource: aws.vpc-endpoint
    filters:
      - type: cross-account
        whitelist_orgids: [{org_id}]
"""


def seed(n_vpcs: int) -> tuple[str, set[str], set[str]]:
    """Seed the server AWS_ENDPOINT_URL points at; returns (org id, open endpoint ids, all endpoint ids)."""
    import boto3

    from devkit import template
    from devkit.seed import confined_policy

    org_id = boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")[
        "Organization"]["Id"]
    for table in (TABLE, POLICY_ONLY_TABLE):
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(table))
    ec2 = boto3.client("ec2", region_name=REGION)
    opened, every = set(), set()
    for i in range(n_vpcs):
        vpc = ec2.create_vpc(CidrBlock=f"10.{i // 256}.{i % 256}.0/24")["Vpc"]["VpcId"]
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]
        kwargs: dict[str, Any] = {"VpcId": vpc, "ServiceName": f"com.amazonaws.{REGION}.s3",
                                  "VpcEndpointType": "Gateway", "RouteTableIds": [main["RouteTableId"]]}
        if i % 2:
            kwargs["PolicyDocument"] = confined_policy(org_id)
        endpoint = ec2.create_vpc_endpoint(**kwargs)["VpcEndpoint"]["VpcEndpointId"]
        every.add(endpoint)
        if not i % 2:
            opened.add(endpoint)
    return org_id, opened, every


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(url: str, extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION, **extra}


def run_c7n(url: str, org_id: str, workdir: Path) -> dict[str, Any]:
    policy = workdir / "policy.yml"
    policy.write_text(POLICY.format(org_id=org_id))
    out = workdir / "c7n-out"
    calls_file = workdir / "c7n-calls.json"
    env = _env(url, {"PYTHONPATH": str(ROOT / "benchmarks" / "c7n_site"), "VPCE_GUARD_BENCH_ROOT": str(ROOT),
                     "VPCE_GUARD_BENCH_CALLS": str(calls_file)})
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([str(C7N_VENV / "bin" / "custodian"), "run", "--cache-period", "0", "-s", str(out),
                           "-r", REGION, str(policy)], env=env, capture_output=True, text=True, cwd=workdir,
                          check=False)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"custodian failed: {proc.stderr[-2000:]}")
    resources = json.loads((out / "vpce-cross-account" / "resources.json").read_text())
    return {"seconds": seconds, "cpu_seconds": cpu, "flagged": sorted(r["VpcEndpointId"] for r in resources),
            "calls": json.loads(calls_file.read_text()) if calls_file.exists() else {}}


#: moto copies the whole table for every TransactWriteItems (to roll back); a first sweep's state writes sent side
#: by side then queue past the client's read timeout on a loaded machine, so the first sweep sends one at a time.
FIRST_SWEEP_ENV = {"PARALLEL_CALLS": "1", "BENCH_PATIENT_WITH_MOTO": "1"}


def run_vpce_guard(url: str, org_id: str, policy_only: bool = False,
                   extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One sweep unit in a fresh process, configured as template.yaml configures a deployment (the allowed
    organization is OrganizationId's), in dry_run."""
    extra = {"MODE_OVERRIDES_PARAMETER": POLICY_ONLY_PARAMETER} if policy_only else {}
    extra.update(extra_env or {})
    # AWS_LAMBDA_INITIALIZATION_TYPE: set by Lambda; with it the worker takes its account from its ARN (no STS).
    env = _env(url, {"LEDGER_TABLE": POLICY_ONLY_TABLE if policy_only else TABLE, "MODE": "dry_run",
                     "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "ALLOWED_ORG_IDS": org_id,
                     "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_TRACE_DISABLED": "true",
                     "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "vpce-guard",
                     "PYTHONPATH": str(ROOT), **extra})
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.sweep_once", ACCOUNT, REGION], env=env,
                          capture_output=True, text=True, cwd=ROOT, check=False)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"vpce-guard sweep failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "cpu_seconds": cpu, **out}


def deployed_sdk_data(workdir: Path) -> dict[str, str]:
    """The SDK data the deployed layer ships (vpce_guard.sdk_data: the EC2 and SSM models cut to the operations
    vpce-guard calls), written from the installed botocore, and the environment that puts it first on the
    loader's search path (AWS_DATA_PATH), as the layer's own folder is in Lambda. The tools beside it use the
    SDK data they ship with (boto3's, whole)."""
    import botocore

    from vpce_guard import sdk_data

    out = workdir / "sdk-data"
    sdk_data.write(Path(botocore.__file__).parent / "data", out)
    return {"AWS_DATA_PATH": str(out)}


def run_floor(url: str) -> dict[str, Any]:
    """Only the reads every rule needs, in a fresh process (benchmarks/floor_once.py); wall time measured here,
    like the tools'."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.floor_once"], env=_env(url, {"PYTHONPATH": str(ROOT)}),
                          capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"floor run failed: {proc.stderr[-2000:]}")
    return {"seconds": seconds, **{k: v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()
                                   if k != "seconds"}}


def _summary(runs: list[dict[str, Any]], truth: set[str], every: set[str]) -> dict[str, Any]:
    last = runs[-1]
    dns = [r["spans"]["DescribeVpcAttribute"] for r in runs if "DescribeVpcAttribute" in r.get("spans", {})]
    return {
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
        "seconds": [round(r["seconds"], 3) for r in runs],
        "cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
        "run_seconds": last["run_seconds"], "import_seconds": last["import_seconds"],
        "detection_seconds_median": round(statistics.median(r["detection_seconds"] for r in runs), 3),
        # Wall time from the first DescribeVpcAttribute to the last (no batch API: one call per VPC and attribute).
        "dns_seconds_median": round(statistics.median(b - a for a, b in dns), 3) if dns else None,
        "calls": last["calls"], "rules": last["rules"], "seconds_by_operation": last["seconds_by_operation"],
        "evaluations": last["evaluations"], **_score(last["flagged"], truth, every),
        # How each run knew its state items: vouched by the account-region's digest, or read back (unit_digest.py).
        "digest": dict(Counter(str(r.get("digest")) for r in runs)),
    }


def _score(flagged: list[str], truth: set[str], every: set[str]) -> dict[str, int]:
    got = set(flagged) & every
    return {"flagged": len(got), "true_positives": len(got & truth), "false_positives": len(got - truth),
            "missed": len(truth - got)}


def run(n_vpcs: int = 200, repeats: int = 3) -> dict[str, Any]:
    import boto3

    from devkit.moto_server import moto_server

    from .harness import environment

    if not (C7N_VENV / "bin" / "custodian").exists():
        return {"skipped": f"Cloud Custodian is not installed in {C7N_VENV} (`make bench` installs it)"}
    with moto_server() as url, environment({"AWS_ENDPOINT_URL": url}), tempfile.TemporaryDirectory() as tmp:
        os.environ["AWS_ENDPOINT_URL"] = url
        org_id, truth, every = seed(n_vpcs)
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=POLICY_ONLY_PARAMETER, Type="String", Value=json.dumps({"*": "off", POLICY_RULE: "dry_run"}))
        deployed = deployed_sdk_data(Path(tmp))
        first = run_vpce_guard(url, org_id, extra_env={**FIRST_SWEEP_ENV, **deployed})  # an empty ledger
        run_vpce_guard(url, org_id, policy_only=True, extra_env={**FIRST_SWEEP_ENV, **deployed})  # and its own
        c7n_runs, guard_runs, policy_runs, floor_runs = [], [], [], []
        for _ in range(repeats):
            c7n_runs.append(run_c7n(url, org_id, Path(tmp)))
            guard_runs.append(run_vpce_guard(url, org_id, extra_env=deployed))
            policy_runs.append(run_vpce_guard(url, org_id, policy_only=True, extra_env=deployed))
            floor_runs.append(run_floor(url))
    c7n_s = statistics.median(r["seconds"] for r in c7n_runs)
    last_c7n = c7n_runs[-1]
    guard, policy = _summary(guard_runs, truth, every), _summary(policy_runs, truth, every)
    first_summary = _summary([first], truth, every)
    return {
        "vpcs": n_vpcs, "endpoints": len(every), "open": len(truth), "repeats": repeats,
        "c7n": {"version": "0.9.53", "seconds_median": round(c7n_s, 3),
                "cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in c7n_runs), 3),
                "seconds": [round(r["seconds"], 3) for r in c7n_runs], "calls": last_c7n["calls"],
                **_score(last_c7n["flagged"], truth, every)},
        "vpce_guard": guard,
        "vpce_guard_policy_only": policy,
        "vpce_guard_first_sweep": first_summary,
        # Reads only (what every rule needs), nothing evaluated or recorded: no tool sweeps all rules faster.
        "floor": {"seconds_median": round(statistics.median(r["seconds"] for r in floor_runs), 3),
                  "seconds": [round(r["seconds"], 3) for r in floor_runs], "dns_reads": floor_runs[-1]["dns_reads"],
                  "ratio_to_c7n": round(statistics.median(r["seconds"] for r in floor_runs) / c7n_s, 3)},
        "ratio_vpce_guard_to_c7n": round(guard["seconds_median"] / c7n_s, 3) if c7n_s else None,
        "ratio_policy_only_to_c7n": round(policy["seconds_median"] / c7n_s, 3) if c7n_s else None,
        "ratio_first_sweep_to_c7n": round(first_summary["seconds_median"] / c7n_s, 3) if c7n_s else None,
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20, 1), indent=2))
