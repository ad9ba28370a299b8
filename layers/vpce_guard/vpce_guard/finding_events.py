"""Finding events: each status change of a (resource, rule), as an EventBridge event on the hub bus, so users
route them anywhere with a rule (chat, ticketing, a SIEM). Pure: views in, PutEvents entries out.

    source       vpce-guard
    detail-type  VPC Endpoint Finding Status Change
    detail       DETAIL_VERSION, change (opened | remediated | failed | flapping | conflict | exempted |
                 closed), the finding (account, region, resource, rule, severity, status and the status it
                 replaced, reason, what vpce-guard did or would do) and the ledger key of its history item.

The schema is documented in docs/findings.md, with an example rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from .asff import finding_id
from .finding_view import FindingView, cut
from .lifecycle import EventKind

SOURCE = "vpce-guard"
DETAIL_TYPE = "VPC Endpoint Finding Status Change"
DETAIL_VERSION = "1"
#: PutEvents takes at most 10 entries, and 256 KB in all, per call.
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
#: Texts are cut here so an entry stays far below the request limit.
TEXT_MAX = 2000


def detail(view: FindingView, change: EventKind) -> dict[str, Any]:
    """The event's detail: the ledger record's essentials, enough to act on without reading the ledger."""
    out: dict[str, Any] = {
        "version": DETAIL_VERSION,
        "change": change.value,
        "finding_id": finding_id(view.account, view.region, view.rule_id, view.resource_id),
        "account": view.account,
        "region": view.region,
        "resource_id": view.resource_id,
        "resource_type": view.resource_type,
        "resource_arn": view.resource_arn,
        "vpc_id": view.vpc_id,
        "rule_id": view.rule_id,
        "rule_title": view.title,
        "severity": view.severity,
        "status": view.status,
        "previous_status": view.previous_status,
        "reason": cut(view.reason, TEXT_MAX),
        "remediation": cut(view.remediation(), TEXT_MAX),
        "error": cut(view.error, TEXT_MAX) if view.error else None,
        "trigger": view.trigger,
        "time": view.time,
        "ledger": {"pk": view.ledger_pk, "sk": view.ledger_sk},
    }
    if view.exemption:
        out["exemption"] = view.exemption
    return out


def entry(view: FindingView, change: EventKind, bus: str) -> dict[str, Any]:
    """One PutEvents entry for the bus (a name or an ARN)."""
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail(view, change), default=str, separators=(",", ":")),
        "Resources": [view.resource_arn],
        "Time": datetime.fromisoformat(view.time.replace("Z", "+00:00")),
        "EventBusName": bus,
    }


def entry_size(e: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it (Source, DetailType, Detail, Resources and 14 bytes of Time)."""
    return (len(e["Source"].encode()) + len(e["DetailType"].encode()) + len(e["Detail"].encode())
            + sum(len(r.encode()) for r in e.get("Resources", [])) + (14 if e.get("Time") else 0))


def batches(entries: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Entries in PutEvents calls: at most MAX_ENTRIES and MAX_REQUEST_BYTES each."""
    batch: list[dict[str, Any]] = []
    size = 0
    for e in entries:
        n = entry_size(e)
        if batch and (len(batch) == MAX_ENTRIES or size + n > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(e)
        size += n
    if batch:
        yield batch
