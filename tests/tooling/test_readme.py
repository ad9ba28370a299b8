"""README.md stays true to the repository: two quick-start commands, every template parameter and declared
environment variable in the configuration reference, every `make` target and `devkit` module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

from devkit import template

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
TEMPLATES = sorted({ROOT / "template.yaml", *(ROOT / "templates").glob("*.yaml")})


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start: end if end != -1 else None]


def test_quick_start_is_exactly_two_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", _section("Quick start"), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_required_sections_exist() -> None:
    for title in ("Quick start", "What it checks", "Architecture", "Deploy", "Configuration reference",
                  "Operations", "Development"):
        assert f"\n## {title}\n" in README, title
    assert "```mermaid" in _section("Architecture")


def test_every_parameter_and_declared_variable_is_in_the_configuration_reference() -> None:
    reference = _section("Configuration reference")
    for path in TEMPLATES:
        tpl = template.load(path)
        for name in tpl.get("Parameters", {}):
            assert f"`{name}`" in reference, f"{path.name}: parameter {name} is not documented"
        variables = set(tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        for res in tpl.get("Resources", {}).values():
            variables |= set(res.get("Properties", {}).get("Environment", {}).get("Variables", {}) or {})
        for name in variables:
            assert f"`{name}`" in reference, f"{path.name}: environment variable {name} is not documented"


def test_make_targets_and_devkit_modules_named_exist() -> None:
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", MAKEFILE, flags=re.M))
    # `make x` in code spans, and commands at the start of a line in code blocks (not "make up" in prose)
    for target in set(re.findall(r"(?:`|^\s*)make ([a-z][a-z0-9-]+)", README, flags=re.M)):
        assert target in targets, f"README names `make {target}`, which the Makefile does not have"
    for module in set(re.findall(r"python -m devkit\.([a-z_]+)", README)):
        assert (ROOT / "devkit" / f"{module}.py").is_file(), module
