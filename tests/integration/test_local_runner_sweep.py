"""The docker-free runner on the sweep's functions (cases from test_local_runner.COVERAGE): each event file
runs in-process and through the runner, each in a moto world of its own (a sweep reads every VPC of the
account-region, so runs cannot share one), and both must return the same and leave the same state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from devkit import local, template
from devkit.caches import reset_process_caches
from devkit.seed import SpineWorld, render_event, seed_vpc
from devkit.sqs import create_sweep_queues
from tests.support.moto_env import moto_account
from vpce_guard.sweep import SweepPlan, SweepRecords, new_sweep_id

from .conftest import ACCOUNT, REGION, TABLE
from .test_local_runner import SWEEP_CASES

#: Placeholders of events/sweep-worker/ (a sweep the worker's message belongs to).
SWEEP_PLACEHOLDERS = {"sweep_id": "20250311T020000Z-0a1b2c3d", "started_at": "2025-03-11T02:00:00.000Z"}


@dataclass
class IsolatedHub:
    org_id: str
    queue_url: str
    world: SpineWorld

    @property
    def overrides(self) -> dict[str, str]:
        return {"OrganizationId": self.org_id, "SpokeRegions": REGION}


@contextmanager
def isolated_hub() -> Iterator[IsolatedHub]:
    """A moto of its own (a sweep reads every VPC of the account-region, so sweep cases cannot share one):
    an organization, the ledger, the sweep queues as template.yaml declares them, one VPC with drift."""
    with pytest.MonkeyPatch.context() as mp, moto_account(mp, MOTO_EC2_LOAD_DEFAULT_AMIS="false"):
        org_id = boto3.client("organizations", region_name=REGION).create_organization(
            FeatureSet="ALL")["Organization"]["Id"]
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(TABLE))
        queue_url, _ = create_sweep_queues(boto3.client("sqs", region_name=REGION))
        yield IsolatedHub(org_id, queue_url, seed_vpc(boto3.client("ec2", region_name=REGION), REGION))


def _sweep_event(function: str, event_name: str) -> dict[str, Any]:
    """The events/ file; for the worker, its message points at a sweep started here (as SweepFunction would)."""
    if function != "SweepWorkerFunction":
        return render_event(event_name, {})
    plan = SweepPlan(sweep_id=new_sweep_id(datetime.now(UTC)), started_at="2025-03-11T02:00:01.000Z",
                     accounts=[ACCOUNT], regions=[REGION])
    SweepRecords(boto3.resource("dynamodb", region_name=REGION).Table(TABLE), 30).start(plan)
    return render_event(event_name, {SWEEP_PLACEHOLDERS["sweep_id"]: plan.sweep_id,
                                     SWEEP_PLACEHOLDERS["started_at"]: plan.started_at})


def _sweep_observation(function: str, hub: IsolatedHub, payload: Any) -> dict[str, Any]:
    """What the function returned and left behind (ids and times taken out, so two hubs compare)."""
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    summaries = [SweepRecords(table, 30).get(s.sweep_id) for s in SweepRecords(table, 30).latest()]
    queued = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=hub.queue_url, MaxNumberOfMessages=10)
    endpoint = boto3.client("ec2", region_name=REGION).describe_vpc_endpoints(
        VpcEndpointIds=[hub.world.ids["s3_endpoint"]])["VpcEndpoints"][0]
    volatile = {"sweep_id", "started_at", "finished_at"}
    return {
        "payload": {k: v for k, v in payload.items() if k not in volatile},
        "summaries": [s.model_dump(exclude=volatile) for s in summaries if s],
        "queued": sorted(json.dumps({k: v for k, v in json.loads(m["Body"]).items() if k not in volatile},
                                    sort_keys=True) for m in queued.get("Messages", [])),
        "endpoint_confined": "VpceGuardDenyOutsideOrg" in endpoint["PolicyDocument"],
    }


@pytest.mark.parametrize(("function", "event_name"), SWEEP_CASES)
def test_runner_matches_the_in_process_handler_for_the_sweep(monkeypatch: pytest.MonkeyPatch, function: str,
                                                             event_name: str) -> None:
    observed = []
    for path in ("in-process", "runner"):
        with isolated_hub() as hub:
            event = _sweep_event(function, event_name)
            if path == "in-process":
                from devkit.lambda_context import LocalLambdaContext

                spec = template.function_spec(function, resources={"LedgerTable": TABLE, "SweepQueue": hub.queue_url},
                                              overrides=hub.overrides)
                with monkeypatch.context() as m:
                    for k, v in spec.environment.items():
                        m.setenv(k, v)
                    reset_process_caches()
                    timeout = int(spec.properties.get("Timeout", 60))
                    payload = spec.load_handler()(event, LocalLambdaContext(function_name=function,
                                                                            timeout_seconds=timeout))
            else:
                result = local.invoke(function, event, parameter_overrides=hub.overrides,
                                      env_vars={function: {**template.table_env(template.tables_for(TABLE)),
                                                           "SWEEP_QUEUE_URL": hub.queue_url}})
                assert result.ok, result.error
                payload = result.payload
            observed.append(_sweep_observation(function, hub, payload))
    assert observed[0] == observed[1]
    if function == "SweepFunction":
        assert observed[0]["payload"]["units"] == 1 and len(observed[0]["queued"]) == 1
    else:
        assert observed[0]["payload"] == {"batchItemFailures": []}
        assert observed[0]["summaries"][0]["status"] == "complete" and observed[0]["endpoint_confined"]
