"""Every user error ends in one line on stderr that says what to do, with exit code 2 (the command line or a
file it names is wrong) or 1 (AWS or the environment said no); `--debug` adds the traceback.

Run as a person runs them: fresh processes, no AWS configuration in the environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import template
from tests.support.commands import ROOT, VPCE_GUARD, clean_env, run, stderr_lines

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


# ------------------------------------------------------------------------------ every user error, one line ----

VG = str(VPCE_GUARD)
EVENT = "events/modify-vpc-endpoint.json"
#: (id, argv after `vpce-guard`, exit code, what the line says). Without AWS: none of these reaches an AWS API.
OFFLINE_CASES = [
    ("report without a region", ["report"], 2, "no AWS region: pass --region"),
    ("missing event file", ["invoke", "OnChangeFunction", "-e", "events/nope.json"], 2,
     "--event events/nope.json: no such file"),
    ("missing env-vars file", ["invoke", "OnChangeFunction", "-e", EVENT, "--env-vars", "nope.json"], 2,
     "--env-vars nope.json: no such file"),
    ("event file that is not JSON", ["invoke", "OnChangeFunction", "-e", "README.md"], 2, "--event README.md: not JSON"),
    ("unknown function", ["invoke", "NoSuchFunction", "-e", EVENT], 2,
     "'NoSuchFunction' is not a function of template.yaml; its functions: OnChangeFunction"),
    ("no function", ["invoke"], 2, "name the function to invoke"),
    ("unknown template parameter", ["invoke", "OnChangeFunction", "-e", EVENT, "--parameter-overrides", "Modes=x"], 2,
     "not parameters of the template"),
    ("unknown profile", ["exemptions", "list", "--region", "us-east-1", "--profile", "nope"], 2,
     "there is no profile 'nope'"),
    ("no credentials (report)", ["report", "--region", "us-east-1", "--ledger-table", "t"], 1,
     "no AWS credentials: pass --profile"),
    ("no credentials (invoke)", ["invoke", "OnChangeFunction", "-e", EVENT, "--region", "us-east-1"], 1,
     "no AWS credentials: pass --profile"),
    ("unknown command", ["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ("bad option value", ["report", "--format", "xml"], 2, "argument --format: invalid choice: 'xml'"),
    ("option the command cannot use", ["--region", "us-east-1", "demo"], 2, "demo does not take --region"),
    ("exemption too long", ["exemptions", "add", "--region", "us-east-1", "--scope", "account", "--target",
                            "111122223333", "--reason", "r", "--owner", "o", "--days", "400"], 2, "at most 366 days"),
    ("not a URL", ["report", "--region", "us-east-1", "--endpoint-url", "localhost:5000"], 2,
     "'localhost:5000' is not an http(s) URL"),
    ("an event and a queue", ["invoke", "SweepWorkerFunction", "--from-queue", "q", "-e", EVENT], 2,
     "leave out -e/--event"),
]


@pytest.fixture(scope="module")
def vpce_guard() -> str:
    if not VPCE_GUARD.exists():
        pytest.fail("no .venv/bin/vpce-guard: run `make venv`")
    return VG


@pytest.mark.parametrize(("argv", "code", "says"), [c[1:] for c in OFFLINE_CASES], ids=[c[0] for c in OFFLINE_CASES])
def test_each_user_error_is_one_line_saying_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                                                      says: str) -> None:
    """In this process (the command's own code, without a process start per case; the ones above and below
    run the installed command)."""
    from devkit import cli as vpce_guard_cli

    for name in [n for n in os.environ if n.startswith(("AWS_", "POWERTOOLS_"))]:
        monkeypatch.delenv(name)
    for name, value in clean_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    returned = vpce_guard_cli.main(argv)
    out, err = capsys.readouterr()
    _one_line(subprocess.CompletedProcess(argv, returned, out, err), code, says)


def test_an_unreachable_endpoint_is_said_before_any_work(vpce_guard: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    for argv in (["invoke", "OnChangeFunction", "-e", EVENT, "--endpoint-url", url],
                 ["report", "--region", "us-east-1", "--endpoint-url", url],
                 ["--endpoint-url", url, "--region", "us-east-1", "exemptions", "list"]):
        line = _one_line(run([vpce_guard, *argv], clean_env(tmp_path)), 1, f"cannot reach {url}")
        assert "connection refused" in line, line


def test_debug_prints_the_traceback_then_the_same_line(vpce_guard: str, tmp_path: Path) -> None:
    plain = run([vpce_guard, "report"], clean_env(tmp_path))
    for argv in (["--debug", "report"], ["report", "--debug"]):
        debug = run([vpce_guard, *argv], clean_env(tmp_path))
        assert debug.returncode == plain.returncode == 2
        assert debug.stderr.startswith("Traceback (most recent call last):"), debug.stderr
        assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server with the hub's tables (named for the stack "cli") and no stack."""
    import boto3

    from devkit.moto_server import moto_server

    with moto_server() as url:
        dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                                aws_secret_access_key="x")
        template.create_tables(dynamodb, template.tables_for("cli-ledger"))
        yield url


def test_errors_aws_answers_are_one_line_too(vpce_guard: str, moto_url: str, tmp_path: Path) -> None:
    tables = {"exemptions": template.tables_for("cli-ledger")["ExemptionsTable"]}
    at = ["--region", "us-east-1", "--endpoint-url", moto_url]
    cases = [
        ([*at, "report", "--ledger-table", "nope"], 1, "the ledger table 'nope' does not exist in us-east-1"),
        ([*at, "report", "--stack", "nope"], 1, "no stack 'nope' in us-east-1: pass --stack"),
        ([*at, "exemptions", "list"], 1, "no stack 'vpce-guard' in us-east-1"),
        ([*at, "exemptions", "expire", "--exemptions-table", tables["exemptions"], "--scope", "account", "--target",
          "111122223333"], 1, "no account exemption for 111122223333"),
        ([*at, "invoke", "OnChangeFunction", "-e", EVENT], 1,
         "OnChangeFunction failed: a table it uses does not exist"),
        ([*at, "invoke", "SweepWorkerFunction", "--from-queue", "nope"], 1, "--from-queue nope: no such queue"),
        ([*at, "invoke", "OnChangeFunction", "--from-queue", "nope"], 2,
         "OnChangeFunction has no SQS event source in the template"),
    ]
    for argv, code, says in cases:
        _one_line(run([vpce_guard, *argv], clean_env(tmp_path)), code, says)
