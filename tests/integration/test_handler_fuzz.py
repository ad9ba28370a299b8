"""Fuzzed events through every function that template.yaml feeds with CloudTrail events from EventBridge.

The functions are found in template.yaml (an `EventBridgeRule`/`CloudWatchEvent` source whose pattern
selects "AWS API Call via CloudTrail"), so a function added later is fuzzed without touching this file.
Each runs warm (loaded once, as a Lambda container would) against a moto account seeded with drift.

For every generated event (mutated fixtures from events/, arbitrary JSON, envelope-shaped garbage):
- the handler returns (no exception of any kind);
- an event the function could not act on (`skipped`/`rejected`) gets one warning log line and exactly one
  ledger record with that status, and changes nothing in AWS: no write call is made (a botocore hook sees
  every call) and the seeded drift reads back exactly as before (snapshot of the EC2 state);
- an event it acted on may fix the seeded drift; the world is then seeded afresh so later examples
  still have something a careless handler could change.

HYPOTHESIS_EXAMPLES scales this suite too (a quarter of it per function, at least 25).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import template
from devkit.lambda_context import LocalLambdaContext
from devkit.seed import SpineWorld, seed_vpc
from tests.support.event_fuzz import json_values, mutated
from tests.support.faults import FaultInjector
from tests.support.logs import captured_logs
from tests.support.moto_env import moto_account

from .conftest import REGION, TABLE

EXAMPLES = max(25, int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")) // 4)
EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
FIXTURES = [json.loads(p.read_text()) for p in sorted(EVENTS_DIR.glob("*.json"))
            + sorted((EVENTS_DIR / "invalid").glob("*.json"))]
CLOUDTRAIL = "AWS API Call via CloudTrail"
#: Calls that only read. Anything else during a skipped/rejected event must be the ledger record.
READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")
LEDGER_WRITES = {"dynamodb.BatchWriteItem", "dynamodb.PutItem"}


def cloudtrail_functions(tpl: dict[str, Any] | None = None) -> list[str]:
    """Functions with an EventBridge rule whose pattern selects CloudTrail API-call events."""
    tpl = tpl or template.load()
    found = []
    for logical_id in template.functions(tpl):
        for source in tpl["Resources"][logical_id]["Properties"].get("Events", {}).values():
            pattern = source.get("Properties", {}).get("Pattern", {})
            if source.get("Type") in ("EventBridgeRule", "CloudWatchEvent") and CLOUDTRAIL in pattern.get(
                    "detail-type", []):
                found.append(logical_id)
                break
    return found


FUNCTIONS = cloudtrail_functions()


def test_the_on_change_function_is_found_in_the_template() -> None:
    assert "OnChangeFunction" in FUNCTIONS


# --------------------------------------------------------------------------------------------- the world
def _placeholders_to(world: SpineWorld, event: Any) -> Any:
    """Point an event's placeholder ids at the resources seeded now (mutations may have broken the JSON
    shape, but never its serialisability)."""
    text = json.dumps(event)
    for placeholder, real in world.mapping().items():
        text = text.replace(placeholder, real)
    return json.loads(text)


def aws_state(ec2: Any, vpc_id: str) -> dict[str, Any]:
    """What a fix could change, read through the API: endpoints, route tables, VPCs, subnets, groups."""
    endpoints = {
        e["VpcEndpointId"]: (json.loads(e["PolicyDocument"]) if e.get("PolicyDocument") else None,
                             sorted(e.get("RouteTableIds", [])), sorted(e.get("SubnetIds", [])),
                             sorted(g["GroupId"] for g in e.get("Groups", [])), e.get("PrivateDnsEnabled"),
                             e.get("State"))
        for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
    }
    route_tables = {
        rt["RouteTableId"]: (sorted(json.dumps(r, sort_keys=True, default=str) for r in rt.get("Routes", [])),
                             sorted(json.dumps(a, sort_keys=True, default=str) for a in rt.get("Associations", [])))
        for rt in ec2.describe_route_tables()["RouteTables"]
    }
    return {
        "endpoints": endpoints,
        "route_tables": route_tables,
        "vpcs": sorted(json.dumps(v, sort_keys=True, default=str) for v in ec2.describe_vpcs()["Vpcs"]),
        "subnets": sorted(json.dumps(s, sort_keys=True, default=str) for s in ec2.describe_subnets()["Subnets"]),
        "groups": sorted(json.dumps(g, sort_keys=True, default=str)
                         for g in ec2.describe_security_groups()["SecurityGroups"]),
        "dns": [{k: v for k, v in ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=a).items()
                 if k != "ResponseMetadata"} for a in ("enableDnsSupport", "enableDnsHostnames")],
    }


@dataclass
class Fuzzbed:
    ec2: Any
    table: Any
    recorder: FaultInjector
    handlers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    world: SpineWorld | None = None
    state: dict[str, Any] | None = None

    def reseed(self) -> None:
        self.world = seed_vpc(self.ec2, REGION)
        self.state = aws_state(self.ec2, self.world.ids["vpc"])

    def ledger_keys(self) -> set[tuple[str, str]]:
        keys: set[tuple[str, str]] = set()
        kwargs: dict[str, Any] = {"ProjectionExpression": "pk, sk"}
        while True:
            page = self.table.scan(**kwargs)
            keys |= {(i["pk"], i["sk"]) for i in page["Items"]}
            if "LastEvaluatedKey" not in page:
                return keys
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture(scope="module")
def bed() -> Iterator[Fuzzbed]:
    """One moto account for the whole module (a fresh one per example would cost seconds each)."""
    recorder = FaultInjector()
    # Mutated fixtures keep their EventBridge id, and a repeated id is (rightly) answered from the idempotency
    # store without a run; this test is about what a run does with any input, so every example runs.
    # Idempotency itself: tests/integration/test_safety.py.
    with pytest.MonkeyPatch.context() as mp, moto_account(mp, unset=("SPOKE_ROLE_NAME",),
                                                          POWERTOOLS_IDEMPOTENCY_DISABLED="true"), \
            recorder.installed():
        boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(TABLE))
        bed = Fuzzbed(boto3.client("ec2", region_name=REGION),
                      boto3.resource("dynamodb", region_name=REGION).Table(TABLE), recorder)
        for logical_id in FUNCTIONS:
            spec = template.function_spec(logical_id, resources={"LedgerTable": TABLE})
            for k, v in spec.environment.items():
                mp.setenv(k, v)
            handler = spec.load_handler()
            bed.handlers[logical_id] = lambda event, h=handler, n=logical_id: h(
                event, LocalLambdaContext(function_name=n))
        bed.reseed()
        yield bed


# --------------------------------------------------------------------------------------------- events
ENVELOPE_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
FUZZED_EVENTS = st.one_of(
    mutated(st.sampled_from(FIXTURES)),
    mutated(st.sampled_from(FIXTURES)),
    mutated(st.sampled_from(FIXTURES)),
    json_values,
    st.dictionaries(st.sampled_from(ENVELOPE_KEYS), json_values),
)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_fuzzed_events_never_crash_are_recorded_and_change_nothing_unless_acted_on(
        bed: Fuzzbed, function: str) -> None:
    handler = bed.handlers[function]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(FUZZED_EVENTS)
    def run(raw: Any) -> None:
        assert bed.world is not None and bed.state is not None
        event = _placeholders_to(bed.world, raw)
        keys_before = bed.ledger_keys()
        calls_before = len(bed.recorder.calls)

        with captured_logs() as logs:
            result = handler(event)  # any exception fails the example

        assert isinstance(result, dict), result
        disposition = result.get("disposition")
        hypothesis.event(f"disposition: {disposition}")
        calls = [c.name for c in bed.recorder.calls[calls_before:] if c.stage == "call"]
        state = aws_state(bed.ec2, bed.world.ids["vpc"])
        if disposition == "act":
            if state != bed.state:
                bed.reseed()  # the drift was fixed: give the next example a drifted world again
            return

        assert disposition in ("skipped", "rejected"), result
        writes = [c for c in calls if not c.split(".", 1)[1].startswith(READ_PREFIXES)]
        assert set(writes) <= LEDGER_WRITES, f"a {disposition} event made write calls: {writes}"
        assert not [c for c in calls if c.startswith("ec2.")], f"a {disposition} event read EC2: {calls}"
        assert state == bed.state, f"a {disposition} event changed AWS"
        new = bed.ledger_keys() - keys_before
        assert len(new) == 1, f"expected one ledger record for a {disposition} event, got {len(new)}"
        item = bed.table.get_item(Key=dict(zip(("pk", "sk"), next(iter(new)), strict=True)))["Item"]
        assert item["status"] == disposition and item["reason"], item
        warnings = [r for r in logs if r.levelname == "WARNING" and r.getMessage().startswith(f"event {disposition}")]
        assert len(warnings) == 1, [r.getMessage() for r in logs]

    run()
