"""Every user error ends in one line on stderr that says what to do, with exit code 2 (the command line or a
file it names is wrong) or 1 (AWS or the environment said no); `--debug` adds the traceback.

Run as a person runs them: fresh processes, no AWS configuration in the environment.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tests.support.commands import clean_env, run, stderr_lines

pytestmark = pytest.mark.e2e

PY = sys.executable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line(proc, code: int, *fragments: str) -> str:  # type: ignore[no-untyped-def]
    lines = stderr_lines(proc)
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and proc.stdout == "", (proc.stdout[-2000:], proc.stderr[-2000:])
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------- the defects the issue observed ----

def test_make_report_with_no_arguments_says_which_flag_gives_the_region(tmp_path: Path) -> None:
    """`make report` runs the report with no arguments; it ended in a NoRegionError traceback."""
    proc = run([PY, "-m", "devkit.report"], clean_env(tmp_path))
    _one_line(proc, 2, "--region")


def test_invoke_with_a_missing_event_file_names_the_file(tmp_path: Path) -> None:
    """It ended in a raw FileNotFoundError traceback (a missing --env-vars file got a clean message)."""
    proc = run([PY, "-m", "devkit.local", "invoke", "OnChangeFunction", "-e", "events/nope.json"], clean_env(tmp_path))
    _one_line(proc, 2, "events/nope.json")


def test_invoke_against_an_unreachable_endpoint_says_so_in_one_line(tmp_path: Path) -> None:
    """It printed a one-line JSON holding a whole traceback."""
    url = f"http://127.0.0.1:{_closed_port()}"
    proc = run([PY, "-m", "devkit.local", "invoke", "OnChangeFunction", "-e", "events/modify-vpc-endpoint.json",
                "--endpoint-url", url], clean_env(tmp_path))
    _one_line(proc, 1, url)
