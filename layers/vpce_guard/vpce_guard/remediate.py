"""Writes: the one layer that turns planned Actions into AWS calls, then re-reads to report what AWS shows.

A fix is only `remediated` when the state read back after the write is the state the fix aimed for;
anything else is `failed`, with the error, so the ledger never claims a change that did not happen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from . import policy
from .aws import AwsContext, is_transient
from .inventory import Inventory
from .models import Action, Endpoint, Outcome, Status
from .plan import Decision, Step

logger = Logger(service="vpce-guard", child=True)


def _set_endpoint_policy(ec2: Any, action: Action) -> None:
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, PolicyDocument=action.params["policy_document"])


def _add_route_tables(ec2: Any, action: Action) -> None:
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, AddRouteTableIds=list(action.params["route_table_ids"]))


WRITERS: dict[str, Callable[[Any, Action], None]] = {
    "set_endpoint_policy": _set_endpoint_policy,
    "add_route_tables": _add_route_tables,
}


def _endpoint_state(action: Action, ep: Endpoint | None) -> dict[str, Any]:
    """The part of the endpoint an action is about, as read from AWS."""
    if ep is None:
        return {"deleted": True}
    if action.kind == "set_endpoint_policy":
        return {"policy_document": ep.policy_document}
    if action.kind == "add_route_tables":
        return {"route_table_ids": sorted(ep.route_table_ids)}
    return {}


def _reached(action: Action, observed: dict[str, Any]) -> bool:
    if action.kind == "set_endpoint_policy":
        return observed.get("policy_document") is not None and policy.same_policy(
            observed["policy_document"], action.params["policy_document"])
    if action.kind == "add_route_tables":
        return set(action.params["route_table_ids"]) <= set(observed.get("route_table_ids", ()))
    return False


def execute(steps: list[Step], ctx: AwsContext) -> list[Outcome]:
    """Apply the APPLY steps, then read every touched endpoint back once (one batched call)."""
    ec2 = ctx.client("ec2")
    outcomes: list[Outcome | None] = []
    written: list[tuple[int, Step]] = []
    errors: dict[int, str] = {}
    transient: set[int] = set()
    for i, step in enumerate(steps):
        f = step.finding
        if step.decision is Decision.APPLY:
            outcomes.append(None)
            written.append((i, step))
            for action in f.actions:
                try:
                    WRITERS[action.kind](ec2, action)
                except (ClientError, BotoCoreError) as exc:
                    errors[i] = f"{action.kind} on {action.resource_id} failed: {exc}"
                    if is_transient(exc):
                        transient.add(i)
                    logger.warning("remediation failed", extra={"rule_id": f.rule_id, "resource_id": f.resource_id,
                                                                 "error": str(exc)})
                    break
        elif step.decision is Decision.DRY_RUN:
            outcomes.append(Outcome(finding=f, status=Status.DRY_RUN, reason=f"{f.reason}; {step.note}",
                                    before=_merge(a.before for a in f.actions),
                                    after=_merge(a.after for a in f.actions), actions=f.actions))
        elif step.decision is Decision.UNFIXABLE:
            outcomes.append(Outcome(finding=f, status=Status.FAILED, reason=f.reason,
                                    error=f"cannot fix safely: {step.note}"))
        else:
            outcomes.append(Outcome(finding=f, status=f.status, reason=f.reason))

    if written:
        ids = {a.resource_id for _, s in written for a in s.finding.actions}
        read_error, read_transient = "", False
        try:
            found, _ = Inventory(ctx).endpoints_by_id(ids)
            after_read: dict[str, Endpoint] | None = {e.id: e for e in found}
        except (ClientError, BotoCoreError) as exc:
            after_read = None
            read_error = f"could not read the endpoint back after the write: {exc}"
            read_transient = is_transient(exc)
        for i, step in written:
            f = step.finding
            before = _merge(a.before for a in f.actions)
            if after_read is None:
                outcomes[i] = Outcome(finding=f, status=Status.FAILED, reason=f.reason, before=before,
                                      actions=f.actions, error=errors.get(i, read_error),
                                      retryable=i in transient or read_transient)
                continue
            observed = _merge(_endpoint_state(a, after_read.get(a.resource_id)) for a in f.actions)
            reached = all(_reached(a, _endpoint_state(a, after_read.get(a.resource_id))) for a in f.actions)
            if reached:
                # What AWS shows decides, not what the write call answered: a write can be applied and still
                # answer with an error (a 5xx after commit, a timeout), and recording that as `failed` would
                # make the ledger deny a change that happened.
                reason = f.reason if i not in errors else (
                    f"{f.reason}; the write answered with an error ({errors[i]}) but AWS shows the fix applied")
                outcomes[i] = Outcome(finding=f, status=Status.REMEDIATED, reason=reason, before=before,
                                      after=observed, actions=f.actions)
            elif i in errors:
                outcomes[i] = Outcome(finding=f, status=Status.FAILED, reason=f.reason, before=before,
                                      after=observed, actions=f.actions, error=errors[i], retryable=i in transient)
            else:
                outcomes[i] = Outcome(finding=f, status=Status.FAILED, reason=f.reason, before=before,
                                      after=observed, actions=f.actions,
                                      error="the write returned success but AWS does not show the intended state")
    return [o for o in outcomes if o is not None]


def _merge(parts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parts:
        out.update(p)
    return out
