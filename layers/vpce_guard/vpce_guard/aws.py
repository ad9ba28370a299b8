"""The only place that builds boto3 sessions and clients.

Why one place: retry policy (adaptive, so a sweep backs off under throttling), the client cache (clients
are expensive to create, a cold start should build each once) and cross-account credentials (cached per
account for their lifetime) must be the same for every caller.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials, create_assume_role_refresher
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.session import get_session

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="vpce-guard",
)


@dataclass
class AwsContext:
    """Clients for one account and region, built lazily and cached."""

    account: str
    region: str
    session: boto3.Session
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(service, region_name=self.region, config=RETRY_CONFIG)
            return self._clients[service]


class SessionFactory:
    """Hands out an `AwsContext` per (account, region).

    The function's own account uses the function's credentials; any other account is reached by assuming
    `SPOKE_ROLE_NAME` in it. Assumed-role credentials refresh themselves shortly before expiry
    (botocore's refreshable credentials), so they are fetched once per account and cold start, not per call.
    """

    def __init__(self, base_session: boto3.Session | None = None, spoke_role_name: str | None = None) -> None:
        self._base = base_session or boto3.Session()
        if spoke_role_name is None:
            spoke_role_name = os.environ.get("SPOKE_ROLE_NAME", "")
        self._spoke_role_name = spoke_role_name
        self._own_account: str | None = None
        self._sessions: dict[str, boto3.Session] = {}
        self._contexts: dict[tuple[str, str], AwsContext] = {}
        self._lock = threading.Lock()

    @property
    def own_account(self) -> str:
        if self._own_account is None:
            sts = self._base.client("sts", config=RETRY_CONFIG)
            self._own_account = sts.get_caller_identity()["Account"]
        return self._own_account

    def context(self, account: str, region: str) -> AwsContext:
        key = (account, region)
        with self._lock:
            ctx = self._contexts.get(key)
        if ctx is None:
            ctx = AwsContext(account=account, region=region, session=self._session_for(account))
            with self._lock:
                ctx = self._contexts.setdefault(key, ctx)
        return ctx

    def forget(self, account: str) -> None:
        """Drop the cached session and clients of an account, so the next `context()` assumes its role anew.

        Called when a call fails with expired or unrecognised credentials: refreshable credentials renew
        themselves before they expire, so such an error means the session itself went bad (revoked, or the
        clock is off) and a warm container would otherwise keep failing with it until it is recycled.
        """
        with self._lock:
            self._sessions.pop(account, None)
            for key in [k for k in self._contexts if k[0] == account]:
                del self._contexts[key]

    def _session_for(self, account: str) -> boto3.Session:
        if not self._spoke_role_name or account == self.own_account:
            return self._base
        with self._lock:
            if account in self._sessions:
                return self._sessions[account]
        role_arn = f"arn:aws:iam::{account}:role/{self._spoke_role_name}"
        sts = self._base.client("sts", config=RETRY_CONFIG)
        refresher = create_assume_role_refresher(sts, {"RoleArn": role_arn, "RoleSessionName": "vpce-guard"})
        botocore_session = get_session()
        botocore_session._credentials = DeferredRefreshableCredentials(
            refresh_using=refresher, method="sts-assume-role"
        )
        session = boto3.Session(botocore_session=botocore_session)
        with self._lock:
            return self._sessions.setdefault(account, session)


#: Error codes that mean "these credentials are no good any more": get new ones rather than retry with them.
CREDENTIAL_ERROR_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
})
#: Error codes a later attempt can get past (the SDK has already retried these with backoff when we see them).
TRANSIENT_ERROR_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "RequestThrottled",
    "TooManyRequestsException", "RequestLimitExceeded", "EC2ThrottledException", "SlowDown",
    "ProvisionedThroughputExceededException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable", "Unavailable",
})


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_credential_error(exc: BaseException) -> bool:
    return error_code(exc) in CREDENTIAL_ERROR_CODES


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same thing later can succeed: throttling, 5xx, network, stale credentials.

    Used to decide whether an invocation should fail so that the platform retries it (Lambda's async
    retries, an SQS redrive); a permanent error (AccessDenied, a validation error) is recorded and left.
    """
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in TRANSIENT_ERROR_CODES | CREDENTIAL_ERROR_CODES or status >= 500
    return isinstance(exc, BotoConnectionError | HTTPClientError)  # connection refused/reset, timeouts


_ORG_ID_CACHE: dict[str, str] = {}


def own_organization_id(ctx: AwsContext) -> str:
    """organizations:DescribeOrganization, once per cold start (the org of an account does not change)."""
    if "id" not in _ORG_ID_CACHE:
        org = ctx.client("organizations").describe_organization()["Organization"]
        _ORG_ID_CACHE["id"] = org["Id"]
    return _ORG_ID_CACHE["id"]


def reset_caches() -> None:
    """For tests: forget the cached organization id."""
    _ORG_ID_CACHE.clear()
