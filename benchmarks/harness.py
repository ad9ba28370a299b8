"""Shared pieces of the benchmarks: a moto world in-process, the runtime as template.yaml configures it, timers.

The call counter and the paging model (devkit.api_calls, devkit.paging) are imported first, so every botocore
session created afterwards is hooked.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from devkit import api_calls, paging  # noqa: F401  (hooks botocore before any session exists)
from devkit.environ import patched_environ

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "vpce-guard-ledger-bench"

_ENV = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_NAMESPACE": "VpceGuard",
}


@contextmanager
def environment(extra: dict[str, str] | None = None) -> Iterator[None]:
    """Set environment variables for the block and restore them afterwards."""
    with patched_environ({**_ENV, **(extra or {})}, unset=("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")):
        yield


@dataclass
class MotoWorld:
    """An in-process moto account with an organization and the ledger table of template.yaml."""

    org_id: str
    ec2: Any


@contextmanager
def moto_world(server: bool = False) -> Iterator[MotoWorld]:
    """`server`: a moto server process instead of in-process moto, so that this process's CPU time is the
    client's alone (our code and botocore), whatever moto spends."""
    import boto3
    from moto import mock_aws

    from devkit import moto_extensions, template
    from devkit.caches import reset_process_caches
    from devkit.moto_server import moto_server

    moto_extensions.install()  # in-process moto: what the project adds to it
    with contextlib.ExitStack() as stack:
        if server:
            url = stack.enter_context(moto_server())
            stack.enter_context(environment({"AWS_ENDPOINT_URL": url}))
        else:
            stack.enter_context(environment())
            stack.enter_context(mock_aws())
        reset_process_caches()
        org_id = boto3.client("organizations", region_name=REGION).create_organization(FeatureSet="ALL")[
            "Organization"]["Id"]
        template.create_tables(boto3.client("dynamodb", region_name=REGION), template.tables_for(TABLE))
        template.create_messaging(boto3.Session(region_name=REGION), template.messaging_for(TABLE))
        try:
            yield MotoWorld(org_id=org_id, ec2=boto3.client("ec2", region_name=REGION))
        finally:
            reset_process_caches()


def function_settings(function: str = "OnChangeFunction", **overrides: str) -> Any:
    """Settings exactly as template.yaml hands them to `function` (with parameter overrides)."""
    from devkit import template
    from vpce_guard.config import Settings

    spec = template.function_spec(function, resources={"LedgerTable": TABLE}, overrides=overrides)
    return Settings.from_env(spec.environment)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(measured: float, bound: float) -> float | None:
    return round(measured / bound, 3) if bound else None


def replace_marked(doc: Any, begin: str, end: str, body: str) -> bool:
    """Put `body` between the `begin` and `end` markers of the text file `doc` (False: no markers there)."""
    text = doc.read_text() if doc.exists() else ""
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{body}{end}{tail}")
    return True


#: Seconds a benchmark's client waits for a moto server's answer. moto copies the whole table for every
#: TransactWriteItems (to roll back), so on a loaded machine a first sweep's state writes can take longer than
#: the product's read timeout (aws.RETRY_CONFIG, meant for AWS). Benchmarks only; never the product.
MOTO_READ_TIMEOUT = 300


def patient_with_moto() -> None:
    """Give the clients created from now on MOTO_READ_TIMEOUT to read an answer."""
    from botocore.config import Config

    from vpce_guard import aws

    aws.RETRY_CONFIG = aws.RETRY_CONFIG.merge(Config(read_timeout=MOTO_READ_TIMEOUT))
