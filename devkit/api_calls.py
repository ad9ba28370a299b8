"""Count every AWS API call botocore makes, by service and operation, without touching project code.

Why a botocore event hook and not a wrapper: vpce-guard builds its own sessions (one per cold start, one per
assumed spoke role), so there is no single client to wrap, and the count must include every call any of them
makes. botocore registers the handlers listed in `botocore.handlers.BUILTIN_HANDLERS` on every session it
creates (moto's in-process mock hooks in the same way), so appending one handler there reaches every client
of every session created afterwards. Import this module before the first session is created (tests/conftest.py
and the benchmarks do); `attach()` hooks a session or client that already exists.

What is counted:
- `before-call`: once per API call as the caller sees it (one page of a paginated read is one call),
  before retries. This is the number the performance targets are about.
- `before-send`: once per HTTP attempt, so retries (throttling) show up as attempts > calls.
- BatchWriteItem: the number of items in each request, so ledger batching can be reported as items per call.

    with count_api_calls() as calls:
        pipeline.run_targets(...)
    calls.count("ec2", "DescribeVpcEndpoints")   # → 1
    calls.writes()                               # → Counter of non-read operations
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore import handlers

#: Operation-name prefixes of calls that only read. Everything else counts as a write.
READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Search", "Lookup")

_ITEMS_KEY = "devkit_api_calls_items"
_START_KEY = "devkit_api_calls_start"


def is_read(operation: str) -> bool:
    """`DescribeVpcEndpoints` → True, `ModifyVpcEndpoint` / `BatchWriteItem` → False."""
    return operation.startswith(READ_PREFIXES)


@dataclass
class ApiCalls:
    """What was called while a `count_api_calls()` block ran. Safe to update from several threads."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (region, service, operation) → calls, for checks that a call went to the right region.
    by_region: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: Items per BatchWriteItem request, in call order.
    batch_write_items: list[int] = field(default_factory=list)
    #: Seconds spent inside calls (from botocore's parameter validation to the parsed answer, retries included),
    #: by (service, operation): wall time minus this is the time spent in our own code.
    seconds: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (start, end) of every call, to tell how much of a wall-clock span was spent waiting on AWS even when
    #: calls overlap (threads): summing `seconds` would count overlapping calls twice.
    intervals: list[tuple[float, float]] = field(default_factory=list)
    #: Every call as (service, operation, start, end, response bytes), in completion order: what a model of
    #: the run needs (benchmarks/orgsim: which calls overlap, how large each answer was).
    spans: list[tuple[str, str, float, float, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- recording (called from botocore handlers) ------------------------------------------------------
    def _call(self, service: str, operation: str, region: str | None, items: int | None) -> None:
        with self._lock:
            self.calls[(service, operation)] += 1
            self.by_region[(region or "", service, operation)] += 1
            if items is not None:
                self.batch_write_items.append(items)

    def _done(self, service: str, operation: str, start: float, end: float, size: int = 0) -> None:
        with self._lock:
            self.seconds[(service, operation)] += end - start
            self.intervals.append((start, end))
            self.spans.append((service, operation, start, end, size))

    def _attempt(self, service: str, operation: str) -> None:
        with self._lock:
            self.attempts[(service, operation)] += 1

    # -- reading ----------------------------------------------------------------------------------------
    def count(self, service: str | None = None, operation: str | None = None) -> int:
        """Calls, optionally of one service and/or one operation."""
        return sum(n for (s, o), n in self.calls.items()
                   if (service is None or s == service) and (operation is None or o == operation))

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reads(self, service: str | None = None) -> Counter[str]:
        """`Operation` → calls, for read-only operations (of one service, if given)."""
        return Counter({o: n for (s, o), n in self.calls.items() if is_read(o) and service in (None, s)})

    def writes(self, service: str | None = None) -> Counter[str]:
        """`Operation` → calls, for every operation that is not a read (of one service, if given)."""
        return Counter({o: n for (s, o), n in self.calls.items() if not is_read(o) and service in (None, s)})

    def by_operation(self) -> dict[str, int]:
        """`service:Operation` → calls, sorted: the form test failure messages and reports print."""
        return {f"{s}:{o}": n for (s, o), n in sorted(self.calls.items())}

    def retries(self) -> int:
        """HTTP attempts beyond the first of each call (throttling, transient errors)."""
        return max(0, sum(self.attempts.values()) - self.total)

    def seconds_in_calls(self) -> float:
        """Wall-clock time during which at least one call was in flight (overlapping calls counted once)."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.intervals):
            if end <= reach:
                continue
            total += end - max(start, reach)
            reach = end
        return total

    def items_per_batch_write(self) -> float | None:
        return sum(self.batch_write_items) / len(self.batch_write_items) if self.batch_write_items else None


# ------------------------------------------------------------------------------------------ the hook
_active: list[ApiCalls] = []
_active_lock = threading.Lock()


def _names(event_name: str) -> tuple[str, str]:
    """`before-call.ec2.DescribeVpcEndpoints` → ("ec2", "DescribeVpcEndpoints") (botocore's hyphenized service id)."""
    _, service, operation = event_name.split(".", 2)
    return service, operation


def _on_provide_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    # A call's time starts here, before botocore validates and serialises the request: that work is the SDK's,
    # and grows with the request (a BatchWriteItem of 25 items), so it belongs to the call, not to our code.
    context[_START_KEY] = time.perf_counter()
    if model.name == "BatchWriteItem" and isinstance(params.get("RequestItems"), dict):
        context[_ITEMS_KEY] = sum(len(v or ()) for v in params["RequestItems"].values())


def _on_before_call(event_name: str, context: dict[str, Any], **_: Any) -> None:
    if not _active:
        return
    service, operation = _names(event_name)
    items = context.get(_ITEMS_KEY) if operation == "BatchWriteItem" else None
    with _active_lock:
        counters = list(_active)
    for c in counters:
        c._call(service, operation, context.get("client_region"), items)


def _on_after_call(event_name: str, context: dict[str, Any], http_response: Any = None, **_: Any) -> None:
    start = context.get(_START_KEY)
    if start is None or not _active:
        return
    end = time.perf_counter()
    service, operation = _names(event_name)
    size = len(getattr(http_response, "content", b"") or b"") if http_response is not None else 0
    with _active_lock:
        counters = list(_active)
    for c in counters:
        c._done(service, operation, start, end, size)


def _on_before_send(event_name: str, **_: Any) -> None:
    if not _active:
        return
    service, operation = _names(event_name)
    with _active_lock:
        counters = list(_active)
    for c in counters:
        c._attempt(service, operation)


_HANDLERS: tuple[tuple[str, Any], ...] = (
    ("provide-client-params", _on_provide_params),
    ("before-call", _on_before_call),
    ("before-send", _on_before_send),
    ("after-call", _on_after_call),
    ("after-call-error", _on_after_call),
)


def install() -> None:
    """Hook every botocore session created from now on (idempotent)."""
    for spec in _HANDLERS:
        if spec not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(spec)


def attach(target: Any) -> None:
    """Hook a boto3/botocore session or a client that was created before `install()`."""
    events = getattr(getattr(target, "meta", None), "events", None)
    if events is None:
        botocore_session = getattr(target, "_session", target)
        events = botocore_session.get_component("event_emitter")
    for event_name, handler in _HANDLERS:
        events.register(event_name, handler, unique_id=f"devkit-api-calls-{event_name}-{handler.__name__}")


@contextmanager
def count_api_calls() -> Iterator[ApiCalls]:
    """Count the calls made while the block runs (blocks may nest; each counts what happens inside it)."""
    install()
    counter = ApiCalls()
    with _active_lock:
        _active.append(counter)
    try:
        yield counter
    finally:
        with _active_lock:
            _active.remove(counter)


install()
