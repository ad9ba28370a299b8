"""The one pipeline every entry point uses: targets → snapshot → findings → plan → writes → ledger.

An event, a sweep unit and a manual invoke differ only in how they find their Targets.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.exceptions import BotoCoreError, ClientError

from . import (
    aws,
    exemptions,
    flapping,
    inventory,
    ledger,
    loops,
    modes,
    org_accounts,
    plan,
    publish,
    remediate,
    safety,
    service_writes,
    telemetry,
    unit_digest,
)
from .config import Mode, Settings
from .models import GONE_ENDPOINT_STATES, Finding, Outcome, Snapshot, Status, Targets, Trigger, Vpc, resource_type_of
from .rules import Rule, RuleContext, all_rules, evaluate_all, reads_of

if TYPE_CHECKING:
    from . import events

logger = Logger(service="vpce-guard", child=True)


@dataclass
class RunResult:
    """What a run did, for the handler's return value and the demo's printout."""

    account: str | None
    region: str | None
    disposition: str = "act"  # act | skipped | rejected | failed
    reason: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    ledger_items: int = 0
    #: Something failed that a later attempt can get past (throttling, 5xx, stale credentials): the
    #: records say so; an entry point whose platform retries (the on-change function) should fail the run.
    retryable: bool = False
    #: How much configuration the run read (endpoints, vpcs, route_tables), for sweep summaries.
    seen: dict[str, int] = field(default_factory=dict)
    #: (resource, rule) pairs whose current status this run changed, as the ledger recorded them.
    changes: list[ledger.StatusChange] = field(default_factory=list)
    #: What was sent beyond the ledger (Security Hub, finding events, notifications) and what failed to be.
    published: publish.PublishReport | None = None
    #: A sweep of a whole account-region: whether its digest vouched for the state items ("vouched") or they
    #: were read back ("read_back"); unit_digest.py.
    digest: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "disposition": self.disposition,
            "reason": self.reason,
            "counts": dict(Counter(o.status.value for o in self.outcomes)),
            "results": [
                {"rule_id": o.finding.rule_id, "resource_id": o.resource_id or o.finding.resource_id,
                 "status": o.status.value,
                 "reason": o.reason, **({"error": o.error} if o.error else {})}
                for o in self.outcomes
            ],
            "ledger_items": self.ledger_items,
            **({"published": self.published.summary()} if self.published else {}),
        }


class RetryLater(RuntimeError):
    """Raised by `handle_event` after the ledger is written, when the run failed transiently.

    The on-change function is invoked asynchronously, so failing the invocation makes Lambda retry it
    (twice, then the function's dead-letter queue keeps the event). A retry re-reads AWS and fixes
    only what is still wrong, so it never applies a fix twice.
    """


class Runtime:
    """Everything a cold start builds once: settings, sessions, the ledger table."""

    def __init__(self, settings: Settings, factory: aws.SessionFactory | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.factory = factory or aws.SessionFactory()
        #: The time safety decisions are made at (exemption expiry, flap window); tests may move it.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._ledger: ledger.Ledger | None = None
        self._modes: modes.ModeResolver | None = None
        self._exemptions: exemptions.ExemptionRegistry | None = None
        self._org: Any = None
        self._own_roles: loops.OwnRoles | None = None
        self._publisher: publish.Publisher | None = None

    @property
    def publisher(self) -> publish.Publisher:
        """Sends status changes beyond the ledger; kept per cold start (it remembers where Security Hub is off)."""
        if self._publisher is None:
            self._publisher = publish.Publisher(self)
        return self._publisher

    def sleep(self, seconds: float) -> None:
        """How the on-change function waits for a creator to settle (CreateSettleSeconds)."""
        time.sleep(seconds)

    @property
    def ledger(self) -> ledger.Ledger:
        if self._ledger is None:
            table = aws.dynamodb(self.factory._base).Table(self.settings.ledger_table)
            self._ledger = ledger.Ledger(table)
        return self._ledger

    def org_ids(self, region: str) -> frozenset[str]:
        if self.settings.allowed_org_ids:
            return frozenset(self.settings.allowed_org_ids)
        home = aws.AwsContext(account="self", region=region, session=self.factory._base)
        return frozenset({aws.own_organization_id(home)})

    def mode_for(self, rule_id: str) -> Mode:
        """The template's default mode, overridden per rule by the SSM parameter (cached; see modes.py)."""
        if self._modes is None:
            base: boto3.Session = self.factory._base
            self._modes = modes.ModeResolver(
                self.settings.mode, self.settings.mode_overrides_parameter,
                lambda: SSMProvider(boto3_client=base.client("ssm", config=aws.RETRY_CONFIG)),
                max_age=self.settings.mode_overrides_max_age)
        return self._modes.mode_for(rule_id)

    @property
    def modes_degraded(self) -> str | None:
        """Why enforce rules run as dry_run (the overrides parameter is unusable), or None."""
        return self._modes.degraded if self._modes is not None else None

    def active_rules(self) -> list[Rule]:
        """The registered rules whose mode is not `off`: what a run reads for and evaluates."""
        return [r for r in all_rules() if self.mode_for(r.id) is not Mode.OFF]

    @property
    def exemptions(self) -> exemptions.ExemptionRegistry | None:
        """The hub's exemption registry (None when no table is configured)."""
        if self._exemptions is None and self.settings.exemptions_table:
            table = aws.dynamodb(self.factory._base).Table(self.settings.exemptions_table)
            self._exemptions = exemptions.ExemptionRegistry(table, self.organizations)
        return self._exemptions

    def organizations(self) -> Any:
        if self._org is None:
            self._org = self.factory._base.client("organizations", config=aws.RETRY_CONFIG)
        return self._org

    @property
    def flap_policy(self) -> flapping.FlapPolicy:
        return flapping.FlapPolicy(self.settings.flap_max_fixes, timedelta(minutes=self.settings.flap_window_minutes))

    def in_function(self, context: Any) -> Runtime:
        """This runtime, told the running function's ARN (the Lambda context's): the own account without
        sts:GetCallerIdentity (aws.SessionFactory.adopt_function_arn). Returns itself."""
        self.factory.adopt_function_arn(getattr(context, "invoked_function_arn", "") or "")
        return self

    def own_roles(self, trigger: Trigger | None = None) -> loops.OwnRoles:
        """Our own identities, for the loop check of `trigger` (None: complete).

        The function's own role name takes sts:GetCallerIdentity. It decides only about a role session of the
        hub account whose role path the event does not show (every hub function role has the template's
        RolePath, and CloudTrail's session issuer carries it), so it is asked for, once per cold start, only
        for such an event."""
        hub = self.factory.own_account
        if self._own_roles is None:
            self._own_roles = loops.OwnRoles(hub_account=hub, hub_role_path=self.settings.own_role_path,
                                             spoke_role_name=self.settings.spoke_role_name)
        roles = self._own_roles
        if not roles.hub_role_names and (trigger is None or _role_name_decides(trigger, hub)):
            me = loops.parse_role(self.factory.own_arn)
            if me:
                self._own_roles = roles = replace(roles, hub_role_names=frozenset({me.name}))
        return roles


def _role_name_decides(trigger: Trigger, hub: str) -> bool:
    """Whether only a role's name can tell if it is ours: a hub-account role session whose path is unknown."""
    actor, issuer = loops.parse_role(trigger.actor_arn), loops.parse_role(trigger.issuer_arn)
    path_known = {issuer.name} if issuer is not None and issuer.path is not None else set()
    return any(r is not None and r.account == hub and r.path is None and r.name not in path_known
               for r in (actor, issuer))


def handle_event(rt: Runtime, event: Any) -> RunResult:
    """Entry point of the on-change function: never raises on a bad event, always leaves a ledger record.
    (The event models are imported here, not with the module: a sweep never parses an event.)"""
    from . import events

    parsed = events.parse_event(event)
    if parsed.disposition != "act" or parsed.targets is None:
        status = Status.SKIPPED if parsed.disposition == "skipped" else Status.REJECTED
        logger.warning(f"event {parsed.disposition}: {parsed.reason}",
                       extra={"event_id": parsed.trigger.event_id, "event_name": parsed.trigger.event_name})
        record = ledger.intake_record(parsed.trigger, account=parsed.raw_account, region=parsed.raw_region,
                                      status=status, reason=parsed.reason, ttl_days=rt.settings.ledger_ttl_days)
        result = RunResult(parsed.raw_account, parsed.raw_region, parsed.disposition, parsed.reason)
        result.ledger_items = _write_ledger(rt, [record]).items
        return result
    own_roles = rt.own_roles(parsed.trigger)
    own = loops.own_change(parsed.trigger, own_roles)
    suspicious = None if own else loops.lookalike(parsed.trigger, own_roles)
    if suspicious:
        logger.warning(f"acting on a look-alike of vpce-guard's own roles: {suspicious}",
                       extra={"event_id": parsed.trigger.event_id, "actor_arn": parsed.trigger.actor_arn})
        telemetry.emit_alert(telemetry.OWN_ROLE_LOOKALIKE)
    if own:
        logger.info(f"event skipped: {own}", extra={"event_id": parsed.trigger.event_id,
                                                    "actor_arn": parsed.trigger.actor_arn})
        record = ledger.intake_record(parsed.trigger, account=parsed.targets.account, region=parsed.targets.region,
                                      status=Status.SKIPPED, reason=own, ttl_days=rt.settings.ledger_ttl_days)
        result = RunResult(parsed.targets.account, parsed.targets.region, "skipped", own)
        result.ledger_items = _write_ledger(rt, [record]).items
        return result
    wait = settle_wait(parsed.trigger, rt.settings.create_settle_seconds, rt.clock())
    if wait > 0:
        logger.info(f"waiting {wait:.1f} s for the creator of the resource to finish configuring it",
                    extra={"event_id": parsed.trigger.event_id, "event_name": parsed.trigger.event_name})
        rt.sleep(wait)
    try:
        result = run_targets(rt, parsed.targets, parsed.trigger)
    except Exception as exc:
        # Whatever went wrong (a bug, an error no handler expected), the invocation leaves a record before it
        # fails: Lambda retries it, and its dead-letter queue keeps the event.
        reason = f"run failed unexpectedly, nothing further recorded: {type(exc).__name__}: {exc}"
        logger.exception(reason, extra={"event_id": parsed.trigger.event_id})
        record = ledger.intake_record(parsed.trigger, account=parsed.targets.account, region=parsed.targets.region,
                                      status=Status.FAILED, reason=reason, ttl_days=rt.settings.ledger_ttl_days)
        with contextlib.suppress(ClientError, BotoCoreError):  # the original error is what matters
            rt.ledger.write([record])
        raise
    if parsed.not_acted:
        result.ledger_items += _write_ledger(rt, [_not_acted_record(rt, parsed, parsed.targets)]).items
    if result.retryable:
        raise RetryLater(f"transient failure, recorded; failing the invocation so that it is retried: "
                         f"{result.reason or _first_error(result)}")
    return result


def _not_acted_record(rt: Runtime, parsed: events.ParsedEvent, targets: Targets) -> ledger.LedgerRecord:
    """One record for the ids an event named beyond what one event is acted on for (events.MAX_ACTED_IDS)."""
    from . import events

    ids = parsed.not_acted
    shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    reason = (f"{len(ids)} id(s) beyond the {events.MAX_ACTED_IDS} of each kind one event is acted on for were not "
              f"evaluated (the scheduled sweep covers them): {shown}")
    logger.warning(reason, extra={"event_id": parsed.trigger.event_id})
    return ledger.intake_record(parsed.trigger, account=targets.account, region=targets.region,
                                status=Status.REJECTED, reason=reason, ttl_days=rt.settings.ledger_ttl_days)


def settle_wait(trigger: Trigger, settle_seconds: int, now: datetime) -> float:
    """Seconds to wait before acting on this event: for a Create* call, what is left of `settle_seconds`
    since the call was made (EventBridge often delivers later than that: then nothing). An event without a
    readable time waits the whole period. Other calls never wait: they change what exists already."""
    if settle_seconds <= 0 or not (trigger.event_name or "").startswith("Create"):
        return 0.0
    try:
        made = datetime.fromisoformat((trigger.event_time or "").replace("Z", "+00:00"))
    except ValueError:
        return float(settle_seconds)
    if made.tzinfo is None:
        made = made.replace(tzinfo=UTC)
    return min(float(settle_seconds), max(0.0, settle_seconds - (now - made).total_seconds()))


def _first_error(result: RunResult) -> str:
    return next((o.error or o.reason for o in result.outcomes if o.retryable), "")


def run_targets(rt: Runtime, targets: Targets, trigger: Trigger) -> RunResult:
    result = RunResult(targets.account, targets.region)
    began = rt.clock()
    #: When the configuration was read, by the wall clock (the ledger orders state items by it).
    read_at = datetime.now(UTC)
    try:
        try:
            ctx, rule_ctx, snapshot = _read(rt, targets)
        except ClientError as exc:
            if not aws.is_credential_error(exc):
                raise
            # The cached session of this account went bad (expired or revoked): assume the role anew, once.
            logger.warning("credentials rejected, assuming the role again", extra={
                "account": targets.account, "error": str(exc)})
            rt.factory.forget(targets.account)
            ctx, rule_ctx, snapshot = _read(rt, targets)
    except modes.OverridesUnavailable as exc:
        # Nothing evaluated: a verdict under a mode vpce-guard cannot know would be a guess (modes.py).
        result.disposition, result.reason, result.retryable = "failed", str(exc), True
        record = ledger.intake_record(trigger, account=targets.account, region=targets.region,
                                      status=Status.FAILED, reason=str(exc), ttl_days=rt.settings.ledger_ttl_days)
        result.ledger_items = _write_ledger(rt, [record]).items
        return result
    except (ClientError, BotoCoreError, aws.AccountUnreachable) as exc:
        reason = f"could not read configuration: {exc}"
        logger.error(reason, extra={"account": targets.account, "region": targets.region})
        result.disposition, result.reason = "failed", reason
        result.retryable = aws.is_transient(exc)
        if result.retryable:
            rt.factory.forget(targets.account)  # the retry starts from fresh credentials
        record = ledger.intake_record(trigger, account=targets.account, region=targets.region,
                                      status=Status.FAILED, reason=reason, ttl_days=rt.settings.ledger_ttl_days)
        result.ledger_items = _write_ledger(rt, [record]).items
        return result

    if rt.modes_degraded:
        telemetry.emit_alert(telemetry.MODE_OVERRIDES_INVALID)
    result.seen = {"endpoints": len(snapshot.endpoints), "vpcs": len(snapshot.vpcs),
                   "route_tables": len(snapshot.route_tables)}
    findings = evaluate_all(snapshot, rule_ctx)
    for missing in snapshot.missing_ids:
        findings.append(Finding(rule_id=ledger.RESOURCE_EXISTS_RULE, resource_id=missing, resource_type=_kind(missing),
                                status=Status.SKIPPED, reason="named in the event but no longer exists"))
    now = rt.clock()
    try:
        guards = safety.lookup_guards(rt, snapshot, findings, now)
    except (ClientError, BotoCoreError) as exc:
        # Fail closed: without the exemptions and recent fixes we cannot know that a fix is wanted.
        reason = f"could not read exemptions or recent fixes, nothing changed: {exc}"
        logger.error(reason, extra={"account": targets.account, "region": targets.region})
        result.disposition, result.reason = "failed", reason
        result.retryable = aws.is_transient(exc)
        record = ledger.intake_record(trigger, account=targets.account, region=targets.region,
                                      status=Status.FAILED, reason=reason, ttl_days=rt.settings.ledger_ttl_days)
        result.ledger_items = _write_ledger(rt, [record]).items
        return result
    steps = plan.make_plan(findings, rt.mode_for, guards)
    steps, recheck_failed = _recheck(rt, ctx, rule_ctx, targets, steps, guards=guards)
    gone = _gone(snapshot)
    sweeping_all = trigger.source == "sweep" and targets.everything
    applying = any(s.decision is plan.Decision.APPLY for s in steps)
    # A sweep of a whole account-region that has nothing to fix may find its state items vouched for by the
    # account-region's digest (unit_digest.py), read before anything else of the ledger; it reads them, if it
    # must, once its records are known (_sweep_ledger). Any other run reads the state items it may write once,
    # before anything is written (BatchGetItem).
    unit = rt.ledger.unit(targets.account, targets.region) if sweeping_all else None
    state_keys = _state_keys(steps, targets)
    previous = rt.ledger.states(state_keys) if applying or not sweeping_all else {}
    pending, intents = _record_intents(rt, steps, trigger, targets, previous=previous, read_at=read_at)
    result.outcomes = remediate.execute(steps, ctx)
    result.retryable = recheck_failed or any(o.retryable for o in result.outcomes)
    if result.retryable:
        rt.factory.forget(targets.account)
    for o in result.outcomes:
        if o.status in (Status.NON_COMPLIANT, Status.REMEDIATED, Status.DRY_RUN, Status.FAILED, Status.EXEMPT,
                        Status.FLAPPING):
            logger.info(f"{o.finding.rule_id} {o.resource_id or o.finding.resource_id}: {o.status.value}",
                        extra={"rule_id": o.finding.rule_id, "resource_id": o.resource_id or o.finding.resource_id,
                               "status": o.status.value, "reason": o.reason, "error": o.error})
    records = ledger.records_for(result.outcomes, trigger, account=targets.account, region=targets.region,
                                 ttl_days=rt.settings.ledger_ttl_days, observed=read_at, gone=gone)
    # The outcome of a fix overwrites its intent record (same key), so only an unrecorded outcome leaves one.
    records = [r.model_copy(update={"sk": pending[_intent_key(r)]}) if _intent_key(r) in pending else r
               for r in records]
    if sweeping_all and unit is not None:
        evaluations = _state_records(records)
        digest = unit_digest.digest_of(evaluations.values())
        vouched = not applying and not gone and unit.vouches_for(digest, rt.clock())
        report = _sweep_ledger(rt, targets, trigger, records, evaluations=evaluations, vouched=vouched,
                               applying=applying, previous=previous, state_keys=state_keys, began=began,
                               read_at=read_at)
        result.digest = "vouched" if vouched else "read_back"
        if not vouched and not report.superseded and not report.left_open and not result.retryable:
            _vouch(rt, targets, digest, unit, report.bumps + intents.bumps)
    elif trigger.source == "sweep":
        report = _write_ledger(rt, records, lambda: rt.ledger.write_sweep(
            records, account=targets.account, region=targets.region, trigger=trigger,
            ttl_days=rt.settings.ledger_ttl_days, now=rt.clock(), previous=previous))
    else:
        report = _write_ledger(rt, records, previous=previous)
    result.ledger_items = report.items
    result.changes = _net_changes(report.changes, intents)
    if rt.publisher.enabled:  # after the ledger (the source of truth) is written; never raises
        result.published = rt.publisher.publish(result.changes)
    return result


def _sweep_ledger(rt: Runtime, targets: Targets, trigger: Trigger, records: list[ledger.LedgerRecord], *,
                  evaluations: dict[tuple[str, str], ledger.LedgerRecord], vouched: bool, applying: bool,
                  previous: dict[tuple[str, str], dict[str, Any]], state_keys: set[tuple[str, str]],
                  began: datetime, read_at: datetime) -> ledger.WriteReport:
    """The ledger of a sweep of a whole account-region: what changed, the checks items, and the open findings it
    no longer sees closed.

    When the account-region's digest vouches for this sweep's evaluations (unit_digest.py: a sweep stored the same
    digest after reading every state item back, no state was written since, nothing to fix, nothing gone), every
    state item is known to be what the sweep would compare it with, and nothing is open that it did not see: the
    state items are not read and nothing is closed, and the write is the same as after reading them (checks items,
    and history for the statuses always recorded). Otherwise the state items are read and the unseen closed.
    `evaluations` are the records that leave a state item (`_state_records`). Returns the write's report."""
    if vouched:
        previous = {key: {"status": r.current_status.value, "reason": r.reason} for key, r in evaluations.items()}
    elif not applying:
        previous = rt.ledger.states(state_keys)
    report = _write_ledger(rt, records, lambda: rt.ledger.write_sweep(
        records, account=targets.account, region=targets.region, trigger=trigger,
        ttl_days=rt.settings.ledger_ttl_days, now=rt.clock(), previous=previous))
    if not vouched:  # what the sweep of the whole account-region did not see again is closed
        report += rt.ledger.close_unseen(
            account=targets.account, region=targets.region, seen={(r.pk, r.rule_id) for r in records},
            rules=[r.id for r in rt.active_rules()], before=began, trigger=trigger,
            ttl_days=rt.settings.ledger_ttl_days, now=rt.clock(), observed=read_at)
    return report


def _state_records(records: list[ledger.LedgerRecord]) -> dict[tuple[str, str], ledger.LedgerRecord]:
    """The record that leaves each (resource, rule)'s state item (the last one of the key, as Ledger.write)."""
    return {r.state_key: r for r in records
            if r.record_type == "evaluation" and r.rule_id != ledger.RESOURCE_EXISTS_RULE}


def _vouch(rt: Runtime, targets: Targets, digest: str, unit: unit_digest.UnitDigest, bumps: Counter[str]) -> None:
    """Store the digest of a sweep whose every state item is now its own evaluation (unit_digest.py). A failure
    costs only the next sweep's shortcut: it is logged, never raised."""
    own = bumps[unit_digest.unit_pk(targets.account, targets.region)]
    try:
        rt.ledger.vouch(targets.account, targets.region, digest, read=unit, own_bumps=own, now=rt.clock())
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not store the account-region's digest: the next sweep reads its state items back",
                       extra={"account": targets.account, "region": targets.region, "error": str(exc)})


def _recheck(rt: Runtime, ctx: aws.AwsContext, rule_ctx: RuleContext, targets: Targets, steps: list[plan.Step],
             *, guards: plan.Guards) -> tuple[list[plan.Step], bool]:
    """Right before any write: read again what the fixes will change, and re-plan the fixes whose resource changed
    since the snapshot, on what AWS shows now.

    Why: a fix computed from the snapshot writes what was there plus the fix. If the owner edited the resource
    meanwhile (for a sweep the window is the whole account-region read), writing it would drop their edit, and
    the ledger's `before` would not be what was replaced. Re-planned fixes start from the fresh read, so their
    `before` is what the write replaces; a resource that is now compliant is recorded so and left alone; one
    that cannot be re-planned is recorded `conflict` and left alone. The window left is the one between this
    read and the write; the read-back after the write tells a `conflict` there too (remediate.execute).

    Returns the steps, and whether the re-read failed transiently (the run is then retried)."""
    apply = [i for i, s in enumerate(steps) if s.decision is plan.Decision.APPLY]
    if not apply:
        return steps, False
    try:
        now = remediate.ReadBack.read(ctx, (a for i in apply for a in steps[i].finding.actions))
    except (ClientError, BotoCoreError) as exc:
        note = f"could not re-read the resource right before the fix, nothing changed: {exc}"
        logger.warning(note, extra={"account": targets.account, "region": targets.region})
        out = [replace(s, decision=plan.Decision.UNFIXABLE, note=note) if i in apply else s
               for i, s in enumerate(steps)]
        return out, aws.is_transient(exc)
    drifted = [i for i in apply if not all(now.unchanged(a) for a in steps[i].finding.actions)]
    if not drifted:
        return steps, False
    actions = [a for i in drifted for a in steps[i].finding.actions]
    vpc_wide = {"enable_vpc_attribute", "create_endpoint", "authorize_ingress"}
    vpcs = {steps[i].finding.vpc_id for i in drifted if steps[i].finding.vpc_id}
    # Endpoint services belong to the account, not to a VPC: named by id, next to whatever else is re-read.
    services = tuple(sorted({a.resource_id for a in actions if a.kind in service_writes.KINDS}))
    others = [a for a in actions if a.kind not in service_writes.KINDS]
    if any(a.kind in vpc_wide for a in others) and vpcs:
        fresh_targets = Targets(account=targets.account, region=targets.region, vpc_ids=tuple(sorted(vpcs)),
                                service_ids=services)
    else:
        fresh_targets = Targets(account=targets.account, region=targets.region,
                                endpoint_ids=tuple(sorted({a.resource_id for a in others})), service_ids=services)
    logger.info("resources changed since they were read: re-planning their fixes on a fresh read",
                extra={"resources": sorted({a.resource_id for a in actions}), "account": targets.account})
    snapshot = inventory.take_snapshot(ctx, fresh_targets, reads=reads_of(rt.active_rules()),
                                       requires_endpoints=_has_profiles(rule_ctx))
    snapshot = org_accounts.with_account_orgs(snapshot, rule_ctx, rt.organizations)
    fresh = {(s.finding.rule_id, s.finding.resource_id): s
             for s in plan.make_plan(evaluate_all(snapshot, rule_ctx), rt.mode_for, guards)}
    out = list(steps)
    for i in drifted:
        f = steps[i].finding
        again = fresh.get((f.rule_id, f.resource_id))
        if again is None:
            conflict = f.model_copy(update={
                "status": Status.CONFLICT, "actions": (),
                "reason": f"{f.reason}; changed by someone else since it was read, and the fresh read does not say "
                          "what to do: nothing written (the next event or sweep re-checks it)"})
            out[i] = plan.Step(conflict, plan.Decision.RECORD)
            continue
        details = {**again.finding.details, "rechecked": "changed since it was read: re-planned on a fresh read "
                                                         "right before the fix"}
        out[i] = replace(again, finding=again.finding.model_copy(update={"details": details}))
    return out, False


def _state_keys(steps: list[plan.Step], targets: Targets) -> set[tuple[str, str]]:
    """The state items a run's records can write: each finding's, and each of its fix's resources'."""
    return {(ledger.resource_pk(targets.account, targets.region, resource_id), f"STATE#{s.finding.rule_id}")
            for s in steps for resource_id in (s.finding.resource_id, *(a.resource_id for a in s.finding.actions))}


def _gone(snapshot: Snapshot) -> set[str]:
    """Resources the run found gone: ids an event named that do not exist, endpoints deleted or deleting."""
    return set(snapshot.missing_ids) | {e.id for e in snapshot.endpoints.values() if e.state in GONE_ENDPOINT_STATES}


def _net_changes(changes: list[ledger.StatusChange], intents: ledger.WriteReport) -> list[ledger.StatusChange]:
    """Status changes against the state before this run: a fix's `pending` intent is this run's own step."""
    intended = set(intents.previous) | {c.record.state_key for c in intents.changes}
    net = [replace(c, previous=ledger.status_of(intents.previous.get(c.record.state_key)))
           if c.record.state_key in intended else c for c in changes]
    return [c for c in net if c.previous is not c.current]


def _read(rt: Runtime, targets: Targets) -> tuple[aws.AwsContext, RuleContext, Snapshot]:
    ctx = rt.factory.context(targets.account, targets.region)
    rule_ctx = RuleContext.from_settings(rt.settings, allowed_org_ids=rt.org_ids(targets.region))
    snapshot = inventory.take_snapshot(ctx, targets, reads=reads_of(rt.active_rules()),
                                       requires_endpoints=_has_profiles(rule_ctx))
    return ctx, rule_ctx, org_accounts.with_account_orgs(snapshot, rule_ctx, rt.organizations)


def _has_profiles(rule_ctx: RuleContext) -> Callable[[Vpc], bool]:
    """Whether a VPC requires endpoints: it has profiles (DefaultProfiles, or its profiles tag)."""
    def has(vpc: Vpc) -> bool:
        known, unknown, _ = rule_ctx.profiles_of(vpc)
        return bool(known or unknown)
    return has


def _record_intents(rt: Runtime, steps: list[plan.Step], trigger: Trigger, targets: Targets, *,
                    previous: dict[tuple[str, str], dict[str, Any]], read_at: datetime) -> tuple[
                        dict[tuple[str, str, object], str], ledger.WriteReport]:
    """Write a `pending` record for every fix about to be applied, before any write to AWS.

    Why: if the ledger write after a fix fails, the invocation fails and is retried, and the retry finds
    the resource compliant. Without this record the ledger would never learn that a fix was applied;
    with it, the fix (before, intended after, actions, trigger) is there as `pending`, followed by the
    retry's evaluation. If this write fails, nothing has been changed yet. One intent per action, like the
    outcomes (remediate.intents), so every change's outcome overwrites its own intent. Returns the keys and
    what the write reported; `previous` (an event's state items) learns the intents' states.
    """
    intents = remediate.intents(steps)
    if not intents:
        return {}, ledger.WriteReport()
    records = ledger.records_for(intents, trigger, account=targets.account, region=targets.region,
                                 ttl_days=rt.settings.ledger_ttl_days, observed=read_at)
    report = _write_ledger(rt, records, previous=previous)
    previous.update({r.state_key: {"status": r.status.value, "observed_at": r.observed} for r in records})
    return {_intent_key(r): r.sk for r in records}, report


def _intent_key(record: ledger.LedgerRecord) -> tuple[str, str, object]:
    return record.resource_id, record.rule_id, record.details.get("step")


def _kind(resource_id: str) -> str:
    return resource_type_of(resource_id)


def _write_ledger(rt: Runtime, records: list[ledger.LedgerRecord],
                  write: Callable[[], ledger.WriteReport] | None = None,
                  previous: dict[tuple[str, str], dict[str, Any]] | None = None) -> ledger.WriteReport:
    """A ledger write that fails is logged with the full records, so nothing is lost, then re-raised
    so the platform retries the invocation (the fixes themselves are idempotent). `write` replaces the plain
    write of `records` (a sweep's, which writes only what changed)."""
    try:
        return write() if write is not None else rt.ledger.write(records, previous=previous)
    except (ClientError, BotoCoreError):
        logger.exception("ledger write failed", extra={"records": [r.to_item() for r in records]})
        raise
