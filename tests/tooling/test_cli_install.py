"""`make venv` installs one console command, `vpce-guard`, and makes the packages it runs importable without
PYTHONPATH; the `python -m …` forms keep working, from any directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.commands import ROOT, VPCE_GUARD, clean_env, run

PYTHON = ROOT / ".venv" / "bin" / "python"
SUBCOMMANDS = ("invoke", "report", "exemptions", "flapping", "rollback", "sandbox", "demo")


@pytest.fixture
def venv() -> None:
    if not PYTHON.exists():
        pytest.fail("no .venv: run `make venv` (it installs the vpce-guard command)")


def test_vpce_guard_help_lists_every_subcommand(venv: None, tmp_path: Path) -> None:
    proc = run([str(VPCE_GUARD), "--help"], clean_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in SUBCOMMANDS:
        assert f"    {name} " in proc.stdout or f"    {name}\n" in proc.stdout, (name, proc.stdout)


@pytest.mark.parametrize("module", ["vpce_guard.admin", "devkit.report", "devkit.local", "devkit.sandbox",
                                    "devkit.demo", "devkit.cli"])
def test_python_dash_m_works_without_pythonpath_from_any_directory(venv: None, tmp_path: Path, module: str) -> None:
    proc = run([str(PYTHON), "-m", module, "--help"], clean_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_every_package_is_in_the_project_s_package_list() -> None:
    """A package missing from pyproject.toml's list would be left out of any non-editable build."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    roots = {"devkit": ROOT / "devkit", "vpce_guard": ROOT / "layers" / "vpce_guard" / "vpce_guard"}
    found = {".".join((name, *init.parent.relative_to(path).parts))
             for name, path in roots.items() for init in path.rglob("__init__.py")}
    assert found == listed
