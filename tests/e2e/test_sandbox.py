"""`vpce-guard sandbox`: the demo's world stays up for hand-made invocations; every command it prints runs as
printed from the directory it was started in, with the files it wrote; Ctrl-C/SIGTERM leaves nothing running."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import boto3
import pytest

from tests.support.commands import ROOT, clean_env, long_running, printed_commands, run, workdir

pytestmark = pytest.mark.e2e


def test_sandbox_prints_commands_that_run_as_printed_and_stops_cleanly(tmp_path: Path) -> None:
    cwd, env = workdir(tmp_path), clean_env(tmp_path)
    with long_running(".venv/bin/vpce-guard sandbox", env, cwd=cwd) as (_, lines):
        text = "\n".join(lines)
        url = re.search(r"moto server (http://\S+):", text).group(1)
        commands = printed_commands(text)
        assert len(commands) == 4, text
        written = cwd / ".local" / "sandbox"
        assert sorted(p.name for p in (written / "events").glob("*.json")) == sorted(
            p.name for p in (ROOT / "events").glob("*.json"))
        env_vars = json.loads((written / "env.json").read_text())
        assert {fn: env_vars[fn]["AWS_ENDPOINT_URL"] for fn in env_vars} == {
            "OnChangeFunction": url, "SweepFunction": url, "SweepWorkerFunction": url, "RollbackFunction": url}
        shell_env = (written / "env.sh").read_text()
        assert f"export AWS_ENDPOINT_URL={url}" in shell_env and "export LEDGER_TABLE=vpce-guard-ledger" in shell_env
        for command in commands:  # every file a command names is one the sandbox wrote
            for path in re.findall(r"(?:-e|--env-vars) (\S+)", command):
                assert (cwd / path).is_file(), (command, path)

        outputs = []
        for command in commands:
            done = run(command, env, cwd=cwd)
            assert done.returncode == 0, command + "\n" + done.stderr[-3000:]
            outputs.append(done.stdout)
        result = json.loads(outputs[0])
        assert result["counts"]["remediated"] == 2 and "failed" not in result["counts"], result["counts"]
        plan = json.loads(outputs[1])
        assert plan["accounts"] == 1 and plan["units"] == 1, "the sweep planned the sandbox's account and region"
        drained = json.loads(outputs[2])
        assert drained["processed"] == 1 and drained["responses"] == [{"batchItemFailures": []}], drained
        assert "endpoint-policy-org-confined" in outputs[3] and "remediated" in outputs[3]
        ledger = boto3.resource("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                                aws_secret_access_key="x").Table("vpce-guard-ledger")
        swept = [i for i in ledger.scan()["Items"] if (i.get("trigger") or {}).get("source") == "sweep"]
        assert swept, "the worker swept the unit: its records are in the ledger"
    assert "moto server stopped." in lines[-1]
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the sandbox's moto server is still listening"
