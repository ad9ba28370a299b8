"""The docker-free runner (`python -m devkit.local invoke`) against moto: every function of template.yaml on
every file in events/, with results identical to the in-process handler tests (conftest's `invoke`).

Drift guard: COVERAGE maps each function to the events/ files it takes. A function added to template.yaml, or
an events/ file, that COVERAGE does not name makes `test_coverage_matches_template_and_events` fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit import local, template
from devkit.caches import reset_process_caches
from devkit.moto_server import moto_server
from devkit.seed import EVENTS_DIR, SpineWorld, render_event, seed_vpc
from tests.support.moto_env import moto_account

from .conftest import REGION, TABLE

#: Every resource name the functions' environment takes from a Ref: tables, the hub bus, the notification topic.
NAMES = {**template.tables_for(TABLE), **template.messaging_for(TABLE)}

ROOT = Path(__file__).resolve().parents[2]

#: function → globs under events/ of the events it is invoked with.
COVERAGE: dict[str, tuple[str, ...]] = {
    "OnChangeFunction": ("*.json", "invalid/*.json"),
    "SweepFunction": ("sweep/*.json",),
    "SweepWorkerFunction": ("sweep-worker/*.json",),
    "RollbackFunction": ("rollback/*.json",),
}


def _event_files(globs: tuple[str, ...]) -> list[str]:
    return sorted(str(p.relative_to(EVENTS_DIR)) for g in globs for p in EVENTS_DIR.glob(g))


CASES = [(fn, name) for fn, globs in COVERAGE.items() for name in _event_files(globs)]
ON_CHANGE_CASES = [c for c in CASES if c[0] == "OnChangeFunction"]
#: The sweep's functions run in test_local_runner_sweep.py: they need a moto of their own per run, and this
#: module keeps one moto alive for its whole matrix.
SWEEP_CASES = [c for c in CASES if c[0] in ("SweepFunction", "SweepWorkerFunction")]
ROLLBACK_CASES = [c for c in CASES if c[0] == "RollbackFunction"]


def test_coverage_matches_template_and_events() -> None:
    assert set(COVERAGE) == set(template.functions()), (
        "every function in template.yaml needs events/ files and an entry in COVERAGE (and nothing else may)")
    covered = {name for _, name in CASES}
    on_disk = {str(p.relative_to(EVENTS_DIR)) for p in EVENTS_DIR.rglob("*.json")}
    assert on_disk == covered, f"events/ files no function covers: {sorted(on_disk - covered)}"
    for fn, globs in COVERAGE.items():
        assert _event_files(globs), f"{fn} has no events"


@pytest.fixture(scope="module")
def shared_aws() -> Iterator[None]:
    """One moto for the whole matrix (a new mock costs seconds of EC2 set-up); cases stay apart by seeding
    a VPC world of their own, which is all the events in events/ name."""
    with pytest.MonkeyPatch.context() as mp, moto_account(mp):
        boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(TABLE))
        template.create_messaging(boto3.Session(region_name=REGION), template.messaging_for(TABLE))
        yield
        _WARM_HANDLERS.clear()


@pytest.fixture
def fresh_world(shared_aws: None) -> Callable[[], SpineWorld]:
    return lambda: seed_vpc(boto3.client("ec2", region_name=REGION), REGION)


def _normalise(summary: dict[str, Any], world: SpineWorld) -> dict[str, Any]:
    """Replace the ids of one seeded world by their role names, so two worlds' results compare."""
    text = json.dumps(summary, sort_keys=True)
    for role, real in sorted(world.ids.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(real, f"<{role}>")
    # Lists of ids in reasons are sorted by real id, which differs between worlds: compare them as sets.
    text = re.sub(r"<\w+>(?:, <\w+>)+", lambda m: ", ".join(sorted(m.group(0).split(", "))), text)
    out = json.loads(text)
    out["results"] = sorted(out["results"], key=lambda r: (r["rule_id"], r["resource_id"]))
    return out


_WARM_HANDLERS: dict[str, Callable[..., Any]] = {}


def _in_process(function: str, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What tests/integration/conftest.py's `invoke` fixture does (template environment, handler loaded as
    template.yaml wires it), kept warm between cases as a Lambda container is: a cold start builds every
    boto3 client again, which would double this matrix's cost; the runner side stays cold every time."""
    from devkit.lambda_context import LocalLambdaContext

    spec = template.function_spec(function, resources={"LedgerTable": TABLE})
    with monkeypatch.context() as m:
        for k, v in spec.environment.items():
            m.setenv(k, v)
        if function not in _WARM_HANDLERS:
            reset_process_caches()
            _WARM_HANDLERS[function] = spec.load_handler()
        return _WARM_HANDLERS[function](event, LocalLambdaContext(function_name=function))


@pytest.mark.parametrize(("function", "event_name"), ON_CHANGE_CASES)
def test_runner_matches_the_in_process_handler(fresh_world: Callable[[], SpineWorld],
                                               monkeypatch: pytest.MonkeyPatch, function: str, event_name: str) -> None:
    world_a = fresh_world()
    expected = _in_process(function, render_event(event_name, world_a.mapping()), monkeypatch)

    world_b = fresh_world()
    # A second delivery: a new event id (the same id would be answered by the idempotency store).
    event_b = render_event(event_name, world_b.mapping())
    if isinstance(event_b, dict) and "id" in event_b:
        event_b["id"] = str(uuid.uuid4())
    result = local.invoke(function, event_b, env_vars={function: template.table_env(NAMES)})
    assert result.ok, result.error
    assert _normalise(result.payload, world_b) == _normalise(expected, world_a)
    assert result.environment["AWS_SAM_LOCAL"] == "true"
    assert result.environment["LEDGER_TABLE"] == TABLE
    assert "AWS_ENDPOINT_URL" not in os.environ or os.environ["AWS_ENDPOINT_URL"] == "", "environment restored"


# ---------------------------------------------------------------- SAM's environment rules, without AWS ----

def _env(**kw: Any) -> tuple[dict[str, str], list[str]]:
    tpl = template.load()
    args: dict[str, Any] = {"parameter_overrides": {}, "env_vars": {}, "shell_env": {}, "region": "eu-west-1"}
    args.update(kw)
    return local.function_environment(tpl, "OnChangeFunction", **args)


@pytest.mark.parametrize(("function", "event_name"), ROLLBACK_CASES)
def test_runner_matches_the_in_process_handler_for_a_rollback(fresh_world: Callable[[], SpineWorld],
                                                              monkeypatch: pytest.MonkeyPatch, function: str,
                                                              event_name: str) -> None:
    """The operator's rollback request (its events/ file, pointed at a fix just made) restores the endpoint
    the same way through the runner as in-process."""
    from boto3.dynamodb.conditions import Key

    ledger = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    ec2 = boto3.client("ec2", region_name=REGION)
    observed = []
    for path in ("in-process", "runner"):
        world = fresh_world()
        endpoint = world.ids["s3_endpoint"]
        original = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["PolicyDocument"]
        _in_process("OnChangeFunction", {**render_event("modify-vpc-endpoint.json", world.mapping()),
                                         "id": str(uuid.uuid4())}, monkeypatch)
        [fix] = [i for i in ledger.query(KeyConditionExpression=Key("pk").eq(
            f"RES#123456789012#{REGION}#{endpoint}") & Key("sk").begins_with("EVAL#"))["Items"]
            if i["rule_id"] == "endpoint-policy-org-confined"]
        event = {**json.loads((EVENTS_DIR / event_name).read_text()), "account": "123456789012",
                 "region": REGION, "resource_id": endpoint, "record_sk": fix["sk"]}
        if path == "in-process":
            payload = _in_process(function, event, monkeypatch)
        else:
            result = local.invoke(function, event, env_vars={function: template.table_env(NAMES)})
            assert result.ok, result.error
            payload = result.payload
        restored = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["PolicyDocument"]
        assert restored == original, path
        volatile = {"ledger_sk", "request", "before", "after"}
        kept = {k: v.replace(fix["sk"], "<record>") if isinstance(v, str) else v
                for k, v in payload.items() if k not in volatile}
        observed.append(_normalise({"results": [], **kept}, world))
    assert observed[0] == observed[1]
    assert observed[0]["status"] == "restored"


def test_environment_follows_sam_precedence() -> None:
    env, ignored = _env()
    assert env["LEDGER_TABLE"] == "LedgerTable", "SAM resolves a resource's Ref to its logical id"
    assert env["MODE"] == "enforce" and env["AWS_ENDPOINT_URL"] == ""
    env, _ = _env(parameter_overrides={"Mode": "dry_run"})
    assert env["MODE"] == "dry_run"
    env, _ = _env(parameter_overrides={"Mode": "dry_run"}, shell_env={"MODE": "off", "UNRELATED": "x"})
    assert env["MODE"] == "off" and "UNRELATED" not in env, "a declared variable's shell value beats the template"
    env, ignored = _env(shell_env={"MODE": "off"},
                        env_vars={"Parameters": {"MODE": "enforce", "LOG": "x"},
                                  "OnChangeFunction": {"LEDGER_TABLE": "t", "NOT_DECLARED": "1"}})
    assert env["MODE"] == "enforce" and env["LEDGER_TABLE"] == "t"
    assert ignored == ["LOG", "NOT_DECLARED"] and "NOT_DECLARED" not in env


def test_unknown_parameter_or_function_is_refused() -> None:
    with pytest.raises(local.LocalInvokeError, match="Modes"):
        _env(parameter_overrides={"Modes": "dry_run"})
    with pytest.raises(local.LocalInvokeError, match="not a function"):
        local.invoke("NoSuchFunction", {})


def test_parameter_overrides_and_env_vars_file_formats(tmp_path: Path) -> None:
    assert local.parse_parameter_overrides(["Mode=dry_run LogLevel=DEBUG", "AllowedOrgIds='o-abcdefghij'"]) == {
        "Mode": "dry_run", "LogLevel": "DEBUG", "AllowedOrgIds": "o-abcdefghij"}
    assert local.parse_parameter_overrides(["ParameterKey=Mode,ParameterValue=off"]) == {"Mode": "off"}
    with pytest.raises(local.LocalInvokeError):
        local.parse_parameter_overrides(["Mode"])
    f = tmp_path / "env.json"
    f.write_text(json.dumps({"OnChangeFunction": {"LEDGER_TTL_DAYS": 7, "X": True, "Y": None}}))
    assert local.load_env_vars(f) == {"OnChangeFunction": {"LEDGER_TTL_DAYS": "7", "X": "true", "Y": ""}}
    f.write_text(json.dumps({"OnChangeFunction": "LEDGER_TABLE=x"}))
    with pytest.raises(local.LocalInvokeError):
        local.load_env_vars(f)


# ---------------------------------------------------------------- the command, against a moto server ----

@pytest.mark.e2e
def test_cli_against_a_moto_server(tmp_path: Path) -> None:
    with moto_server() as url:
        clients = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": "x", "aws_secret_access_key": "x"}
        boto3.client("organizations", **clients).create_organization(FeatureSet="ALL")
        ec2 = boto3.client("ec2", **clients)
        world = seed_vpc(ec2, REGION)
        template.create_tables(boto3.client("dynamodb", **clients), template.tables_for(TABLE))
        template.create_messaging(boto3.Session(), template.messaging_for(TABLE), **clients)
        event = tmp_path / "event.json"
        event.write_text(json.dumps(render_event("modify-vpc-endpoint.json", world.mapping())))
        env_vars = tmp_path / "env.json"
        env_vars.write_text(json.dumps({"OnChangeFunction": template.table_env(NAMES)}))
        shell = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}

        def run(*extra: str) -> dict[str, Any]:
            proc = subprocess.run([sys.executable, "-m", "devkit.local", "invoke", "OnChangeFunction", "-e", str(event),
                                   "--env-vars", str(env_vars), "--endpoint-url", url, "--region", REGION, *extra],
                                  cwd=ROOT, capture_output=True, text=True, env=shell, timeout=120, check=False)
            assert proc.returncode == 0, proc.stderr[-3000:]
            lines = proc.stdout.strip().splitlines()
            assert len(lines) == 1, "stdout carries the result only; logs go to stderr"
            assert '"level":"INFO"' in proc.stderr
            return json.loads(lines[0])

        endpoint = world.ids["s3_endpoint"]
        done = run("--parameter-overrides", "Mode=enforce LedgerTtlDays=7")
        assert {r["status"] for r in done["results"] if r["resource_id"] == endpoint} == {"remediated"}
        after = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]
        assert "VpceGuardDenyOutsideOrg" in after["PolicyDocument"]
        assert len(after["RouteTableIds"]) == 3
        items = boto3.resource("dynamodb", **clients).Table(TABLE).scan()["Items"]
        history = [i for i in items if i["sk"].startswith("EVAL#")]
        assert history
        for i in history:  # LedgerTtlDays=7 reached the function through --parameter-overrides
            written = datetime.fromisoformat(i["time"].replace("Z", "+00:00"))
            assert int(i["expires_at"]) - int(written.timestamp()) == 7 * 86400
        assert {i["trigger"]["event_name"] for i in history} == {"ModifyVpcEndpoint"}
