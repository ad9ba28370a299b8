"""`sam build` (no Docker) with the pinned SAM CLI in .venv-sam (`sam validate --lint` of every template:
tests/unit/test_org_templates.py, which uses the same SAM CLI).

Skipped, with the reason printed, when .venv-sam is absent (`make sam-venv` creates it; `make sam-check` runs
the same two commands)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devkit import template

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"

pytestmark = pytest.mark.skipif(not SAM.exists(), reason=f"SAM CLI venv absent ({SAM}); run `make sam-venv`")
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}


def test_sam_build_vendors_the_layer_for_arm64_without_docker(tmp_path: Path) -> None:
    build = tmp_path / "build"
    proc = subprocess.run([str(SAM), "build", "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, env={**ENV, "LAMBDA_ARCH": "arm64"},
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Build Succeeded" in proc.stdout + proc.stderr
    layer = build / "VpceGuardLayer" / "python"
    assert (layer / "vpce_guard" / "pipeline.py").is_file()
    compiled = sorted(p.name for p in layer.rglob("*.so"))
    assert compiled and all("aarch64" in name for name in compiled), compiled
    assert any(name.startswith("_pydantic_core.cpython-313-") for name in compiled), compiled
    assert not [p for p in layer.iterdir() if p.name.split("-")[0] in {"boto3", "botocore", "s3transfer"}], (
        "boto3/botocore come from the Lambda runtime and must not be bundled")
    for function in template.functions():
        props = template.load()["Resources"][function]["Properties"]
        handler_file = props.get("Handler", "").rpartition(".")[0] + ".py"
        assert (build / function / handler_file).is_file(), f"{function}: {handler_file} not in its build"
