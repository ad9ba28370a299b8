"""`make demo` end to end: a real moto server process, the real handler, a clean exit, nothing left running."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_demo_fixes_seeded_drift_and_stops_its_server() -> None:
    proc = subprocess.run([sys.executable, "-m", "devkit.demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
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
    # The endpoint service opened to `*`: acceptance turned on; the principals reported (removal is opt-in).
    assert re.search(r"hub orders-api \(service\) +endpoint-service-acceptance +remediated", out)
    assert re.search(r"hub orders-api \(service\) +endpoint-service-allowed-principals +non_compliant", out)
    assert re.search(r"hub orders-api \(service\) +acceptance +OFF +required", out)
    assert "1 reported for a person to decide" in out
    port = int(re.search(r"moto server: http://127\.0\.0\.1:(\d+)", out).group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the demo's moto server is still listening"
    for section in ("before → after", "ledger report: current state", "ledger report: remediations",
                    "Where to look next"):
        assert section in out
