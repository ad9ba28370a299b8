"""The only place that builds boto3 sessions and clients.

Why one place: retry policy (adaptive, so a sweep backs off under throttling), the client cache (clients
are expensive to create, a cold start should build each once) and cross-account credentials (cached per
account for their lifetime) must be the same for every caller.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials, create_assume_role_refresher
from botocore.exceptions import ClientError, DataNotFoundError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.loaders import Loader, instance_cache
from botocore.session import get_session

from . import sdk_data

#: Session name of every spoke-role session: CloudTrail in member accounts shows
#: `assumed-role/<SPOKE_ROLE_NAME>/vpce-guard` for each change vpce-guard makes.
ROLE_SESSION_NAME = "vpce-guard"

#: Independent AWS calls in flight at once (side_by_side): below botocore's default pool of 10 connections.
#: PARALLEL_CALLS (template: SweepParallelCalls, for the sweep worker) lowers it: EC2 refills a Describe*
#: bucket at 20 requests a second per account and Region, and a large unit's per-VPC reads drain it
#: (docs/org-scale.md).
MAX_PARALLEL_CALLS = 8


def _parallel_calls(value: str | None) -> int:
    try:
        return max(1, min(MAX_PARALLEL_CALLS, int(value))) if value else MAX_PARALLEL_CALLS
    except ValueError:
        return MAX_PARALLEL_CALLS


CONCURRENCY = _parallel_calls(os.environ.get("PARALLEL_CALLS"))

T = TypeVar("T")
R = TypeVar("R")


def side_by_side(call: Callable[[T], R], items: Sequence[T], max_workers: int | None = None) -> list[R]:
    """`[call(i) for i in items]`, up to `max_workers` at once when there is more than one.

    For independent calls whose latency adds up (per-VPC attributes, ledger batches, recent fixes of each
    resource): boto3 clients are thread-safe, and the client's retry mode paces throttled calls. Results keep
    the items' order; the first failure is raised, as the loop would."""
    workers = min(max_workers or CONCURRENCY, len(items))
    if workers <= 1:
        return [call(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, items))


RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="vpce-guard",
)


class DirectLoader(Loader):
    """botocore's data loader, without its walk of every service folder.

    Before loading the first model of each kind (service-2, endpoint-rule-set-1, paginators-1, resources-1 …)
    botocore lists every service folder it knows (over 400) and looks in each, to check the service exists: a
    few thousand file-system calls per kind at every cold start. This loader looks for the one service asked
    for, and does the full walk only when that service is not found, to raise botocore's own error."""

    @instance_cache
    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        try:
            version = api_version or self.determine_latest_version(service_name, type_name)
        except DataNotFoundError:
            return super().load_service_model(service_name, type_name, api_version)
        model = self.load_data(os.path.join(service_name, version, type_name))
        self._extras_processor.process(model, self._find_extras(service_name, type_name, version))
        return model


_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def new_session(**kwargs: Any) -> boto3.Session:
    """A boto3 Session that shares this process's botocore data loader.

    Parsing service models is the largest cost of a new session's first client (EC2's is ~0.3 s); with
    one loader per process each model is parsed once, whatever the number of accounts (one session
    each) or of runtimes built in one process (tests, in-process sweeps). In a built layer the loader looks
    in the layer's cut SDK data first (`sdk_data`: the EC2 model with only the operations vpce-guard calls).
    """
    global _LOADER
    core = get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            data_path = core.get_config_variable("data_path")  # AWS_DATA_PATH, as botocore's create_loader
            extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] \
                if data_path else []
            cut = sdk_data.search_path()
            _LOADER = DirectLoader(extra_search_paths=[*([cut] if cut else []), *extra])
        core.register_component("data_loader", _LOADER)
        session = boto3.Session(botocore_session=core, **kwargs)
        # boto3 appends its own data folder to the loader's search paths for every Session: keep one copy.
        paths = _LOADER.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


def dynamodb(session: boto3.Session) -> Any:
    """The DynamoDB resource of a session, built on first use, one per session: the ledger and the exemption
    registry share its client (each client costs a cold start tens of ms). Powertools Idempotency needs a
    plain client (a resource's client converts types itself), so it keeps its own."""
    with _LOADER_LOCK:
        resource = getattr(session, "_vpce_guard_dynamodb", None)
    if resource is None:
        resource = session.resource("dynamodb", config=RETRY_CONFIG)
        with _LOADER_LOCK:
            resource = session.__dict__.setdefault("_vpce_guard_dynamodb", resource)
    return resource


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


class AccountUnreachable(Exception):
    """No way to act in this account: it is not the function's own and no spoke role is configured.

    Raised instead of quietly falling back to the function's own credentials, which would read (and fix)
    the hub account while the ledger files the result under the member account.
    """


def is_assume_role_failure(exc: BaseException) -> bool:
    """True when an error comes from assuming the spoke role (role missing, trust refusing us), not from
    the call made with the role: botocore fetches deferred credentials inside the first API call, so the
    AssumeRole error surfaces there."""
    return isinstance(exc, ClientError) and exc.operation_name == "AssumeRole"


class SessionFactory:
    """Hands out an `AwsContext` per (account, region).

    The function's own account uses the function's credentials; any other account is reached by assuming
    `SPOKE_ROLE_NAME` in it. Assumed-role credentials are fetched on first use and refresh themselves
    shortly before expiry (botocore's refreshable credentials), so a warm function assumes the role once
    per account and credential lifetime, whatever the number of regions, calls or invocations. One STS
    client (regional endpoint of the function's region, so the tokens are valid in opt-in regions too)
    and the process's botocore data loader are shared by all accounts, so a new account costs no model
    parsing.
    """

    def __init__(self, base_session: boto3.Session | None = None, spoke_role_name: str | None = None, *,
                 role_session_name: str = ROLE_SESSION_NAME) -> None:
        self._base = base_session or new_session()
        if spoke_role_name is None:
            spoke_role_name = os.environ.get("SPOKE_ROLE_NAME", "")
        self._spoke_role_name = spoke_role_name
        self._role_session_name = role_session_name
        self._identity: tuple[str, str] | None = None  # (account, partition) of the base credentials
        self._sts: Any = None
        self._own_arn = ""
        self._sessions: dict[str, boto3.Session] = {}
        self._contexts: dict[tuple[str, str], AwsContext] = {}
        self._lock = threading.Lock()

    @property
    def spoke_role_name(self) -> str:
        return self._spoke_role_name

    @property
    def home_region(self) -> str:
        """The function's own region (where its STS endpoint and the ledger are)."""
        return self._base.region_name or os.environ.get("AWS_REGION") or "us-east-1"

    def _caller(self) -> tuple[str, str]:
        if self._identity is None:
            self._ask_sts()
        assert self._identity is not None
        return self._identity

    def _ask_sts(self) -> None:
        arn = self._sts_client().get_caller_identity()["Arn"]
        self._own_arn = arn
        parts = arn.split(":")
        self._identity = (parts[4], parts[1])

    def adopt_function_arn(self, function_arn: str) -> None:
        """The own account and partition, from the running function's ARN (the Lambda context's
        `invoked_function_arn`, `arn:<partition>:lambda:<region>:<account>:function:<name>[:<alias>]`):
        what sts:GetCallerIdentity would answer, without its client and round trip at a cold start. Anything
        else is ignored (STS is asked on first need, as before). Only inside Lambda itself (the service sets
        AWS_LAMBDA_INITIALIZATION_TYPE): a local runner's or an emulator's context names an account of its
        own, which need not be the one its credentials belong to."""
        parts = (function_arn or "").split(":")
        in_lambda = bool(os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"))
        if (self._identity is None and in_lambda and len(parts) >= 7 and parts[0] == "arn"
                and parts[2] == "lambda" and parts[4].isdigit() and len(parts[4]) == 12
                and parts[1].startswith("aws")):
            self._identity = (parts[4], parts[1])

    @property
    def own_account(self) -> str:
        return self._caller()[0]

    @property
    def partition(self) -> str:
        return self._caller()[1]

    def spoke_role_arn(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{account}:role/{self._spoke_role_name}"

    def home(self) -> AwsContext:
        """The function's own account in its own region (organizations, the ledger's region)."""
        return self.context(self.own_account, self.home_region)

    @property
    def own_arn(self) -> str:
        """The caller's ARN (in Lambda: the function role's session, `…:assumed-role/<role>/<function>`)."""
        if not self._own_arn:
            self._ask_sts()
        return self._own_arn

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

    def _sts_client(self) -> Any:
        with self._lock:
            if self._sts is None:
                self._sts = self._base.client("sts", region_name=self.home_region, config=RETRY_CONFIG)
            return self._sts

    def _session_for(self, account: str) -> boto3.Session:
        if account == self.own_account:
            return self._base
        if not self._spoke_role_name:
            raise AccountUnreachable(
                f"account {account} is not this function's account ({self.own_account}) and SPOKE_ROLE_NAME "
                "is not set, so there is no role to act there")
        with self._lock:
            if account in self._sessions:
                return self._sessions[account]
        refresher = create_assume_role_refresher(self._sts_client(), {
            "RoleArn": self.spoke_role_arn(account), "RoleSessionName": self._role_session_name})
        session = new_session()
        session._session._credentials = DeferredRefreshableCredentials(
            refresh_using=refresher, method="sts-assume-role"
        )
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
