"""One in-process moto account for a test, a module or a fixture: the environment a handler sees in Lambda
(test credentials, the region, tracing off), nothing of the developer's own AWS configuration, and caches that
start cold and end cold. The one place that sets this up (tests/integration/conftest.py's `aws_env`, the runner
matrix, the sweep runner's hubs and the handler fuzz bed use it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto import mock_aws

from devkit.caches import reset_process_caches

REGION = "us-east-1"
#: The developer's own settings that would point boto3 elsewhere than moto.
UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")
ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
               "POWERTOOLS_TRACE_DISABLED": "true"}


@contextmanager
def moto_account(mp: pytest.MonkeyPatch, *, unset: tuple[str, ...] = (), **extra: str) -> Iterator[None]:
    """Inside: moto, the environment above (plus `extra`, minus `unset`), process caches reset on the way in
    and out. The environment changes go through `mp`, so they end with it."""
    for name in (*UNSET, *unset):
        mp.delenv(name, raising=False)
    for name, value in {**ENVIRONMENT, **extra}.items():
        mp.setenv(name, value)
    with mock_aws():
        reset_process_caches()
        yield
    reset_process_caches()
