"""samconfig.toml: the named environments an operator deploys with, checked against template.yaml so a renamed
parameter or a value the template would reject fails here instead of in CloudFormation."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from devkit import template

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
PARAMS: dict[str, Any] = template.load()["Parameters"]


def overrides(text: str) -> dict[str, str]:
    """SAM's `Key=Value Key2="a b"` form."""
    return dict(part.split("=", 1) for part in shlex.split(text))


def _sections() -> list[tuple[str, str, dict[str, Any]]]:
    return [(env, cmd, params) for env, cmds in CONFIG.items() if isinstance(cmds, dict)
            for cmd, body in cmds.items() for params in [body.get("parameters", {})]]


def test_dev_and_prod_deploy_without_further_flags() -> None:
    for env in ("default", "prod"):
        deploy = CONFIG[env]["deploy"]["parameters"]
        stack = deploy.get("stack_name") or CONFIG[env]["global"]["parameters"]["stack_name"]
        assert stack and deploy["capabilities"] and deploy["resolve_s3"] is True, env
    assert CONFIG["default"]["global"]["parameters"]["stack_name"] != CONFIG["prod"]["global"]["parameters"]["stack_name"]
    assert overrides(CONFIG["prod"]["deploy"]["parameters"]["parameter_overrides"])["Mode"] == "enforce"


@pytest.mark.parametrize(("env", "cmd", "params"), [s for s in _sections() if "parameter_overrides" in s[2]],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_parameter_overrides_name_real_parameters_with_allowed_values(env: str, cmd: str, params: dict[str, Any]) -> None:
    for key, value in overrides(params["parameter_overrides"]).items():
        assert key in PARAMS, f"[{env}.{cmd}] {key} is not a parameter of template.yaml"
        spec = PARAMS[key]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], f"[{env}.{cmd}] {key}={value}"
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), f"[{env}.{cmd}] {key}={value}"
        if spec.get("Type") == "Number":
            assert float(spec.get("MinValue", "-inf")) <= float(value) <= float(spec.get("MaxValue", "inf"))


def test_local_invoke_environment_points_at_the_x86_64_build_and_local_image() -> None:
    local = CONFIG["local"]["local_invoke"]["parameters"]
    assert local["skip_pull_image"] is True
    assert overrides(local["parameter_overrides"]) == {"Architecture": "x86_64"}
    assert local["template_file"].endswith("build-x86_64/template.yaml")
