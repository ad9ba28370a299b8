"""`make sandbox`: the demo's world stays up for hand-made invocations; the commands it prints work as printed,
and Ctrl-C/SIGTERM leaves nothing running."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_sandbox_prints_commands_that_work_and_stops_cleanly(tmp_path: Path) -> None:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    proc = subprocess.Popen([sys.executable, "-m", "devkit.sandbox", "--dir", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env)
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip() == "ready":
                break
        text = "\n".join(lines)
        assert text.endswith("ready"), text
        url = re.search(r"moto server (http://\S+):", text).group(1)
        commands = [ln.strip() for ln in lines if ln.strip().startswith(".venv/bin/python -m devkit.")]
        assert len(commands) == 3, text
        assert sorted(p.name for p in (tmp_path / "events").iterdir()) == sorted(
            p.name for p in (ROOT / "events").glob("*.json"))
        env_vars = json.loads((tmp_path / "env.json").read_text())
        assert {fn: env_vars[fn]["AWS_ENDPOINT_URL"] for fn in env_vars} == {
            "OnChangeFunction": url, "SweepFunction": url, "SweepWorkerFunction": url}

        def run(command: str) -> str:
            argv = shlex.split(command)
            argv[0] = sys.executable  # the printed .venv/bin/python, whichever venv runs the tests
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=clean_env, timeout=120,
                                  check=False)
            assert done.returncode == 0, command + "\n" + done.stderr[-3000:]
            return done.stdout

        result = json.loads(run(commands[0]))
        assert result["counts"]["remediated"] == 2 and "failed" not in result["counts"], result["counts"]
        plan = json.loads(run(commands[1]))
        assert plan["accounts"] == 1 and plan["units"] == 1, "the sweep planned the sandbox's account and region"
        findings = run(commands[2])
        assert "endpoint-policy-org-confined" in findings and "remediated" in findings
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0
    assert "moto server stopped." in rest
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the sandbox's moto server is still listening"
