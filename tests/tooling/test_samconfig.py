"""samconfig.toml: the named environments an operator deploys with, checked against the templates they deploy,
so a renamed parameter, a missing required one or a value the template would reject fails here instead of in
CloudFormation. `<placeholder>` values are the operator's to fill in (CloudFormation refuses them)."""

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
PLACEHOLDER = re.compile(r"^<[a-z0-9-]+>$")
DEPLOY_ENVS = [env for env, cmds in CONFIG.items() if isinstance(cmds, dict) and "deploy" in cmds]


def overrides(text: str) -> dict[str, str]:
    """SAM's `Key=Value Key2="a b"` form."""
    return dict(part.split("=", 1) for part in shlex.split(text))


def _template_of(env: str, command: str) -> dict[str, Any]:
    name = CONFIG[env].get(command, {}).get("parameters", {}).get("template_file", "template.yaml")
    if "build-x86_64" in name:  # the built copy of template.yaml (local invoke)
        name = "template.yaml"
    return template.load(ROOT / name)


def _sections() -> list[tuple[str, str, dict[str, Any]]]:
    return [(env, cmd, body.get("parameters", {})) for env, cmds in CONFIG.items() if isinstance(cmds, dict)
            for cmd, body in cmds.items()]


def test_environments_for_the_hub_and_the_spoke() -> None:
    assert {"default", "prod", "spoke-management", "local"} <= set(CONFIG)
    stacks = {env: CONFIG[env]["global"]["parameters"]["stack_name"] for env in DEPLOY_ENVS}
    assert len(set(stacks.values())) == len(stacks), stacks
    for env in DEPLOY_ENVS:
        deploy = CONFIG[env]["deploy"]["parameters"]
        assert deploy["capabilities"] and deploy["confirm_changeset"] is True, env
    assert CONFIG["spoke-management"]["deploy"]["parameters"]["template_file"] == "templates/spoke.yaml"
    assert "CAPABILITY_NAMED_IAM" in CONFIG["spoke-management"]["deploy"]["parameters"]["capabilities"], (
        "the spoke names its role")
    assert overrides(CONFIG["prod"]["deploy"]["parameters"]["parameter_overrides"])["Mode"] == "enforce"
    assert overrides(CONFIG["default"]["deploy"]["parameters"]["parameter_overrides"])["Mode"] == "dry_run"


@pytest.mark.parametrize("env", DEPLOY_ENVS)
def test_every_required_parameter_is_set_or_a_placeholder(env: str) -> None:
    params = _template_of(env, "deploy")["Parameters"]
    given = overrides(CONFIG[env]["deploy"]["parameters"].get("parameter_overrides", ""))
    required = {name for name, spec in params.items() if "Default" not in spec}
    assert required <= set(given), f"[{env}] set (or leave a <placeholder> for) {sorted(required - set(given))}"


@pytest.mark.parametrize(("env", "cmd", "params"), [s for s in _sections() if "parameter_overrides" in s[2]],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_parameter_overrides_name_real_parameters_with_allowed_values(env: str, cmd: str, params: dict[str, Any]) -> None:
    declared = _template_of(env, cmd)["Parameters"]
    for key, value in overrides(params["parameter_overrides"]).items():
        assert key in declared, f"[{env}.{cmd}] {key} is not a parameter of the template it deploys"
        if PLACEHOLDER.match(value):
            continue
        spec = declared[key]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], f"[{env}.{cmd}] {key}={value}"
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), f"[{env}.{cmd}] {key}={value}"
        if spec.get("Type") == "Number":
            assert float(spec.get("MinValue", "-inf")) <= float(value) <= float(spec.get("MaxValue", "inf"))


def test_placeholders_are_refused_by_their_parameter() -> None:
    """A placeholder left in must stop the deploy: it may not satisfy the parameter's pattern."""
    for env in DEPLOY_ENVS:
        declared = _template_of(env, "deploy")["Parameters"]
        for key, value in overrides(CONFIG[env]["deploy"]["parameters"]["parameter_overrides"]).items():
            if PLACEHOLDER.match(value):
                spec = declared[key]
                pattern = spec.get("AllowedPattern")
                if pattern:
                    assert not re.fullmatch(pattern, value), (env, key)
                else:  # lists take no pattern; the StackSet refuses "<…>" as an OU or region (stack rolls back)
                    assert spec["Type"] == "CommaDelimitedList", (env, key, spec)


def test_local_invoke_environment_points_at_the_x86_64_build_and_local_image() -> None:
    local = CONFIG["local"]["local_invoke"]["parameters"]
    assert local["skip_pull_image"] is True
    assert overrides(local["parameter_overrides"]) == {"Architecture": "x86_64"}
    assert local["template_file"].endswith("build-x86_64/template.yaml")
