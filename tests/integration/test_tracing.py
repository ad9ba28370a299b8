"""Tracing is a template parameter: off (PassThrough, the default) loads no tracing code at all; Active
gives every handler Powertools' Tracer. Each case imports a handler in a fresh process, with the
environment template.yaml gives it, so what is in sys.modules afterwards is what a cold start loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devkit import template

PROBE = r"""
import importlib.util, json, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["paths"]
mod_spec = importlib.util.spec_from_file_location("app", spec["file"])
module = importlib.util.module_from_spec(mod_spec)
mod_spec.loader.exec_module(module)
print(json.dumps({"tracer": type(module.tracer).__name__,
                  "xray_loaded": any(m.startswith("aws_xray_sdk") for m in sys.modules)}))
"""


def _import_handler(function: str, tracing: str | None) -> dict[str, object]:
    overrides = {"Tracing": tracing} if tracing else None
    # Resources the environment names by Ref/GetAtt resolve to their logical ids: only the import matters here.
    names = {**{k: k for k in TEMPLATE["Resources"]}, **{f"{k}.Arn": f"arn:aws:test:::{k}" for k in TEMPLATE["Resources"]}}
    spec = template.function_spec(function, resources={**names, "LedgerTable": "ledger"}, overrides=overrides,
                                  tpl=TEMPLATE)
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}, **spec.environment,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_LAMBDA_FUNCTION_NAME": function}
    probe = {"paths": [str(spec.code_dir), *(str(d) for d in spec.layer_dirs)],
             "file": str(spec.code_dir / f"{spec.handler_module}.py")}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(probe)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


TEMPLATE = template.load()


@pytest.mark.parametrize("function", template.functions(TEMPLATE))
def test_tracing_off_by_default_loads_no_xray_sdk(function: str) -> None:
    assert _import_handler(function, None) == {"tracer": "Untraced", "xray_loaded": False}


def test_tracing_active_gives_handlers_the_powertools_tracer() -> None:
    assert _import_handler("OnChangeFunction", "Active") == {"tracer": "Tracer", "xray_loaded": True}
