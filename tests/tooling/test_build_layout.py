"""Every function and layer in every template builds without Docker: `BuildMethod: makefile` and a Makefile
with the `build-<LogicalId>` target SAM calls. A function added without one fails here, not at deploy time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devkit import template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted({ROOT / "template.yaml", *(ROOT / "templates").glob("*.yaml")})
BUILT_TYPES = ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")


def _built_resources() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path in TEMPLATES:
        for logical_id, res in template.load(path).get("Resources", {}).items():
            if res.get("Type") in BUILT_TYPES:
                out.append((path.name, logical_id, res))
    return out


def test_the_main_template_has_functions_to_build() -> None:
    assert [r for r in _built_resources() if r[0] == "template.yaml" and r[2]["Type"] == BUILT_TYPES[0]]


@pytest.mark.parametrize(("tpl", "logical_id", "res"), _built_resources(), ids=lambda v: v if isinstance(v, str) else "")
def test_built_with_a_makefile_target_of_its_own(tpl: str, logical_id: str, res: dict[str, Any]) -> None:
    props = res.get("Properties", {})
    assert res.get("Metadata", {}).get("BuildMethod") == "makefile", (
        f"{tpl}:{logical_id}: set Metadata.BuildMethod: makefile (docs/development.md: adding a function)")
    uri = props.get("CodeUri") or props.get("ContentUri")
    assert isinstance(uri, str), f"{tpl}:{logical_id}: CodeUri/ContentUri must be a local folder"
    makefile = (ROOT / uri / "Makefile")
    assert makefile.is_file(), f"{tpl}:{logical_id}: {uri}Makefile is missing"
    targets = re.findall(r"^([A-Za-z0-9_-]+):", makefile.read_text(), flags=re.M)
    assert f"build-{logical_id}" in targets, f"{makefile.relative_to(ROOT)} has no build-{logical_id} target"


def test_layer_build_architecture_default_matches_the_template() -> None:
    """SAM passes no architecture to a makefile build: the layer Makefile's default must be the template's."""
    default_arch = template.load()["Parameters"]["Architecture"]["Default"]
    makefile = (ROOT / "layers" / "vpce_guard" / "Makefile").read_text()
    assert re.search(rf"^LAMBDA_ARCH \?= {default_arch}$", makefile, flags=re.M)
    assert re.search(rf"^ARCH \?= {default_arch}$", (ROOT / "Makefile").read_text(), flags=re.M)
