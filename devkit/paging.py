"""Make moto page its list results the way AWS does, so call counts mean what they would mean on AWS.

moto 5.2.5 ignores MaxResults and never returns a NextToken: every Describe* answers in one page, so a
call counter would show one call for 10,000 route tables. This module models AWS paging on the client side,
with botocore event hooks on every session (same mechanism as `devkit.api_calls`):

- `provide-client-params`: a NextToken we issued is taken out of the request (moto would not understand
  it) and turned into an offset;
- `after-call`: the full result moto returned is cut to one page (MaxResults if given, else the API's
  maximum, never more than the maximum) starting at that offset, and a NextToken is added when more remain;
- `before-call` (registered last, so call counters still see the call): later pages of the same listing are
  served from the full answer moto gave for the first page. moto serialises every item on every call, so
  asking it again per page would make a 1,000-route-table listing cost ten full serialisations (minutes).

Page sizes are the maxima AWS documents and botocore's service model records (`max` of the MaxResults
shape: DescribeRouteTables 100, DescribeVpcs 1000, organizations ListAccounts 20 …; DescribeVpcEndpoints and
DescribeVpcEndpointServices say "if greater than 1,000, we return only 1,000"). When MaxResults is absent the
model assumes AWS returns a full page of the maximum size. Operations moto already pages natively (a real
NextToken in its answer) are left alone. The model is off unless a `aws_paging()` block is active.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from botocore import handlers

_TOKEN_PREFIX = "devkit-page:"  # noqa: S105 - a page marker, not a secret
_OFFSET_KEY = "devkit_paging_offset"
_CACHE_KEY = "devkit_paging_key"
_SERVED_KEY = "devkit_paging_served"
#: Operations whose MaxResults shape has no `max` in the service model: AWS documents the cap in prose.
DOCUMENTED_MAXIMA: Mapping[tuple[str, str], int] = {
    ("ec2", "DescribeVpcEndpoints"): 1000,
    ("ec2", "DescribeVpcEndpointServices"): 1000,
    ("ec2", "DescribeVpcEndpointConnections"): 1000,
}
DEFAULT_MAXIMUM = 1000

_state_lock = threading.Lock()
_overrides: list[dict[tuple[str, str], int]] = []
#: Full answers of listings being paged, by (service, operation, parameters without the token).
_answers: dict[str, dict[str, Any]] = {}


@lru_cache(maxsize=1)
def _models() -> Any:
    from botocore.session import get_session

    return get_session()


_specs: dict[tuple[str, str], tuple[str, str, int] | None] = {}


def _paging_spec(service: str, operation: str, operation_model: Any = None) -> tuple[str, str, int] | None:
    """(result key, limit key, maximum page size) of an operation AWS pages with NextToken, else None.

    Read from the calling client's own operation model when there is one: loading EC2's service model again in
    a second botocore session costs a few hundred milliseconds, which would be charged to the code measured.
    """
    key = (service, operation)
    if key in _specs:
        return _specs[key]
    try:
        paginator = _models().get_paginator_model(service).get_paginator(operation)
    except ValueError:
        _specs[key] = None
        return None
    result_key = paginator.get("result_key")
    limit_key = paginator.get("limit_key")
    if (not isinstance(result_key, str) or not limit_key or paginator.get("input_token") != "NextToken"
            or paginator.get("output_token") != "NextToken"):
        _specs[key] = None  # several result keys, DynamoDB-style keys, or no page size: not modelled
        return None
    op_model = operation_model or _models().get_service_model(service).operation_model(operation)
    shape = op_model.input_shape
    member = shape.members.get(limit_key) if shape is not None else None
    maximum = (member.metadata.get("max") if member is not None else None) or DOCUMENTED_MAXIMA.get(
        (service, operation), DEFAULT_MAXIMUM)
    _specs[key] = (result_key, limit_key, int(maximum))
    return _specs[key]


def page_size(service: str, operation: str, requested: int | None = None) -> int:
    """The page size the model uses for a call (for lower-bound arithmetic in benchmarks and tests)."""
    spec = _paging_spec(service, operation)
    if spec is None:
        raise ValueError(f"{service}:{operation} is not a NextToken-paged operation")
    maximum = _maximum(service, operation, spec[2])
    return min(requested, maximum) if requested else maximum


def pages(service: str, operation: str, items: int, requested: int | None = None) -> int:
    """Calls needed to list `items` results (at least one: an empty answer is still a call)."""
    return max(1, math.ceil(items / page_size(service, operation, requested)))


def _maximum(service: str, operation: str, default: int) -> int:
    with _state_lock:
        for table in reversed(_overrides):
            if (service, operation) in table:
                return table[(service, operation)]
    return default


def _on_provide_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if not _overrides:
        return
    token = params.get("NextToken")
    if isinstance(token, str) and token.startswith(_TOKEN_PREFIX):
        del params["NextToken"]
        context[_OFFSET_KEY] = int(token[len(_TOKEN_PREFIX):])
    if _paging_spec(model.service_model.service_name, model.name, model) is not None:
        context[_CACHE_KEY] = json.dumps([model.service_model.service_name, model.name, params], sort_keys=True,
                                         default=str)


def _on_before_call(model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
    """A later page: answer from the first page's full result instead of asking moto again."""
    if not _overrides or not context.get(_OFFSET_KEY):
        return None
    with _state_lock:
        full = _answers.get(context.get(_CACHE_KEY, ""))
    if full is None:
        return None
    from botocore.awsrequest import AWSResponse

    context[_SERVED_KEY] = True
    parsed = dict(full)
    _cut(parsed, model, context)
    return AWSResponse(url="", status_code=200, headers={}, raw=None), parsed


def _on_after_call(parsed: dict[str, Any], model: Any, context: dict[str, Any], http_response: Any,
                   **_: Any) -> None:
    if not _overrides or getattr(http_response, "status_code", 200) >= 300 or context.get(_SERVED_KEY):
        return
    spec = _paging_spec(model.service_model.service_name, model.name, model)
    if spec is None or parsed.get("NextToken") or not isinstance(parsed.get(spec[0]), list):
        return  # not modelled, or moto pages this one natively
    if len(parsed[spec[0]]) > _page_size(model, context) and _CACHE_KEY in context:
        with _state_lock:
            _answers[context[_CACHE_KEY]] = dict(parsed)
    _cut(parsed, model, context)


def _page_size(model: Any, context: dict[str, Any]) -> int:
    spec = _paging_spec(model.service_model.service_name, model.name, model)
    assert spec is not None
    size = _maximum(model.service_model.service_name, model.name, spec[2])
    requested = context.get("devkit_paging_requested")
    return min(size, requested) if isinstance(requested, int) and requested > 0 else size


def _cut(parsed: dict[str, Any], model: Any, context: dict[str, Any]) -> None:
    """Cut a full answer to the page the request asked for, adding a NextToken when more remain."""
    spec = _paging_spec(model.service_model.service_name, model.name, model)
    assert spec is not None
    result_key = spec[0]
    items = parsed[result_key]
    size = _page_size(model, context)
    offset = int(context.get(_OFFSET_KEY, 0))
    parsed[result_key] = items[offset:offset + size]
    parsed.pop("NextToken", None)
    if offset + size < len(items):
        parsed["NextToken"] = f"{_TOKEN_PREFIX}{offset + size}"
    elif offset:
        with _state_lock:
            _answers.pop(context.get(_CACHE_KEY, ""), None)


def _remember_limit(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if not _overrides:
        return
    spec = _paging_spec(model.service_model.service_name, model.name, model)
    if spec is not None and isinstance(params.get(spec[1]), int):
        context["devkit_paging_requested"] = params[spec[1]]


_HANDLERS: tuple[tuple[Any, ...], ...] = (
    ("provide-client-params", _on_provide_params),
    ("provide-client-params", _remember_limit),
    ("before-call", _on_before_call, handlers.REGISTER_LAST),
    ("after-call", _on_after_call),
)


def install() -> None:
    """Hook every botocore session created from now on (idempotent); inert outside `aws_paging()`."""
    for spec in _HANDLERS:
        if spec not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(spec)


@contextmanager
def aws_paging(page_sizes: Mapping[tuple[str, str], int] | None = None) -> Iterator[None]:
    """Page moto's list answers like AWS while the block runs.

    `page_sizes` overrides the maximum of some operations, e.g. `{("ec2", "DescribeRouteTables"): 5}` to
    exercise paging with a handful of resources in a test.
    """
    install()
    table = dict(page_sizes or {})
    with _state_lock:
        _overrides.append(table)
    try:
        yield
    finally:
        with _state_lock:
            for i in range(len(_overrides) - 1, -1, -1):
                if _overrides[i] is table:
                    del _overrides[i]
                    break
            if not _overrides:
                _answers.clear()


install()
