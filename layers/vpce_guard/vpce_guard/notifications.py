"""What the notification topic says: findings that need a human (failed, unfixable, flapping, conflict), one
message per run, and the sweep's summary once per sweep. Pure: views and summaries in, (subject, message,
attributes) out; `publish.py` sends them.

Each message carries the attribute `kind` (`findings` or `sweep_summary`) and, for findings, `severity` (the
highest among them), so a subscription can filter (an SNS filter policy) to what its reader wants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .finding_view import FindingView, cut
from .lifecycle import EventKind

if TYPE_CHECKING:
    from .sweep import SweepSummary

#: SNS limits: a subject of at most 100 printable ASCII characters; a message of at most 256 KB.
SUBJECT_MAX = 100
MESSAGE_MAX = 200_000
#: Findings listed in full in one message; the rest are counted.
LISTED_MAX = 50
_RANK = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


@dataclass(frozen=True)
class Notification:
    subject: str
    message: str
    attributes: dict[str, str]

    def publish_kwargs(self, topic_arn: str) -> dict[str, Any]:
        return {"TopicArn": topic_arn, "Subject": self.subject, "Message": self.message,
                "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in self.attributes.items()}}


def _subject(text: str) -> str:
    ascii_only = "".join(c if 32 <= ord(c) < 127 else "-" for c in text)
    return cut(ascii_only, SUBJECT_MAX).replace("…", ".")


def _what(view: FindingView, change: EventKind) -> str:
    if change is EventKind.FAILED and view.unfixable:
        return "unfixable"
    return change.value


def findings_message(items: Sequence[tuple[FindingView, EventKind]]) -> Notification | None:
    """One message for the findings of a run that need a human (None when there are none)."""
    if not items:
        return None
    views = [v for v, _ in items]
    accounts = sorted({(v.account, v.region) for v in views})
    where = f"{accounts[0][0]} {accounts[0][1]}" if len(accounts) == 1 else f"{len(accounts)} account-regions"
    kinds = sorted({_what(v, c) for v, c in items})
    subject = _subject(f"vpce-guard: {len(items)} finding(s) need attention ({', '.join(kinds)}) in {where}")
    lines = [f"{len(items)} VPC endpoint finding(s) need a person's attention.", ""]
    for view, change in list(items)[:LISTED_MAX]:
        lines += [
            f"* {_what(view, change).upper()} [{view.severity}] {view.title}",
            f"  resource: {view.resource_id} ({view.resource_type}) in account {view.account}, {view.region}"
            + (f", {view.vpc_id}" if view.vpc_id and view.vpc_id != view.resource_id else ""),
            f"  status:   {view.previous_status or 'new'} -> {view.status}",
            f"  reason:   {cut(view.reason, 1000)}",
            *([f"  error:    {cut(view.error, 1000)}"] if view.error else []),
            f"  next:     {cut(view.remediation(), 1000)}",
            f"  ledger:   pk={view.ledger_pk} sk={view.ledger_sk}",
            "",
        ]
    if len(items) > LISTED_MAX:
        lines.append(f"... and {len(items) - LISTED_MAX} more: report findings --status failed,flapping lists them.")
    worst = max((v.severity for v in views), key=lambda s: _RANK.get(s, 0))
    return Notification(subject, cut("\n".join(lines), MESSAGE_MAX), {"kind": "findings", "severity": worst})


def sweep_message(summary: SweepSummary) -> Notification:
    """The sweep's summary: what it covered, what it found by rule and status, and which units failed."""
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(summary.statuses.items(), key=lambda kv: -kv[1])) or "none"
    needing = {s: n for s, n in summary.statuses.items()
               if s in ("non_compliant", "dry_run", "failed", "flapping", "conflict")}
    subject = _subject(f"vpce-guard sweep {summary.sweep_id}: {summary.units_done}/{summary.units_total} units, "
                       f"{sum(needing.values())} open, {summary.units_failed} failed")
    lines = [
        f"Sweep {summary.sweep_id} ({summary.status}), started {summary.started_at}, finished "
        f"{summary.finished_at or '-'}.",
        f"Accounts: {len(summary.accounts)}; regions: {', '.join(summary.regions) or '-'}; units: "
        f"{summary.units_done} of {summary.units_total} done, {summary.units_failed} failed; endpoints seen: "
        f"{summary.endpoints_seen}.",
        f"Evaluations by status: {statuses}.",
        "",
        "By rule:",
    ]
    for rule, counts in sorted(summary.findings_by_rule.items()):
        lines.append(f"  {rule}: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    if summary.failures:
        lines += ["", "Units that failed:"]
        lines += [f"  {f.get('account')} {f.get('region')}: {f.get('kind')}: {cut(str(f.get('reason')), 300)}"
                  for f in summary.failures]
    if summary.skipped_accounts:
        lines += ["", f"Accounts left out: {len(summary.skipped_accounts)}."]
    return Notification(subject, cut("\n".join(lines), MESSAGE_MAX), {"kind": "sweep_summary"})
