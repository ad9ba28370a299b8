"""README.md and docs/ stay true to the repository and to each other.

README.md is the front door (at most MAX_README_LINES lines): three quick-start commands and what they need, a
table of contents that links every file in docs/, and the rule table. docs/configuration.md documents every
template parameter and declared environment variable; every `make` target and Python module the docs name
exists; every relative link between the docs resolves, anchors included (GitHub's heading slugs); no document
repeats a heading; and the docs speak of the product and its users, never of the machine they were written on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devkit import cli as vpce_guard_cli
from devkit import template

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MAKEFILE = (ROOT / "Makefile").read_text()
TEMPLATES = sorted({ROOT / "template.yaml", *(ROOT / "templates").glob("*.yaml")})

MAX_README_LINES = 300
#: The documents the README's table of contents must link (others may be added: every docs/*.md is checked).
REQUIRED_DOCS = ("architecture", "configuration", "cost", "deploy", "development", "ledger", "operations",
                 "performance", "rules")
#: Sentences about the machine or session a document was written on, not about the product. Each was found in
#: an earlier README ("every other command here was run on a machine without either", "there is no 3.14
#: interpreter here", "This machine kind has no image registry", "on this shared machine").
MACHINE_TALK = ("this machine", "machine kind", "run on a machine without", "interpreter here",
                "two minutes here", "shared 2-core machine", "this shared machine", "on this server",
                "about 0.25 s here", "could not prove it", "in this session", "on this host")


def _read(path: Path) -> str:
    return path.read_text()


def _docs() -> list[Path]:
    """Every document a user reads: the README, SECURITY.md, CHANGELOG.md and docs/."""
    return [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def _without_code(text: str) -> str:
    """The text outside fenced code blocks (headings and links inside them are not headings or links)."""
    return re.sub(r"^[ \t]*```.*?^[ \t]*```[^\n]*$", "", text, flags=re.S | re.M)


def _headings(text: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"^(#{1,6}) (.+)$", _without_code(text), flags=re.M)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces
    to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else None]


README = _read(ROOT / "README.md")


def test_slug_is_githubs() -> None:
    assert slug("Why python3.13 on arm64") == "why-python313-on-arm64"
    assert slug("Spoke template parameters (`templates/spoke.yaml`)") == "spoke-template-parameters-templatesspokeyaml"
    assert slug("Delivery, retries and failures") == "delivery-retries-and-failures"
    assert slug("Across an organization: hub, spokes, sweep") == "across-an-organization-hub-spokes-sweep"


# -- the README: the front door ----------------------------------------------------------------------------


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= MAX_README_LINES, len(README.splitlines())


def test_readme_has_the_front_door_sections_and_a_picture_of_the_flow() -> None:
    for title in ("Quick start", "Documentation", "What it checks"):
        assert f"\n## {title}\n" in README, title
    assert "```mermaid" in README


def test_quick_start_is_the_demo_the_command_and_the_tests() -> None:
    blocks = re.findall(r"```sh[^\n]*\n(.*?)```", _section(README, "Quick start"), flags=re.S)
    commands = [line.split("#")[0].strip() for block in blocks for line in block.strip().splitlines()]
    assert commands == ["make demo", ".venv/bin/vpce-guard --help", "make test"]


def test_quick_start_says_what_it_needs_and_what_skips() -> None:
    quick = _section(README, "Quick start")
    assert "PyPI" in quick
    assert re.search(r"\d+ MB of disk", quick), "the disk the virtualenvs take"
    assert "`make sam-venv`" in quick, "which tests skip without the SAM CLI, and how to run them"


def test_every_required_doc_exists_and_every_doc_is_in_the_table_of_contents() -> None:
    toc = _section(README, "Documentation")
    linked = set(re.findall(r"\]\(docs/([\w-]+)\.md\)", toc))
    for name in REQUIRED_DOCS:
        assert (DOCS / f"{name}.md").is_file(), f"docs/{name}.md is missing"
    for path in DOCS.glob("*.md"):
        assert path.stem in linked, f"docs/{path.name} has no row in the README's Documentation table"


# -- what the docs name exists -----------------------------------------------------------------------------


def test_configuration_documents_every_parameter_and_declared_variable() -> None:
    reference = _read(DOCS / "configuration.md")
    for path in TEMPLATES:
        tpl = template.load(path)
        for name in tpl.get("Parameters", {}):
            assert f"`{name}`" in reference, f"{path.name}: parameter {name} is not in docs/configuration.md"
        variables = set(tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        for res in tpl.get("Resources", {}).values():
            variables |= set(res.get("Properties", {}).get("Environment", {}).get("Variables", {}) or {})
        for name in variables:
            assert f"`{name}`" in reference, f"{path.name}: environment variable {name} is not in docs/configuration.md"


@pytest.mark.parametrize("path", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_make_targets_and_python_modules_named_exist(path: Path) -> None:
    text = _read(path)
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", MAKEFILE, flags=re.M))
    # `make x` in code spans, and commands at the start of a line in code blocks (not "make up" in prose)
    for target in set(re.findall(r"(?:`|^\s*)make ([a-z][a-z0-9-]+)", text, flags=re.M)):
        assert target in targets, f"{path.name} names `make {target}`, which the Makefile does not have"
    for package, module in set(re.findall(r"python -m (devkit|benchmarks)\.([a-z_]+)", text)):
        assert (ROOT / package / f"{module}.py").is_file(), f"{path.name} names {package}.{module}"
    for module in set(re.findall(r"python -m vpce_guard\.([a-z_]+)", text)):
        assert (ROOT / "layers" / "vpce_guard" / "vpce_guard" / f"{module}.py").is_file(), module
    subcommands = set(vpce_guard_cli.build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for name in set(re.findall(r"(?:`|bin/)vpce-guard ([a-z][a-z-]+)", text)):
        assert name in subcommands, f"{path.name} names `vpce-guard {name}`, which is not a subcommand"


# -- links and headings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _docs(), ids=lambda p: p.name)
def test_relative_links_resolve_to_files_and_headings(path: Path) -> None:
    own = {slug(h) for h in _headings(_read(path))}
    for target in re.findall(r"\]\(([^)\s]+)\)", _without_code(_read(path))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: link {target} points at nothing"
        if anchor:
            assert linked.suffix == ".md", f"{path.name}: anchor on a file that is not a document: {target}"
            slugs = own if linked == path else {slug(h) for h in _headings(_read(linked))}
            assert anchor in slugs, f"{path.name}: link {target}: no such heading in {linked.name}"


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "SECURITY.md", *sorted(DOCS.glob("*.md"))],
                         ids=lambda p: p.name)
def test_no_document_repeats_a_heading(path: Path) -> None:
    # (CHANGELOG.md repeats "Added" and "Changed" per release, as Keep a Changelog does; its anchors are the
    # releases.)
    slugs = [slug(h) for h in _headings(_read(path))]
    repeated = sorted({s for s in slugs if slugs.count(s) > 1})
    assert not repeated, f"{path.name} repeats headings: {repeated}"


# -- the docs speak of the product -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*_docs(), *sorted((ROOT / "benchmarks" / "results").glob("*.md"))],
                         ids=lambda p: p.name)
def test_docs_speak_of_the_product_not_of_the_machine_they_were_written_on(path: Path) -> None:
    text = _read(path).lower()
    found = [phrase for phrase in MACHINE_TALK if phrase in text]
    assert not found, f"{path.name}: {found}"
