"""Integration fixtures: moto in-process, the ledger table built from template.yaml, and the real handler
loaded exactly as template.yaml wires it (layer folder on sys.path, environment from the template)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from devkit import template
from devkit.caches import reset_process_caches
from devkit.lambda_context import LocalLambdaContext
from devkit.seed import SpineWorld, seed_vpc
from tests.support.moto_env import REGION, moto_account

ACCOUNT = "123456789012"
TABLE = "vpce-guard-ledger-test"
#: Every DynamoDB table of template.yaml, by logical id (ledger, exemptions, idempotency store).
TABLES = template.tables_for(TABLE)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with moto_account(monkeypatch, POWERTOOLS_METRICS_NAMESPACE="VpceGuard"):
        yield


@pytest.fixture
def ec2(aws_env: None) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def org_id(aws_env: None) -> str:
    return boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")[
        "Organization"]["Id"]


@pytest.fixture
def ledger_table(aws_env: None) -> Any:
    """The ledger (and, created with it, every other table of the template: exemptions, idempotency), and the hub
    bus and notification topic the functions publish to."""
    template.create_tables(boto3.client("dynamodb", region_name=REGION), TABLES)
    template.create_messaging(boto3.Session(region_name=REGION), template.messaging_for(TABLE))
    return boto3.resource("dynamodb", region_name=REGION).Table(TABLE)


@pytest.fixture
def world(ec2: Any) -> SpineWorld:
    return seed_vpc(ec2, REGION)


Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def invoke(ledger_table: Any, org_id: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Call a function's real handler with template.yaml's environment (plus overrides)."""

    def _invoke(event: dict[str, Any], function: str = "OnChangeFunction", **overrides: str) -> dict[str, Any]:
        spec = template.function_spec(function, resources=TABLES, overrides=overrides)
        for k, v in spec.environment.items():
            monkeypatch.setenv(k, v)
        reset_process_caches()
        handler = spec.load_handler()
        return handler(event, LocalLambdaContext(function_name=function))

    return _invoke



WarmHandler = Callable[[Any], Any]


@pytest.fixture
def warm(ledger_table: Any, org_id: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., WarmHandler]:
    """Load a function's handler once (template.yaml's environment plus `env`), so that successive calls
    share one container's caches and sessions, as a warm Lambda (and Lambda's own retries) can."""

    def _load(function: str = "OnChangeFunction", **env: str) -> WarmHandler:
        spec = template.function_spec(function, resources={"LedgerTable": TABLE})
        for k, v in {**spec.environment, **env}.items():
            monkeypatch.setenv(k, v)
        reset_process_caches()
        handler = spec.load_handler()
        return lambda event: handler(event, LocalLambdaContext(function_name=function))

    return _load
