"""Fixtures for the organization tests: a moto organization (hub + members, each with drift in two regions and
the spoke role from templates/spoke.yaml), STS that refuses what AWS would refuse, the sweep queues as the
template declares them, and the hub's real handlers run with their own execution-role credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from devkit import template
from devkit.caches import reset_process_caches
from devkit.lambda_context import LocalLambdaContext
from devkit.org import HUB_FUNCTION_ROLES, OrgWorld, hub_function_env, seed_org
from devkit.sqs import DrainReport, create_sweep_queues, drain
from tests.support.sts_gate import AssumeRoleGate

from ..conftest import REGION

TABLE = "vpce-guard-ledger-org"
REGIONS = ("us-east-1", "eu-west-1")
ROLE_OF = {"OnChangeFunction": HUB_FUNCTION_ROLES[0], "SweepWorkerFunction": HUB_FUNCTION_ROLES[1],
           "SweepFunction": "vpce-guard-SweepFunctionRole"}


@dataclass
class Hub:
    """The hub's functions as template.yaml wires them, each warm after its first call (like Lambda)."""

    org: OrgWorld
    monkeypatch: pytest.MonkeyPatch
    queue_url: str
    dlq_url: str
    overrides: dict[str, str] = field(default_factory=dict)
    _handlers: dict[str, tuple[Callable[..., Any], dict[str, str], int]] = field(default_factory=dict)

    def _activate(self, function: str) -> tuple[Callable[..., Any], int]:
        if function not in self._handlers:
            spec = template.function_spec(
                function, resources={"LedgerTable": TABLE, "SweepQueue": self.queue_url},
                overrides={"OrganizationId": self.org.org_id, "SpokeRegions": ",".join(self.org.regions),
                           **self.overrides})
            env = {**spec.environment, **hub_function_env(self.org.hub, ROLE_OF[function])}
            for k, v in env.items():
                self.monkeypatch.setenv(k, v)
            reset_process_caches()
            timeout = int(spec.properties.get("Timeout", 60))
            self._handlers[function] = (spec.load_handler(), env, timeout)
        handler, env, timeout = self._handlers[function]
        for k, v in env.items():
            self.monkeypatch.setenv(k, v)
        return handler, timeout

    def call(self, function: str, event: Any) -> Any:
        handler, timeout = self._activate(function)
        return handler(event, LocalLambdaContext(function_name=function, timeout_seconds=timeout))

    def sweep(self) -> dict[str, Any]:
        return self.call("SweepFunction", {"source": "aws.scheduler", "detail-type": "Scheduled Event"})

    def drain_worker(self, batch_size: int | None = None) -> DrainReport:
        if batch_size is None:
            tpl = template.load()
            batch_size = int(template.parameter_values(tpl, self.overrides)["SweepBatchSize"])
        sqs = boto3.client("sqs", region_name=REGION)
        return drain(sqs, self.queue_url, lambda event: self.call("SweepWorkerFunction", event),
                     batch_size=batch_size)

    def send_units(self, bodies: list[str]) -> None:
        sqs = boto3.client("sqs", region_name=REGION)
        for body in bodies:
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def dead_letters(self) -> list[str]:
        sqs = boto3.client("sqs", region_name=REGION)
        return [m["Body"] for m in sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
                .get("Messages", [])]


@pytest.fixture
def org(aws_env: None, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> OrgWorld:
    """Hub + two members with drift in one region; `parametrize("org", [REGIONS], indirect=True)` for more."""
    # Every new (account, region) EC2 backend would otherwise build thousands of AMIs nobody here uses.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return seed_org(regions=getattr(request, "param", (REGION,)))


@pytest.fixture
def gate(org: OrgWorld, monkeypatch: pytest.MonkeyPatch) -> AssumeRoleGate:
    """The accounts of `org` (including any added later) are in its organization; others in none."""
    return AssumeRoleGate(org.spoke_role_name, lambda a: org.org_id if a in org.accounts else None).install(
        monkeypatch)


@pytest.fixture
def org_ledger(aws_env: None) -> Any:
    template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(TABLE))
    template.create_messaging(boto3.Session(region_name=REGION), template.messaging_for(TABLE))
    return boto3.resource("dynamodb", region_name=REGION).Table(TABLE)


@pytest.fixture
def hub(org: OrgWorld, gate: AssumeRoleGate, org_ledger: Any, monkeypatch: pytest.MonkeyPatch) -> Hub:
    queue_url, dlq_url = create_sweep_queues(boto3.client("sqs", region_name=REGION))
    return Hub(org, monkeypatch, queue_url, dlq_url)


def endpoint(org: OrgWorld, account: str, region: str, endpoint_id: str) -> dict[str, Any]:
    return org.ec2(account, region).describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


def is_confined(doc: str) -> bool:
    return any(s.get("Sid") == "VpceGuardDenyOutsideOrg" for s in json.loads(doc)["Statement"])
