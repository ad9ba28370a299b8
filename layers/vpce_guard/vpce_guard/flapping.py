"""Flap protection: stop fixing a resource that someone keeps changing back.

If vpce-guard has fixed the same (resource, rule) `max_fixes` times within `window`, the next violation is
not fixed but recorded `flapping` (and counted in the `flapping` metric, which alarms): a person or a
pipeline is fighting the guardrail, and more fixes would only make noise and churn. It resumes by itself
when the oldest of those fixes leaves the window, or at once when an operator clears it (a `flap_reset`
record; `python -m vpce_guard.admin flapping clear`).

The counts come from the ledger itself: one Query on the resource's partition for the window (the sort key
starts with the time), never a scan and no second store to keep in step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .ledger import LedgerRecord, parse_stamp, resource_pk, stamp
from .models import Finding, Status, Trigger

RESET = "flap_reset"


@dataclass(frozen=True)
class FlapPolicy:
    max_fixes: int = 3
    window: timedelta = timedelta(hours=1)


def resources_of(finding: Finding) -> list[str]:
    """The ledger partitions a finding's fixes are recorded under: its resource and every resource it writes."""
    return sorted({finding.resource_id, *(a.resource_id for a in finding.actions)})


@dataclass(frozen=True)
class FlapState:
    """Recent fixes of one (resource, rule)."""

    rule_id: str
    resource_id: str
    fixes: int
    flapping: bool
    window_start: datetime
    #: When the count drops below the limit by itself (None when not flapping).
    resumes_at: datetime | None = None
    cleared_at: datetime | None = None

    def note(self, policy: FlapPolicy) -> str:
        minutes = int(policy.window.total_seconds() // 60)
        resume = stamp(self.resumes_at) if self.resumes_at else "the window passes"
        return (f"flapping: fixed {self.fixes} times in the last {minutes} minutes (limit {policy.max_fixes}); "
                f"not fixing again before {resume} unless an operator clears it")

    def details(self, policy: FlapPolicy) -> dict[str, Any]:
        return {"flapping": {"fixes_in_window": self.fixes, "max_fixes": policy.max_fixes,
                             "window_minutes": int(policy.window.total_seconds() // 60),
                             "resumes_at": stamp(self.resumes_at) if self.resumes_at else None}}


def assess(items: Iterable[Mapping[str, Any]], *, rule_id: str, resource_id: str, policy: FlapPolicy,
           now: datetime) -> FlapState:
    """Pure: ledger history items of a resource → how often this rule fixed it within the window.

    Counts the runs in which the rule fixed the resource (`remediated` evaluations, after the latest operator
    reset; the records of one run share their time, so a fix made in several steps counts once); rollbacks,
    dry runs and failed attempts are not fixes.
    """
    since = now - policy.window
    resets: list[datetime] = []
    fixes: list[datetime] = []
    for item in items:
        if item.get("rule_id") != rule_id or "time" not in item:
            continue
        at = parse_stamp(str(item["time"]))
        if at < since or at > now:
            continue
        kind = item.get("record_type", "evaluation")
        if kind == RESET:
            resets.append(at)
        elif kind == "evaluation" and item.get("status") == Status.REMEDIATED.value:
            fixes.append(at)
    cleared = max(resets) if resets else None
    counted = sorted({f for f in fixes if cleared is None or f > cleared})
    flapping = len(counted) >= policy.max_fixes
    resumes = counted[-policy.max_fixes] + policy.window if flapping else None
    return FlapState(rule_id, resource_id, len(counted), flapping, since, resumes, cleared)


def reset_record(*, account: str, region: str, resource_id: str, rule_id: str, operator: str, reason: str,
                 ttl_days: int, now: datetime) -> LedgerRecord:
    """The ledger record by which an operator ends a flapping state (it is also the audit trail)."""
    when = stamp(now)
    return LedgerRecord(
        pk=resource_pk(account, region, resource_id), sk=f"EVAL#{when}#{rule_id}#{uuid.uuid4().hex[:12]}",
        record_type=RESET, account=account, region=region, resource_id=resource_id, resource_type="resource",
        rule_id=rule_id, status=Status.SKIPPED, reason=f"operator cleared flapping: {reason}"[:2000],
        trigger=Trigger(source="manual", event_name="ClearFlapping", actor_arn=operator), time=when,
        expires_at=int(now.timestamp()) + ttl_days * 86400,
    )
