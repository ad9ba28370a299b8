"""The parts of `make rehearsal` that need no Docker: pins that must move together, the workaround names the
rehearsal reports against those the LocalStack hook applies, the init stand-in's URL and error handling, and
the make targets. The rehearsal itself runs in tests/rehearsal (marker `rehearsal`, not in `make test`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from devkit.rehearsal import lambda_init, localstack, localstack_hook, run

ROOT = Path(__file__).resolve().parents[2]


def test_localstack_pin_is_one_version_everywhere() -> None:
    # The workarounds lean on internals of exactly one release: bumping the pin must bump (and re-check) them.
    pinned = re.search(r"^localstack-core\[runtime\]==(\S+)$", (ROOT / "requirements" / "localstack.txt").read_text(),
                       flags=re.M)
    assert pinned, "requirements/localstack.txt pins localstack-core exactly"
    assert pinned.group(1) == localstack.PINNED_VERSION == localstack_hook.LOCALSTACK_VERSION


def test_localstack_constraints_keep_the_measured_pins() -> None:
    constraints = (ROOT / "requirements" / "localstack-constraints.txt").read_text()
    for pin in ("cbor2==5.9.0", "pyOpenSSL==25.3.0", "localstack-twisted==25.5.0"):
        assert f"\n{pin}\n" in constraints, pin


def test_the_rehearsal_reports_every_workaround_the_hook_applies() -> None:
    assert tuple(localstack_hook.WORKAROUNDS) == localstack.HOOK_WORKAROUNDS


def test_layer_download_url_is_pointed_at_the_address_the_container_reaches() -> None:
    location = "http://localhost.localstack.cloud:4566/awslambda-us-east-1-tasks/layers/x.zip?X-Amz-Signature=abc"
    assert lambda_init.reachable(location, "http://172.17.0.1:4566") == (
        "http://172.17.0.1:4566/awslambda-us-east-1-tasks/layers/x.zip?X-Amz-Signature=abc")


def test_init_stand_in_tells_a_function_error_from_a_result() -> None:
    assert lambda_init._looks_like_error(json.dumps({"errorMessage": "boom", "errorType": "KeyError"}).encode())
    assert not lambda_init._looks_like_error(json.dumps({"disposition": "act", "errorMessage": None}).encode())
    assert not lambda_init._looks_like_error(b"not json")


def test_localstack_settings_name_the_local_image_and_the_lambda_extras() -> None:
    ls = localstack.LocalStack(ROOT / ".local" / "x", "unix:///sock", "172.17.0.1",
                               lambda_env={"AWS_ENDPOINT_URL_ORGANIZATIONS": "http://172.17.0.1:5000"})
    env = ls.environment()
    assert json.loads(env["LAMBDA_RUNTIME_IMAGE_MAPPING"]) == {"python3.13": localstack.LAMBDA_IMAGE}
    assert env["LAMBDA_DOCKER_FLAGS"] == "-e AWS_ENDPOINT_URL_ORGANIZATIONS=http://172.17.0.1:5000"
    assert env["OVERRIDE_IN_DOCKER"] == "0" and env["HOSTNAME_FROM_LAMBDA"] == "172.17.0.1"


def test_rehearsal_is_a_make_target_outside_make_test() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^rehearsal: ", makefile, flags=re.M)
    test_recipe = re.search(r"^test: .*\n\t(.*)$", makefile, flags=re.M).group(1)
    assert "not rehearsal" in test_recipe and "not container" in test_recipe


def test_summary_says_what_was_stood_in_for() -> None:
    names = [what for what, _ in run.STOOD_IN]
    for needed in ("AWS Organizations", "StackSet roll-out", "CloudTrail", "Architecture", "IAM"):
        assert needed in names
