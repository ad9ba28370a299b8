"""botocore event hooks for tests: count calls and inject AWS error responses into clients the code under
test creates itself (the handlers build their own sessions, so hooks go where every new session looks:
botocore's built-in handler list, as moto's own hook does). Nothing of the project is patched."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self) -> bytes:
        return self._data


def ec2_error(request: Any, code: str, message: str, status: int = 400) -> AWSResponse:
    body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>test</RequestID></Response>").encode()
    return AWSResponse(request.url, status, {}, _Body(body))


def ec2_response(request: Any, operation: str, body: str) -> AWSResponse:
    """A successful EC2 answer (query protocol XML) to `operation` with `body` inside its response element."""
    xml = (f'<{operation}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>test</requestId>'
           f"{body}</{operation}Response>").encode()
    return AWSResponse(request.url, 200, {}, _Body(xml))


def json_error(request: Any, code: str, message: str, status: int = 400) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return AWSResponse(request.url, status, {"x-amzn-errortype": code}, _Body(body))


def install(monkeypatch: pytest.MonkeyPatch, event: str, handler: Callable[..., Any]) -> None:
    """Register `handler` for `event` in every botocore session created from now on (undone after the test)."""
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, (event, handler)])


class CallCounter:
    """Counts API calls by "service.Operation" (one per call; retries of a call are not counted again)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}.{operation}"] += 1

    def install(self, monkeypatch: pytest.MonkeyPatch) -> CallCounter:
        install(monkeypatch, "before-call", self)
        return self


#: Where a refused attempt is pointed, so that no backend (moto's included) acts on it.
_NOWHERE = "https://refused-by-test.invalid/"


class FailTimes:
    """A before-send hook that answers the first `times` attempts with an error response, then lets them through.

    botocore calls *every* before-send handler and uses the first response, so moto would still carry out a
    request we answer with an error. A refused attempt is therefore pointed at an address moto does not
    serve; the next attempt of the same request (botocore reuses the object for retries) gets its URL back
    before anyone else sees it.
    """

    def __init__(self, times: int, respond: Callable[[Any], AWSResponse]) -> None:
        self.left = times
        self.attempts = 0
        self._respond = respond
        self._urls: dict[int, str] = {}

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        original = self._urls.pop(id(request), None)
        if original is not None:
            request.url = original
        self.attempts += 1
        if self.left > 0:
            self.left -= 1
            response = self._respond(request)
            self._urls[id(request)] = request.url
            request.url = _NOWHERE
            return response
        return None
