"""Fault injection for boto3 under moto: throttling, 5xx and expired credentials on chosen API calls.

Built on botocore's event system, the documented extension point every client goes through:

* ``before-call.<service>.<Operation>``: a handler that returns ``(http_response, parsed)`` replaces the
  call; the request never reaches moto (so a write is *not applied*) and the client raises the error at
  once. botocore's retries run below this event, so this models an error that survived the SDK's retries
  (``stage="call"``).
* ``before-send.<service>.<Operation>``: a handler that returns an HTTP response replaces what the
  server sent for one attempt. The SDK's own retry logic (our ``RETRY_CONFIG``: adaptive, 8 attempts)
  then decides whether to retry (``stage="send"``). moto's own stub is a handler of the same event and
  still processes every attempt, so a write faulted here *was applied* and only its answer was an error:
  the "500 after commit" case. For reads that makes no difference.

The product builds its own sessions (the function's, and one per assumed spoke role), so a test cannot
hand it an emitter. `FaultInjector.installed()` therefore adds its handlers to botocore's built-in
handler list, which every new botocore session registers on its event system at creation: the same
route moto itself takes to intercept calls. `attach()` registers on one given emitter instead
(``boto3.Session().events``).

Every call (and every attempt) is recorded, which the least-privilege test uses to see which operations
a function really makes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from botocore import handlers as botocore_handlers
from botocore.awsrequest import AWSResponse

EC2_THROTTLE = "RequestLimitExceeded"
DYNAMODB_THROTTLE = "ProvisionedThroughputExceededException"
EXPIRED_TOKEN = "ExpiredToken"

_MESSAGES = {
    EC2_THROTTLE: "Request limit exceeded.",
    DYNAMODB_THROTTLE: "The level of configured provisioned throughput for the table was exceeded.",
    "ThrottlingException": "Rate exceeded",
    EXPIRED_TOKEN: "The security token included in the request is expired",
    "InternalError": "An internal error has occurred",
    "InternalServerError": "Internal server error",
    "ServiceUnavailable": "Service Unavailable",
}


@dataclass(frozen=True)
class Call:
    """One API call (stage "call") or one attempt of it on the wire (stage "send")."""

    service: str  # botocore service id, hyphenized: ec2, dynamodb, sts, organizations
    operation: str  # ModifyVpcEndpoint
    stage: str
    access_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass
class Fault:
    """Answer matching calls with an error instead of the service's response.

    `target` is ``"<service>.<Operation>"`` (``"ec2.ModifyVpcEndpoint"``; ``"<service>.*"`` for every
    operation of a service). The first `skip` matching calls go through; then `times` matching calls
    (stage "call") or attempts (stage "send") fail before calls go through again (None: all of them).
    `when` narrows the match further (e.g. only calls signed with one access key).
    """

    target: str
    code: str
    status: int = 400
    stage: str = "call"
    times: int | None = 1
    when: Callable[[Call], bool] | None = None
    message: str | None = None
    skip: int = 0
    fired: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.stage not in ("call", "send"):
            raise ValueError(f"stage must be 'call' or 'send', not {self.stage!r}")
        if "." not in self.target:
            raise ValueError(f"target must be '<service>.<Operation>', not {self.target!r}")

    def matches(self, call: Call) -> bool:
        service, _, operation = self.target.partition(".")
        if call.stage != self.stage or call.service != service or operation not in ("*", call.operation):
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.when is not None and not self.when(call):
            return False
        self.seen += 1
        return self.seen > self.skip

    @property
    def text(self) -> str:
        return self.message or _MESSAGES.get(self.code, "injected fault")


def throttle(target: str, *, times: int | None = 1, stage: str = "call", skip: int = 0) -> Fault:
    """The throttling error of the target's service (EC2, DynamoDB, or the generic one)."""
    service = target.split(".", 1)[0]
    code = {"ec2": EC2_THROTTLE, "dynamodb": DYNAMODB_THROTTLE}.get(service, "ThrottlingException")
    return Fault(target, code, status=503 if service == "ec2" else 400, stage=stage, times=times, skip=skip)


def server_error(target: str, *, times: int | None = 1, stage: str = "call", skip: int = 0,
                 when: Callable[[Call], bool] | None = None) -> Fault:
    """An HTTP 500 with the service's internal-error code."""
    service = target.split(".", 1)[0]
    code = {"ec2": "InternalError", "dynamodb": "InternalServerError"}.get(service, "InternalFailure")
    return Fault(target, code, status=500, stage=stage, times=times, skip=skip, when=when)


def expired_token(target: str, *, times: int | None = 1, when: Callable[[Call], bool] | None = None) -> Fault:
    """What a service answers a request signed with an expired session token (never retried by the SDK)."""
    return Fault(target, EXPIRED_TOKEN, status=400, times=times, when=when)


class FaultInjector:
    """A set of faults plus a log of every call seen while installed."""

    def __init__(self, *faults: Fault) -> None:
        self.faults: list[Fault] = list(faults)
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    # -- what tests read ----------------------------------------------------------------------------------
    def operations(self, stage: str = "call") -> list[str]:
        """`service.Operation` of every recorded call, in order."""
        return [c.name for c in self.calls if c.stage == stage]

    def count(self, name: str, stage: str = "call") -> int:
        return sum(1 for c in self.calls if c.stage == stage and c.name == name)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    # -- installation -------------------------------------------------------------------------------------
    def attach(self, events: Any) -> None:
        """Register on one event system (a boto3 Session's `.events` or a client's `.meta.events`)."""
        events.register("before-call", self._on_call)
        events.register_first("before-send", self._on_send)

    @contextlib.contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Hook every botocore session created inside the block (see the module docstring)."""
        specs = [("before-call", self._on_call), ("before-send", self._on_send, botocore_handlers.REGISTER_FIRST)]
        botocore_handlers.BUILTIN_HANDLERS.extend(specs)
        try:
            yield self
        finally:
            for spec in specs:
                botocore_handlers.BUILTIN_HANDLERS.remove(spec)

    # -- handlers -----------------------------------------------------------------------------------------
    def _fire(self, call: Call) -> Fault | None:
        with self._lock:
            self.calls.append(call)
            for fault in self.faults:
                if fault.matches(call):
                    fault.fired += 1
                    return fault
        return None

    def _on_call(self, event_name: str, model: Any, params: dict[str, Any], request_signer: Any = None,
                 **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        _, service, operation = event_name.split(".", 2)
        credentials = getattr(request_signer, "_credentials", None)  # test-only introspection
        access_key = getattr(credentials, "access_key", None) if credentials is not None else None
        body = params.get("body")  # EC2/query: the form fields as a dict; JSON protocols: bytes
        fault = self._fire(Call(service, operation, "call", access_key, _call_params(body)))
        if fault is None:
            return None
        request_id = str(uuid.uuid4())
        http = AWSResponse(params.get("url", "https://faults.invalid/"), fault.status, {}, _Raw(b""))
        parsed = {
            "Error": {"Code": fault.code, "Message": fault.text},
            "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": fault.status, "HTTPHeaders": {},
                                 "RetryAttempts": 0},
        }
        return http, parsed

    def _on_send(self, event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        fault = self._fire(Call(service, operation, "send", _access_key_of(request), _form_fields(request)))
        if fault is None:
            return None
        headers, body = _error_body(service, request, fault)
        return AWSResponse(request.url, fault.status, headers, _Raw(body))


def _call_params(body: Any) -> dict[str, Any]:
    """The request's parameters: EC2/query form fields as they are, a JSON protocol's body parsed."""
    if isinstance(body, dict):
        return dict(body)
    if isinstance(body, bytes | str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


class _Raw:
    """The minimal raw-stream interface botocore reads a response body through."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body


def _access_key_of(request: Any) -> str | None:
    auth = request.headers.get("Authorization")
    if isinstance(auth, bytes):
        auth = auth.decode()
    if not auth or "Credential=" not in auth:
        return None
    return auth.split("Credential=", 1)[1].split("/", 1)[0]


def _form_fields(request: Any) -> dict[str, Any]:
    """The parameters of a query/EC2-protocol request (form-encoded body); {} for other protocols."""
    if "x-www-form-urlencoded" not in _header(request, "Content-Type"):
        return {}
    body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
    return {k: v[0] for k, v in parse_qs(body).items()}


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _error_body(service: str, request: Any, fault: Fault) -> tuple[dict[str, str], bytes]:
    """An error response in the wire protocol the request was sent in (what botocore will parse)."""
    request_id = str(uuid.uuid4())
    content_type = _header(request, "Content-Type")
    if "json" in content_type:  # DynamoDB, Organizations (awsJson1.0/1.1)
        body = json.dumps({"__type": f"com.amazonaws.{service}#{fault.code}", "message": fault.text})
        return {"x-amzn-RequestId": request_id, "Content-Type": content_type}, body.encode()
    if service == "ec2":  # EC2's own query protocol
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{fault.code}</Code>"
                f"<Message>{fault.text}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        return {"Content-Type": "text/xml"}, body.encode()
    # The query protocol (STS, SQS-query, ...)
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code><Message>{fault.text}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return {"Content-Type": "text/xml"}, body.encode()


@contextlib.contextmanager
def no_backoff() -> Iterator[None]:
    """Skip the SDK's waits between retries (its retry *decisions* stay botocore's own).

    Adaptive retry mode sleeps with exponential backoff and, after a throttle, rate-limits the client
    with a token bucket; both would make a fault test take seconds of wall time for nothing.
    """
    from botocore.retries import adaptive, standard

    saved_delay = standard.ExponentialBackoff.delay_amount
    saved_send = adaptive.ClientRateLimiter.on_sending_request
    standard.ExponentialBackoff.delay_amount = lambda self, context: 0  # type: ignore[method-assign]
    adaptive.ClientRateLimiter.on_sending_request = lambda self, request, **kwargs: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        standard.ExponentialBackoff.delay_amount = saved_delay  # type: ignore[method-assign]
        adaptive.ClientRateLimiter.on_sending_request = saved_send  # type: ignore[method-assign]
