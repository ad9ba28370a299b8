"""Rollback: an operator puts a resource back to the before-state a remediation recorded.

The request names one ledger record (`account`, `region`, `resource_id`, `record_sk`). The rollback:

1. reads that record and the resource as it is now;
2. refuses unless the record is a remediation and the resource still shows exactly the record's `after`
   (no blind overwrite: if anyone changed it since, restoring an old state would destroy their change);
3. applies the inverse actions through `remediate` (the only writer) and reads the resource back;
4. writes its own ledger record (`record_type = rollback`: `remediated` when AWS shows the before-state,
   `failed` with the error, or `skipped` with the reason it refused).

It does not stop the next evaluation from fixing the resource again: add an exemption (or set the rule to
`dry_run`/`off`) first if the old state should stay. The result says so when nothing would stop it.
Entry points: RollbackFunction (`sam local invoke RollbackFunction -e events/rollback/rollback.json`) and
`python -m vpce_guard.admin rollback`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from . import exemptions, ledger, policy, remediate
from .config import Mode
from .inventory import Inventory
from .models import Action, Endpoint, Status, Trigger

if TYPE_CHECKING:
    from .pipeline import Runtime

logger = Logger(service="vpce-guard", child=True)

RESTORED = "restored"
REFUSED = "refused"
FAILED = "failed"


class RollbackRequest(BaseModel):
    """The event of RollbackFunction (and the CLI's arguments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str = Field(pattern=r"^[0-9]{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
    resource_id: str = Field(pattern=r"^[a-z]+-([0-9a-f]{8}|[0-9a-f]{17})$")
    record_sk: str = Field(pattern=r"^EVAL#.+$", max_length=256)
    requested_by: str | None = Field(default=None, max_length=256)
    reason: str | None = Field(default=None, max_length=1000)


class Refusal(Exception):
    """The rollback must not happen; the message says why (it goes to the ledger)."""


@dataclass
class RollbackResult:
    status: str  # restored | refused | failed
    reason: str
    request: RollbackRequest
    ledger_sk: str | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    warning: str | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason, "request": self.request.model_dump(),
                               "ledger_sk": self.ledger_sk, "before": self.before, "after": self.after}
        if self.error:
            out["error"] = self.error
        if self.warning:
            out["warning"] = self.warning
        return out


def plan_rollback(record: Mapping[str, Any] | None, current: Endpoint | None, resource_id: str) -> tuple[Action, ...]:
    """Pure: the inverse actions of a recorded remediation, or `Refusal` when they must not be applied."""
    if record is None:
        raise Refusal("no such ledger record for this resource")
    kind = record.get("record_type", "evaluation")
    if kind != "evaluation":
        raise Refusal(f"only remediations can be rolled back; this record is a {kind} record")
    if record.get("status") != Status.REMEDIATED.value:
        raise Refusal(f"the record is {record.get('status')}, not remediated: it changed nothing to undo")
    recorded = [Action.model_validate(a) for a in record.get("actions") or []]
    if not recorded:
        raise Refusal("the record lists no actions")
    if current is None:
        raise Refusal(f"{resource_id} no longer exists")
    inverse: list[Action] = []
    for action in recorded:
        if action.resource_id != resource_id:
            raise Refusal(f"the record changed {action.resource_id}, not {resource_id}")
        if action.kind == "set_endpoint_policy":
            before = action.before.get("policy_document")
            if not isinstance(before, str):
                raise Refusal("the record holds no before-policy to restore")
            if not policy.same_policy(current.policy_document, action.params["policy_document"]):
                raise Refusal("the endpoint policy changed since the remediation; refusing to overwrite it")
            inverse.append(Action(kind="set_endpoint_policy", resource_id=resource_id,
                                  params={"policy_document": before},
                                  before={"policy_document": current.policy_document},
                                  after={"policy_document": before}))
        elif action.kind == "add_route_tables":
            before_ids = sorted(action.before.get("route_table_ids") or [])
            after_ids = sorted(action.after.get("route_table_ids") or [])
            if sorted(current.route_table_ids) != after_ids:
                raise Refusal("the endpoint's route tables changed since the remediation; refusing to overwrite them")
            added = sorted(set(action.params.get("route_table_ids") or []) - set(before_ids))
            if not added:
                raise Refusal("the remediation added no route table that is not in the before-state")
            inverse.append(Action(kind="remove_route_tables", resource_id=resource_id,
                                  params={"route_table_ids": added},
                                  before={"route_table_ids": sorted(current.route_table_ids)},
                                  after={"route_table_ids": before_ids}))
        else:
            raise Refusal(f"rolling back {action.kind} is not supported")
    return tuple(inverse)


def run(rt: Runtime, request: RollbackRequest) -> RollbackResult:
    """Do (or refuse) one rollback and record it. Raises only when the ledger itself cannot be read/written."""
    record = rt.ledger.get(request.account, request.region, request.resource_id, request.record_sk)
    rule_id = str(record.get("rule_id", "unknown")) if record else "unknown"
    ctx = rt.factory.context(request.account, request.region)
    current: Endpoint | None = None
    try:
        found, _ = Inventory(ctx).endpoints_by_id([request.resource_id])
        current = next((e for e in found if e.state not in ("deleted", "deleting")), None)
        actions = plan_rollback(record, current, request.resource_id)
    except Refusal as refusal:
        result = RollbackResult(REFUSED, f"refused: {refusal}", request)
        result.ledger_sk = _record(rt, request, rule_id, record, status=Status.SKIPPED, reason=result.reason)
        logger.warning(result.reason, extra=request.model_dump())
        return result
    except (ClientError, BotoCoreError) as exc:
        result = RollbackResult(FAILED, "could not read the resource", request, error=str(exc))
        result.ledger_sk = _record(rt, request, rule_id, record, status=Status.FAILED, reason=result.reason,
                                   error=str(exc))
        return result

    before = {k: v for a in actions for k, v in a.before.items()}
    reached, observed, error = remediate.apply_and_verify(actions, ctx)
    if reached:
        result = RollbackResult(RESTORED, f"restored the before-state of {request.record_sk}", request,
                                before=before, after=observed, warning=_refix_warning(rt, request, rule_id, current))
        status = Status.REMEDIATED
    else:
        result = RollbackResult(FAILED, f"rollback of {request.record_sk} failed", request, before=before,
                                after=observed, error=error)
        status = Status.FAILED
    # Restored: the finding the remediation closed is open again, and the state says so at once (not only after
    # the next evaluation), so the open-findings index and the report show it.
    result.ledger_sk = _record(rt, request, rule_id, record, status=status, reason=result.reason, actions=actions,
                               before=before, after=observed, error=error, warning=result.warning,
                               reopens=reached)
    return result


def _refix_warning(rt: Runtime, request: RollbackRequest, rule_id: str, current: Endpoint | None) -> str | None:
    """Say so when nothing stops the next evaluation from fixing the resource again."""
    if rt.mode_for(rule_id) is not Mode.ENFORCE:
        return None
    registry = rt.exemptions
    try:
        known = registry.for_account(request.account) if registry else None
    except (ClientError, BotoCoreError) as exc:
        return f"could not check exemptions ({exc}); the next evaluation may fix {request.resource_id} again"
    if known is not None and exemptions.match(
            known.entries, rule_id=rule_id, account=request.account, resource_id=request.resource_id,
            vpc_id=current.vpc_id if current else None, ou_path=known.ou_path, tags=current.tags if current else {},
            now=rt.clock(), tag_key=rt.settings.exempt_tag_key):
        return None
    return (f"rule {rule_id} is enforced and no exemption covers {request.resource_id}: the next evaluation "
            "(a change event or the sweep) will fix it again; add an exemption to keep the restored state")


def _record(rt: Runtime, request: RollbackRequest, rule_id: str, record: Mapping[str, Any] | None, *,
            status: Status, reason: str, actions: tuple[Action, ...] = (), before: dict[str, Any] | None = None,
            after: dict[str, Any] | None = None, error: str | None = None, warning: str | None = None,
            reopens: bool = False) -> str:
    now = rt.clock()
    when = ledger.stamp(now)
    details: dict[str, Any] = {"rolls_back": request.record_sk}
    if request.reason:
        details["request_reason"] = request.reason
    if warning:
        details["warning"] = warning
    rec = ledger.LedgerRecord(
        pk=ledger.resource_pk(request.account, request.region, request.resource_id),
        sk=f"EVAL#{when}#{rule_id}#rollback-{uuid.uuid4().hex[:12]}",
        record_type="rollback", account=request.account, region=request.region, resource_id=request.resource_id,
        resource_type=str(record.get("resource_type", "resource")) if record else "resource",
        vpc_id=record.get("vpc_id") if record else None, rule_id=rule_id, status=status, reason=reason[:2000],
        trigger=Trigger(source="manual", event_name="Rollback", actor_arn=request.requested_by),
        before=before or {}, after=after or {}, actions=[a.model_dump(mode="json") for a in actions], error=error,
        details=details, time=when, expires_at=ledger.expires_at(now, rt.settings.ledger_ttl_days),
        state_status=Status.NON_COMPLIANT if reopens else None,
    )
    rt.ledger.write([rec])
    return rec.sk
