"""Case 4: cold start — import time of each handler module, and the built size of each function and the layer.

Import time, as close to Lambda's python3.13 runtime as this machine allows: Python 3.13 (pyenv) started
without site-packages, with Lambda's sys.path order — the function's code, the layer built by its Makefile
for x86_64, then a "runtime" folder holding only what Lambda's runtime provides (boto3 and its dependencies,
at the pinned versions). So the import sees exactly the packages Lambda would, and none of the dev tools in
.venv (moto brings `requests`, which the X-Ray SDK would otherwise find and patch). The function's
environment comes from template.yaml plus what Lambda sets (Powertools' Tracer sees a Lambda and patches as
it would there); the handler file is executed as Lambda's bootstrap does. Without Python 3.13 the .venv's
Python is used, and the report says so. Wall and CPU time
are both reported: this machine is shared with other jobs, and CPU time is what the import itself costs.
The median of several runs is compared with the target.

Artifact size: `sam build` into a temporary folder when SAM CLI is installed (`.venv-sam/bin/sam` or on
PATH); otherwise each resource's Makefile build target with a temporary ARTIFACTS_DIR, which is what
`sam build` runs for `BuildMethod: makefile`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devkit import template

ROOT = Path(__file__).resolve().parents[1]
RUNS = 9

#: What every probe does first: Lambda's sys.path and environment, and what its runtime loads before the handler.
_PROBE_SETUP = r"""
import importlib.util, json, os, sys, time
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["paths"]
os.environ.update(spec["env"])
try:
    import awslambdaric.bootstrap  # loaded by Lambda's runtime before it imports the handler
except ImportError:
    pass
"""

_PROBE = _PROBE_SETUP + r"""
wall, cpu = time.perf_counter(), time.process_time()
mod_spec = importlib.util.spec_from_file_location(spec["module"], spec["file"])
module = importlib.util.module_from_spec(mod_spec)
sys.modules[spec["module"]] = module
mod_spec.loader.exec_module(module)
assert callable(getattr(module, spec["handler"]))
print(json.dumps({"wall_ms": (time.perf_counter() - wall) * 1000, "cpu_ms": (time.process_time() - cpu) * 1000}))
"""


#: Import, then the first event: what a cold start costs until the first result (OnChangeFunction only, the
#: latency-critical path). The test harness's context class is loaded after the import is timed.
_FIRST_EVENT_PROBE = _PROBE_SETUP + r"""
def load(name, path):
    s = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(s)
    sys.modules[name] = m
    s.loader.exec_module(m)
    return m

wall, cpu = time.perf_counter(), time.process_time()
handler = getattr(load(spec["module"], spec["file"]), spec["handler"])
import_wall, import_cpu = time.perf_counter() - wall, time.process_time() - cpu
context = load("lambda_context", spec["context_file"]).LocalLambdaContext(function_name=spec["function"])
wall, cpu = time.perf_counter(), time.process_time()
result = handler(spec["event"], context)
event_wall, event_cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"import_cpu_ms": import_cpu * 1000, "import_wall_ms": import_wall * 1000,
                  "event_cpu_ms": event_cpu * 1000, "event_wall_ms": event_wall * 1000,
                  "statuses": sorted({r["status"] for r in result.get("results", [])})}))
"""
FIRST_EVENT_FUNCTION = "OnChangeFunction"
FIRST_EVENT_FILE = "modify-vpc-endpoint.json"


#: Where the cold-start target is measured from (issue 16's starting point, ~605 ms of CPU to the first result
#: when it was filed): its on-change function and layer, built by its own Makefile, run in the same run,
#: alternately with today's, so the ratio is not at the mercy of this shared machine's load.
BASELINE_COMMIT = "549462e"


@dataclass(frozen=True)
class Variant:
    """A build of the on-change function to time: its code, the layer folders, its template."""

    name: str
    fn: template.FunctionSpec
    paths: list[str]
    tpl: dict[str, Any]


def first_event_times(variants: list[Variant], python: list[str], ledger_table: str,
                      runs: int = RUNS) -> dict[str, Any]:
    """Cold start to the first result: a fresh process imports the handler, then handles one event (a change
    to a compliant S3 gateway endpoint) against a moto server: the import and the first event, separately.
    Moving work from the import into the first event shows here. Each variant's environment is its template's
    with OrganizationId set, as every deployment has it; the variants take turns, run after run."""
    import boto3

    from devkit.moto_server import moto_server
    from devkit.seed import confined_policy, render_event, seed_vpc

    from .harness import REGION, environment

    samples: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    with moto_server() as url, environment({"AWS_ENDPOINT_URL": url}):
        org_id = boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")[
            "Organization"]["Id"]
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(ledger_table))
        world = seed_vpc(boto3.client("ec2", region_name=REGION), REGION, s3_policy=confined_policy(org_id),
                         associate_all=True, dns_hostnames=True)
        event = render_event(FIRST_EVENT_FILE, world.mapping())
        probes = {}
        for v in variants:
            spec = template.function_spec(v.fn.logical_id, resources={"LedgerTable": ledger_table},
                                          overrides={"OrganizationId": org_id}, tpl=v.tpl)
            spec = replace(spec, code_dir=v.fn.code_dir)
            probe = _probe_spec(spec)
            probe["paths"] = [str(spec.code_dir), *v.paths]
            probe.update(function=spec.logical_id, context_file=str(ROOT / "devkit" / "lambda_context.py"))
            probe["env"] = {**probe["env"], "AWS_ENDPOINT_URL": url}
            probes[v.name] = probe
        for i in range(runs):
            for j, v in enumerate(variants):
                probe = probes[v.name]
                # A new delivery every time (a repeated id would be answered by idempotency).
                probe["event"] = {**event, "id": f"{event['id'][:-8]}{i:06d}{j:02d}"}
                out = subprocess.run([*python, "-c", _FIRST_EVENT_PROBE, json.dumps(probe)], capture_output=True,
                                     text=True, check=False, env=_clean_env(), cwd=tempfile.gettempdir())
                if out.returncode != 0:
                    raise RuntimeError(f"{v.name}: the first-event probe failed: {out.stderr[-3000:]}")
                samples[v.name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {"function": variants[0].fn.logical_id, "event": FIRST_EVENT_FILE, "runs": runs,
                           "load_average": round(os.getloadavg()[0], 2)}
    for v in variants:
        med = {k: round(statistics.median(s[k] for s in samples[v.name]), 1)
               for k in ("import_cpu_ms", "import_wall_ms", "event_cpu_ms", "event_wall_ms")}
        row = {**med, "total_cpu_ms": round(med["import_cpu_ms"] + med["event_cpu_ms"], 1),
               "statuses": samples[v.name][-1]["statuses"]}
        if v is variants[0]:
            out.update(row)
        else:
            out[v.name] = row
    if len(variants) > 1:
        base = out[variants[1].name]
        out["baseline_commit"] = BASELINE_COMMIT
        out["ratio_to_baseline"] = round(out["total_cpu_ms"] / base["total_cpu_ms"], 3)
    return out


def baseline_variant(workdir: Path, extra_paths: list[str]) -> Variant | None:
    """The on-change function of BASELINE_COMMIT with its layer as its own Makefile builds it (None: that
    commit is not in this clone's history)."""
    tree = workdir / "baseline"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_COMMIT], capture_output=True, check=False)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    tpl = template.load(tree / "template.yaml")
    fn = template.function_spec(FIRST_EVENT_FUNCTION, resources={"LedgerTable": "vpce-guard-ledger"}, tpl=tpl)
    fn = replace(fn, code_dir=tree / "functions" / "on_change")
    paths = [str(tree / "layers" / "vpce_guard")]
    if extra_paths:  # built with its own Makefile, like today's layer; the same runtime folder after it
        layer = workdir / "baseline-layer"
        layer.mkdir(parents=True, exist_ok=True)
        subprocess.run(["make", "-s", "-C", str(tree / "layers" / "vpce_guard"), "build-VpceGuardLayer",
                        f"ARTIFACTS_DIR={layer}", "LAMBDA_ARCH=x86_64", "LAMBDA_PYTHON=3.13",
                        f"PIP={PY313} -m pip"], check=True, capture_output=True, text=True)
        paths = [str(layer / "python"), *extra_paths[1:]]
    return Variant(f"baseline {BASELINE_COMMIT}", fn, paths, tpl)


def _lambda_env(fn: template.FunctionSpec) -> dict[str, str]:
    return {
        **fn.environment,
        "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "LAMBDA_TASK_ROOT": str(fn.code_dir), "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        # Lambda runs the X-Ray daemon; nothing is sent during an import, the address only has to parse.
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000", "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000",
    }


def _probe_spec(fn: template.FunctionSpec) -> dict[str, Any]:
    return {"paths": [*(str(d) for d in fn.layer_dirs), str(fn.code_dir)], "env": _lambda_env(fn),
            "module": fn.handler_module, "file": str(fn.code_dir / f"{fn.handler_module}.py"),
            "handler": fn.handler_name}


def _clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    # Lambda mounts code and layers read-only: nothing imported at a cold start can leave bytecode behind.
    return {**{k: v for k, v in os.environ.items() if k in keep}, "PYTHONDONTWRITEBYTECODE": "1"}


PY313 = Path.home() / ".pyenv" / "versions" / "3.13.0" / "bin" / "python3.13"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
#: Lambda's Python runtime interface client: what the runtime has imported before the handler.
RUNTIME_CLIENT = "awslambdaric==4.2.2"


def lambda_like_python(workdir: Path) -> tuple[list[str], list[str], str]:
    """(interpreter command, extra sys.path entries, description) for import timing."""
    if not PY313.exists():
        return [sys.executable], [], f"{sys.executable} (.venv, Python {sys.version.split()[0]}): no Python 3.13"
    layer = workdir / "layer"
    runtime = workdir / "runtime"
    layer.mkdir(parents=True, exist_ok=True)
    pip = f"{PY313} -m pip"
    subprocess.run(["make", "-s", "-C", str(ROOT / "layers" / "vpce_guard"), "build-VpceGuardLayer",
                    f"ARTIFACTS_DIR={layer}", "LAMBDA_ARCH=x86_64", "LAMBDA_PYTHON=3.13", f"PIP={pip}"],
                   check=True, capture_output=True, text=True)
    pins = [line.strip() for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines()
            if line.split("==")[0].strip().lower() in RUNTIME_PACKAGES]
    subprocess.run([str(PY313), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                    "--target", str(runtime), "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                    "--python-version", "3.13", "--only-binary=:all:", *pins, RUNTIME_CLIENT],
                   check=True, capture_output=True, text=True)
    # Lambda's runtime ships its bytecode; the layer has exactly what its Makefile compiled (the probe writes none).
    subprocess.run([str(PY313), "-m", "compileall", "-q", "-j0", str(runtime)], check=True, capture_output=True)
    return ([str(PY313), "-S"], [str(layer / "python"), str(runtime)],
            "Python 3.13 without site-packages: the function's code, the layer as its Makefile builds it (for "
            "x86_64), then boto3 and Lambda's runtime client, imported first as Lambda's bootstrap does")


def import_times(fn: template.FunctionSpec, python: list[str], extra_paths: list[str],
                 runs: int = RUNS) -> dict[str, Any]:
    probe = _probe_spec(fn)
    if extra_paths:  # the built layer replaces the source folder; boto3 comes after it, as in Lambda
        probe["paths"] = [str(fn.code_dir), *extra_paths]
    spec = json.dumps(probe)
    samples = []
    for _ in range(runs):
        out = subprocess.run([*python, "-c", _PROBE, spec], capture_output=True, text=True, check=True,
                             env=_clean_env(), cwd=tempfile.gettempdir())
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    by_package = _import_breakdown(python, spec)
    return {
        "function": fn.logical_id, "runs": runs,
        "wall_ms_median": round(statistics.median(s["wall_ms"] for s in samples), 1),
        "cpu_ms_median": round(statistics.median(s["cpu_ms"] for s in samples), 1),
        "wall_ms_min": round(min(s["wall_ms"] for s in samples), 1),
        "top_packages_ms": by_package,
        "load_average": round(os.getloadavg()[0], 2),
    }


def _import_breakdown(python: list[str], spec: str) -> dict[str, float]:
    """Self time of every module imported, added up per top-level package (`python -X importtime`)."""
    out = subprocess.run([*python, "-X", "importtime", "-c", _PROBE, spec], capture_output=True, text=True,
                         check=True, env=_clean_env(), cwd=tempfile.gettempdir())
    totals: Counter[str] = Counter()
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)", line)
        if m:
            totals[m.group(3).split(".")[0]] += int(m.group(1)) / 1000
    return {k: round(v, 1) for k, v in totals.most_common(8)}


# ------------------------------------------------------------------------------------------- artifact size
def _sam() -> str | None:
    local = ROOT / ".venv-sam" / "bin" / "sam"
    return str(local) if local.exists() else shutil.which("sam")


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build_sizes() -> dict[str, Any]:
    tpl = template.load()
    layers = [k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::Serverless::LayerVersion"]
    functions = template.functions(tpl)
    with tempfile.TemporaryDirectory(prefix="vpce-guard-bench-build-") as tmp:
        build = Path(tmp) / "build"
        sam = _sam()
        method = "sam build"
        if sam:
            proc = subprocess.run([sam, "build", "--template-file", str(ROOT / "template.yaml"), "--build-dir",
                                   str(build), "--base-dir", str(ROOT)], check=False, capture_output=True, text=True,
                                  cwd=ROOT)
            if proc.returncode != 0:
                sam = None
        if not sam:
            method = "Makefile build targets (what sam build runs for BuildMethod: makefile)"
            pip = f"{sys.executable} -m pip"
            for logical_id in [*layers, *functions]:
                uri = tpl["Resources"][logical_id]["Properties"].get("ContentUri") or tpl["Resources"][logical_id][
                    "Properties"]["CodeUri"]
                out = build / logical_id
                out.mkdir(parents=True)
                subprocess.run(["make", "-s", "-C", str(ROOT / uri), f"build-{logical_id}", f"ARTIFACTS_DIR={out}",
                                f"PIP={pip}"], check=True, capture_output=True, text=True)
        sizes = {lid: _tree_size(build / lid) for lid in [*layers, *functions]}
        layer_packages: dict[str, int] = {}
        for lid in layers:
            pkg_root = build / lid / "python"
            if pkg_root.is_dir():
                per = {p.name: (_tree_size(p) if p.is_dir() else p.stat().st_size) for p in pkg_root.iterdir()}
                layer_packages = dict(sorted(per.items(), key=lambda kv: -kv[1])[:8])
                bundled = sorted(n for n in per if n.split("-")[0] in {"boto3", "botocore", "s3transfer"})
    return {
        "method": method,
        "bytes": sizes,
        "total_bytes": sum(sizes.values()),
        "total_mb": round(sum(sizes.values()) / 1e6, 2),
        "layer_largest": {k: round(v / 1e6, 2) for k, v in layer_packages.items()},
        "bundles_boto": bundled if layers else [],
    }


def run(runs: int = RUNS) -> dict[str, Any]:
    resources = {"LedgerTable": "vpce-guard-ledger"}
    tpl = template.load()
    imports = []
    first_event: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="vpce-guard-bench-py313-") as tmp:
        python, extra_paths, interpreter = lambda_like_python(Path(tmp))
        for fn in _function_specs(tpl, resources):
            imports.append(import_times(fn, python, extra_paths, runs))
            if fn.logical_id == FIRST_EVENT_FUNCTION:
                variants = [Variant("today", fn, extra_paths or [str(d) for d in fn.layer_dirs], tpl)]
                baseline = baseline_variant(Path(tmp), extra_paths)
                if baseline is not None:
                    variants.append(baseline)
                first_event = first_event_times(variants, python, resources["LedgerTable"], runs)
    return {"interpreter": interpreter, "imports": imports, "first_event": first_event, "artifacts": build_sizes()}


def _function_specs(tpl: dict[str, Any], resources: dict[str, str]) -> list[template.FunctionSpec]:
    out = []
    for logical_id in template.functions(tpl):
        try:
            fn = template.function_spec(logical_id, resources=resources, tpl=tpl)
        except KeyError:
            # A function referring to resources this benchmark does not name: resolve them to their logical id.
            names = {k: k for k in tpl["Resources"]}
            names.update({f"{k}.Arn": f"arn:aws:bench:::{k}" for k in tpl["Resources"]})
            fn = template.function_spec(logical_id, resources={**names, **resources}, tpl=tpl)
        out.append(fn)
    return out


if __name__ == "__main__":
    print(json.dumps(run(5), indent=2))
