"""`vpce-guard demo` (`make demo`) end to end: a real moto server process, the real handlers, a clean exit,
nothing left running, and every next step it prints runs as printed."""

from __future__ import annotations

import json
import re
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.commands import clean_env, long_running, printed_commands, run, workdir

pytestmark = pytest.mark.e2e


def test_demo_fixes_seeded_drift_and_stops_its_server(tmp_path: Path) -> None:
    cwd, env = workdir(tmp_path), clean_env(tmp_path)
    proc = run(".venv/bin/vpce-guard demo", env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "remediated" in out
    assert "Deny[VpceGuardDenyOutsideOrg]" in out
    assert "moto server stopped" in out
    assert "0 findings still open" in out and "1 event(s) skipped" in out
    by_sweep = int(re.search(r"remediations \((\d+) by the sweep\)", out).group(1))
    assert by_sweep > 0, "the sweep found drift no event reported"
    assert re.search(r"summary: complete, \d+ endpoints seen", out) and "0 units failed" in out
    assert re.search(r"member1 eu-west-1 s3 +endpoint-policy-org-confined +remediated", out), (
        "an event from a member account is acted on in that account")
    assert re.search(r"hub payments \(VPC\) +private-dns-vpc-dns +remediated", out), "DNS off under private DNS"
    assert re.search(r"hub analytics \(VPC\) +support OFF, hostnames OFF +support on", out), "DNS resolution restored"
    port = int(re.search(r"moto server: http://127\.0\.0\.1:(\d+)", out).group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the demo's moto server is still listening"
    for section in ("before → after", "ledger report: current state", "ledger report: remediations",
                    "Where to look next"):
        assert section in out
    from devkit.demo import NEXT_STEPS

    assert NEXT_STEPS.strip() in out, "the next steps the test below runs are the ones printed"


def test_every_next_step_the_demo_prints_runs_as_printed(tmp_path: Path) -> None:
    """Run in the order printed, from the directory the demo ran in: the sandbox stays up (as in the
    terminal it was started in) while the commands after it run against the files it wrote."""
    from devkit.demo import NEXT_STEPS

    cwd, env = workdir(tmp_path), clean_env(tmp_path)
    commands = printed_commands(NEXT_STEPS)
    assert [c.split()[1] for c in commands] == ["--help", "sandbox", "invoke"], commands
    with ExitStack() as servers:
        for command in commands:
            if command.split()[1] == "sandbox":
                servers.enter_context(long_running(command, env, cwd=cwd))
                continue
            done = run(command, env, cwd=cwd)
            assert done.returncode == 0, command + "\n" + done.stderr[-3000:]
            if command.split()[1] == "invoke":
                assert json.loads(done.stdout)["counts"].get("remediated", 0) > 0, done.stdout
            else:
                assert "usage: vpce-guard" in done.stdout
