"""Sends a run's status changes beyond the ledger: Security Hub findings (ASFF) in each resource's own account
and region, finding events on the hub bus, and what needs a person to the notification topic. The imperative
shell around the pure mappings (asff.py, finding_events.py, notifications.py; lifecycle.py decides).

Rules every path keeps:
* it runs after the ledger is written (the ledger is the source of truth), with only the changes a write
  reported: a run that changes nothing makes no call here;
* it never fails the run: a Security Hub, EventBridge or SNS error is logged and recorded in the ledger
  (pk PUBLISH#failures, with a TTL) and the run goes on;
* Security Hub not enabled in an account-region is recorded once (pk PUBLISH#securityhub, sk
  NOT_ENABLED#<account>#<region>, refreshed by each new container that meets it) and that account-region is
  not asked again by this container for NOT_ENABLED_RECHECK;
* batches: 100 findings per BatchImportFindings, 10 entries per PutEvents, one SNS message per run;
  whole calls that are throttled are retried by botocore (the adaptive retry mode of aws.RETRY_CONFIG), and
  findings or entries that a call answers as failed with a throttling or internal code are sent again after a
  growing pause, up to RETRY_ROUNDS times.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from . import asff, aws, finding_events, notifications
from .finding_view import FindingView, cut
from .ledger import StatusChange, expires_at, stamp
from .lifecycle import event_kind, needs_human, publishes

if TYPE_CHECKING:
    from .pipeline import Runtime
    from .sweep import SweepSummary

logger = Logger(service="vpce-guard", child=True)
T = TypeVar("T")

#: How long a container trusts that Security Hub is off in an account-region before it tries again.
NOT_ENABLED_RECHECK = timedelta(hours=1)
#: Days the "not enabled" item is kept (each container that meets it again writes it anew).
NOT_ENABLED_TTL_DAYS = 7
#: Security Hub's answers (call errors and FailedFindings codes) meaning it is not enabled there.
NOT_ENABLED_CODES = frozenset({"InvalidAccessException", "InvalidAccess"})
#: Per-finding or per-entry failure codes worth another try.
RETRY_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException",
                         "LimitExceeded", "InternalException", "InternalFailure", "InternalError",
                         "ServiceUnavailable"})
RETRY_ROUNDS = 3
FAILURES_PK = "PUBLISH#failures"
SECURITY_HUB_PK = "PUBLISH#securityhub"


@dataclass
class PublishReport:
    """What one run sent, and what it could not."""

    security_hub: int = 0
    events: int = 0
    notifications: int = 0
    #: Account-regions skipped because Security Hub is not enabled there.
    security_hub_not_enabled: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"security_hub": self.security_hub, "events": self.events,
                               "notifications": self.notifications}
        if self.security_hub_not_enabled:
            out["security_hub_not_enabled"] = self.security_hub_not_enabled
        if self.failures:
            out["failures"] = [{k: v for k, v in f.items() if k != "ids"} for f in self.failures]
        return out


class Publisher:
    """One per cold start (Runtime.publisher): the settings say which targets are on."""

    def __init__(self, rt: Runtime, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rt = rt
        self.sleep = sleep
        #: (account, region) → when this container found Security Hub not enabled there.
        self._not_enabled: dict[tuple[str, str], datetime] = {}

    @property
    def enabled(self) -> bool:
        s = self.rt.settings
        return bool(s.security_hub_findings or s.findings_event_bus or s.notifications_topic_arn)

    # ------------------------------------------------------------------------------------------ a run's changes
    def publish(self, changes: Sequence[StatusChange]) -> PublishReport:
        report = PublishReport()
        if not changes or not self.enabled:
            return report
        for target, send in (("securityhub", self._security_hub), ("events", self._events),
                             ("sns", self._notify)):
            try:
                send(changes, report)
            except Exception as exc:  # whatever fails here, the run (already recorded) goes on
                self._failed(report, target, f"{type(exc).__name__}: {exc}", [])
        if report.failures:
            self._record_failures(report.failures)
        return report

    def notify_sweep(self, summary: SweepSummary) -> PublishReport:
        """The sweep's summary to the notification topic (once per sweep: the worker that completes it)."""
        report = PublishReport()
        topic = self.rt.settings.notifications_topic_arn
        if not topic:
            return report
        try:
            self._send_sns(notifications.sweep_message(summary), topic, report)
        except Exception as exc:  # the sweep is complete and recorded, whatever happens here
            self._failed(report, "sns", f"{type(exc).__name__}: {exc}", [summary.sweep_id])
        if report.failures:
            self._record_failures(report.failures)
        return report

    # ------------------------------------------------------------------------------------------ Security Hub
    def _security_hub(self, changes: Sequence[StatusChange], report: PublishReport) -> None:
        if not self.rt.settings.security_hub_findings:
            return
        places: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for c in changes:
            if publishes(c.previous, c.current):
                places.setdefault((c.account, c.region), []).append(
                    asff.to_asff(FindingView.from_record(c.record, c.previous)))
        now = self.rt.clock()
        for (account, region), findings in sorted(places.items()):
            seen = self._not_enabled.get((account, region))
            if seen is not None and now - seen < NOT_ENABLED_RECHECK:
                report.security_hub_not_enabled.append(f"{account}/{region}")
                continue
            try:
                client = self.rt.factory.context(account, region).client("securityhub")
                for batch in asff.batches(asff.latest_per_finding(findings)):
                    if not self._import(client, batch, account, region, report):
                        break
            except (ClientError, BotoCoreError, aws.AccountUnreachable) as exc:
                self._failed(report, "securityhub", str(exc), [f["Id"] for f in findings], account=account,
                             region=region)

    def _import(self, client: Any, batch: list[dict[str, Any]], account: str, region: str,
                report: PublishReport) -> bool:
        """One batch; False when Security Hub is not enabled here (the rest of this account-region is not sent)."""
        def send(findings: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, str]]:
            try:
                resp = client.batch_import_findings(Findings=findings)
            except ClientError as exc:
                if aws.error_code(exc) in NOT_ENABLED_CODES:
                    raise _NotEnabled(str(exc)) from exc
                raise
            report.security_hub += int(resp.get("SuccessCount", 0))
            failed = {f["Id"]: f for f in resp.get("FailedFindings", [])}
            if any(f.get("ErrorCode") in NOT_ENABLED_CODES for f in failed.values()):
                raise _NotEnabled(str(next(iter(failed.values())).get("ErrorMessage", "")))
            return [(f, str(failed[f["Id"]].get("ErrorCode")), str(failed[f["Id"]].get("ErrorMessage")))
                    for f in findings if f["Id"] in failed]

        try:
            final, throttled = self._resend(batch, send)
        except _NotEnabled as exc:
            self._security_hub_off(account, region, str(exc), report)
            return False
        self._report_failed(report, "securityhub", final, throttled, lambda f: str(f["Id"]), account=account,
                            region=region)
        return True

    def _security_hub_off(self, account: str, region: str, error: str, report: PublishReport) -> None:
        report.security_hub_not_enabled.append(f"{account}/{region}")
        first = (account, region) not in self._not_enabled
        self._not_enabled[(account, region)] = self.rt.clock()
        if not first:
            return
        logger.warning("Security Hub is not enabled in this account-region: its findings stay in the ledger",
                       extra={"account": account, "region": region, "error": error})
        now = self.rt.clock()
        self._write_items([{
            "pk": SECURITY_HUB_PK, "sk": f"NOT_ENABLED#{account}#{region}", "record_type": "publish_status",
            "target": "securityhub", "account": account, "region": region, "status": "not_enabled",
            "reason": cut(error, 2000), "time": stamp(now), "expires_at": expires_at(now, NOT_ENABLED_TTL_DAYS),
        }])

    # ------------------------------------------------------------------------------------------ finding events
    def _events(self, changes: Sequence[StatusChange], report: PublishReport) -> None:
        bus = self.rt.settings.findings_event_bus
        if not bus:
            return
        entries = []
        for c in changes:
            kind = event_kind(c.previous, c.current)
            if kind is not None:
                entries.append(finding_events.entry(FindingView.from_record(c.record, c.previous), kind, bus))
        if not entries:
            return
        client = self.rt.factory.home().client("events")

        def send(batch: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, str]]:
            results = client.put_events(Entries=batch).get("Entries", [])
            report.events += sum(1 for r in results if r.get("EventId"))
            return [(e, str(r["ErrorCode"]), str(r.get("ErrorMessage"))) for e, r in zip(batch, results, strict=False)
                    if r.get("ErrorCode")]

        for batch in finding_events.batches(entries):
            try:
                final, throttled = self._resend(batch, send)
            except (ClientError, BotoCoreError) as exc:
                self._failed(report, "events", str(exc), [_finding_of(e) for e in batch])
                continue
            self._report_failed(report, "events", final, throttled, _finding_of)

    # ------------------------------------------------------------------------------------------ notifications
    def _notify(self, changes: Sequence[StatusChange], report: PublishReport) -> None:
        topic = self.rt.settings.notifications_topic_arn
        if not topic:
            return
        items = []
        for c in changes:
            if needs_human(c.previous, c.current):
                kind = event_kind(c.previous, c.current)
                assert kind is not None  # needs_human implies an event kind
                items.append((FindingView.from_record(c.record, c.previous), kind))
        note = notifications.findings_message(items)
        if note is not None:
            self._send_sns(note, topic, report)

    def _send_sns(self, note: notifications.Notification, topic: str, report: PublishReport) -> None:
        region = topic.split(":")[3] if topic.count(":") >= 5 else self.rt.factory.home_region
        client = self.rt.factory.context(self.rt.factory.own_account, region).client("sns")
        try:
            client.publish(**note.publish_kwargs(topic))
            report.notifications += 1
        except (ClientError, BotoCoreError) as exc:
            self._failed(report, "sns", str(exc), [note.subject])

    # ------------------------------------------------------------------------------------------ retries
    def _resend(self, items: list[T], send: Callable[[list[T]], list[tuple[T, str, str]]]) -> tuple[
            list[tuple[T, str, str]], list[T]]:
        """Send items; those answered with a retryable code (throttled, internal error) are sent again, alone,
        after a growing pause, up to RETRY_ROUNDS times. `send` returns the items that failed, with code and
        message. Returns the final failures and the items still throttled at the end."""
        pending, final = items, []
        for attempt in range(RETRY_ROUNDS + 1):
            if attempt:
                self.sleep(min(0.2 * 2 ** attempt, 5.0))
            failed = send(pending)
            final += [f for f in failed if f[1] not in RETRY_CODES]
            pending = [item for item, code, _ in failed if code in RETRY_CODES]
            if not pending:
                break
        return final, pending

    def _report_failed(self, report: PublishReport, target: str, final: list[tuple[T, str, str]],
                       throttled: list[T], name: Callable[[T], str], *, account: str | None = None,
                       region: str | None = None) -> None:
        if final:
            self._failed(report, target, "; ".join(sorted({f"{code}: {message}" for _, code, message in final})),
                         [name(item) for item, _, _ in final], account=account, region=region)
        if throttled:
            self._failed(report, target, f"still throttled after {RETRY_ROUNDS} retries",
                         [name(item) for item in throttled], account=account, region=region)

    # ------------------------------------------------------------------------------------------ failures
    def _failed(self, report: PublishReport, target: str, error: str, ids: list[str], *, account: str | None = None,
                region: str | None = None) -> None:
        logger.error(f"could not publish to {target}; the ledger has the findings", extra={
            "target": target, "account": account, "region": region, "error": error, "findings": ids[:20]})
        report.failures.append({"target": target, "account": account, "region": region,
                                "error": cut(error, 1000), "count": len(ids), "ids": ids})

    def _record_failures(self, failures: list[dict[str, Any]]) -> None:
        now = self.rt.clock()
        moment = stamp(now)
        self._write_items([{
            "pk": FAILURES_PK, "sk": f"EVAL#{moment}#{f['target']}#{uuid.uuid4().hex[:12]}",
            "record_type": "publish_failure", **{k: v for k, v in f.items() if v is not None and k != "ids"},
            "findings": [cut(str(i), 600) for i in f["ids"][:100]], "time": moment,
            "expires_at": expires_at(now, self.rt.settings.ledger_ttl_days),
        } for f in failures])

    def _write_items(self, items: list[dict[str, Any]]) -> None:
        try:
            self.rt.ledger.write([], extra_items=items)
        except (ClientError, BotoCoreError) as exc:
            logger.error("could not record a publishing failure in the ledger", extra={"error": str(exc),
                                                                                       "items": items})


class _NotEnabled(Exception):
    """Security Hub answered that it is not enabled in this account-region."""


def _finding_of(entry: dict[str, Any]) -> str:
    return str(json.loads(entry["Detail"]).get("finding_id", ""))
