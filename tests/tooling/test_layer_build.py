"""The layer as its Makefile builds it (what `sam build` runs) works: every handler imports from it, and the
on-change function handles a real event with it. The Makefile removes parts of vendored packages nothing
imports (to stay within the artifact budget) and the packages the Lambda runtime provides; a removal that
something needs fails here rather than in Lambda.

Built for this machine's Python (the test imports it here); the Lambda build differs only in the platform
tag of pydantic_core and in the bytecode version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devkit import template

ROOT = Path(__file__).resolve().parents[2]
LAYER_DIR = ROOT / "layers" / "vpce_guard"

RUN = r"""
import importlib.util, json, os, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = [spec["layer"]]
import aws_lambda_powertools, pydantic
assert aws_lambda_powertools.__file__.startswith(spec["layer"]), aws_lambda_powertools.__file__
assert pydantic.__file__.startswith(spec["layer"]), pydantic.__file__
from moto import mock_aws
import boto3
out = {}
with mock_aws():
    from devkit import template
    from devkit.lambda_context import LocalLambdaContext
    from devkit.seed import confined_policy, render_event, seed_vpc
    org = boto3.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
    template.create_tables(boto3.client("dynamodb"), template.tables_for(spec["ledger"]))
    world = seed_vpc(boto3.client("ec2"), "us-east-1", s3_policy=None, associate_all=False)
    for fn in spec["functions"]:
        os.environ.update(fn["env"])
        sys.path.insert(0, fn["code_dir"])
        m_spec = importlib.util.spec_from_file_location(f"app_{fn['name']}", fn["file"])
        module = importlib.util.module_from_spec(m_spec)
        m_spec.loader.exec_module(module)
        sys.path.remove(fn["code_dir"])
        if fn["name"] == "OnChangeFunction":
            result = module.lambda_handler(render_event("modify-vpc-endpoint.json", world.mapping()),
                                           LocalLambdaContext(function_name=fn["name"]))
            out[fn["name"]] = sorted({r["status"] for r in result["results"]})
        else:
            out[fn["name"]] = callable(module.lambda_handler)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("layer")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine)
    if arch is None:
        pytest.skip(f"no Lambda architecture for machine {os.uname().machine}")
    subprocess.run(["make", "-s", "-C", str(LAYER_DIR), "build-VpceGuardLayer", f"ARTIFACTS_DIR={out}",
                    f"LAMBDA_ARCH={arch}", f"LAMBDA_PYTHON={version}", f"PIP={sys.executable} -m pip",
                    f"PYC_PYTHON={sys.executable}"], check=True, capture_output=True, text=True)
    return out / "python"


def test_the_built_layer_leaves_out_what_the_runtime_provides_and_what_nothing_imports(built_layer: Path) -> None:
    present = {p.name for p in built_layer.iterdir()}
    assert {"vpce_guard", "aws_lambda_powertools", "pydantic", "pydantic_core"} <= present
    assert not present & {"boto3", "botocore", "s3transfer", "urllib3"}, "the Lambda runtime provides these"
    assert not (built_layer / "aws_lambda_powertools" / "event_handler").exists()
    assert not (built_layer / "pydantic" / "v1").exists()


def test_every_handler_runs_from_the_built_layer(built_layer: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tpl = template.load()
    names = {**{k: k for k in tpl["Resources"]}, **{f"{k}.Arn": f"arn:aws:test:::{k}" for k in tpl["Resources"]}}
    ledger = "vpce-guard-ledger"
    functions = []
    for logical_id in template.functions(tpl):
        fn = template.function_spec(logical_id, resources={**names, **template.tables_for(ledger, tpl),
                                                            "LedgerTable": ledger}, tpl=tpl)
        functions.append({"name": logical_id, "env": fn.environment, "code_dir": str(fn.code_dir),
                          "file": str(fn.code_dir / f"{fn.handler_module}.py")})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
                "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-c", RUN, json.dumps(
        {"layer": str(built_layer), "ledger": ledger, "functions": functions})], env=env, capture_output=True,
        text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "remediated" in out.pop("OnChangeFunction")  # the open policy and the missing route tables fixed
    assert out == {name: True for name in template.functions(tpl) if name != "OnChangeFunction"}
