"""`sam local invoke` for real: the on-change function in a Lambda container (the image `make local-image`
builds), against a moto server, with an events/ file. Run by `make test-container`, not by `make test`
(a first invoke builds SAM's emulator layer; later ones take a few seconds each).

Skipped, with the reason printed, when the SAM CLI venv is absent, when no Docker engine answers and none can
be started, or when the image is absent. An engine this test starts, it stops.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import sam_local

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[str, str]]:
    if not sam_local.SAM.exists():
        pytest.skip(f"SAM CLI venv absent ({sam_local.SAM}); run `make sam-venv`")
    host = sam_local.docker_host()
    started = False
    try:
        gateway = sam_local.check_ready(host)
    except sam_local.NotReady as first:
        if "engine" not in str(first):
            pytest.skip(f"cannot run sam local invoke here: {first}")
        start = subprocess.run(["bash", str(sam_local.LOCAL_IMAGE_SCRIPT), "start"], capture_output=True, text=True,
                               check=False, timeout=120)
        if start.returncode != 0:
            pytest.skip(f"no container runtime can start here: {start.stderr.strip().splitlines()[-1:]}")
        started = True
        try:
            gateway = sam_local.check_ready(host)
        except sam_local.NotReady as exc:
            subprocess.run(["bash", str(sam_local.LOCAL_IMAGE_SCRIPT), "stop"], check=False, timeout=120)
            pytest.skip(f"cannot run sam local invoke here: {exc}")
    yield host, gateway
    if started:
        subprocess.run(["bash", str(sam_local.LOCAL_IMAGE_SCRIPT), "stop"], check=False, timeout=120)


def test_on_change_function_fixes_drift_from_inside_a_lambda_container(engine: tuple[str, str]) -> None:
    host, gateway = engine
    out = sam_local.invoke_against_moto("OnChangeFunction", "modify-vpc-endpoint.json", host=host, gateway=gateway)
    inv = out.invocation
    assert inv.result is not None, f"no result from sam (exit {inv.returncode}):\n{inv.stdout[-3000:]}\n{inv.stderr[-3000:]}"
    assert "Mounting" in inv.stderr and "inside runtime container" in inv.stderr, "it ran in a container"
    assert inv.result["disposition"] == "act"
    statuses = {(r["rule_id"], r["resource_id"]): r["status"] for r in inv.result["results"]}
    assert statuses[("endpoint-policy-org-confined", out.endpoint)] == "remediated"
    assert statuses[("gateway-endpoint-route-tables", out.endpoint)] == "remediated"
    assert "failed" not in statuses.values(), statuses
    assert out.policy_changed, "the container's writes reached moto on the host"
    assert (out.route_tables_before, out.route_tables_after) == (1, 3)
    assert out.ledger_items == inv.result["ledger_items"] > 0
