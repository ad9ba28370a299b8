"""Writes: the one layer that turns planned Actions into AWS calls, then re-reads to report what AWS shows.

A fix is only `remediated` when the state read back after the write is the state the fix aimed for;
anything else is `failed`, with the error, so the ledger never claims a change that did not happen.

A fix may be several ordered actions (turn enableDnsSupport on, then enableDnsHostnames, then private DNS
on an endpoint). They run in order; after a failed step the later ones are not attempted (each would
depend on it), and every action gets its own Outcome, so the ledger holds one record per change. A write
that another finding already made in this run (two rules both needing DNS support) is not repeated.

What AWS shows decides, not what the write call answered: a write can be applied and still answer with an
error (a 5xx after commit, a timeout), and recording that as `failed` would make the ledger deny a change
that happened. A failure that a later attempt can get past (throttling, 5xx, network) is `retryable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from . import policy
from .aws import AwsContext, is_transient
from .inventory import Inventory
from .models import (
    GONE_ENDPOINT_STATES,
    Action,
    Endpoint,
    Finding,
    Outcome,
    SecurityGroup,
    Status,
    resource_type_of,
)
from .plan import Decision, Step
from .rules._ingress import allows_https, covers

logger = Logger(service="vpce-guard", child=True)

#: The only VPC attributes vpce-guard ever changes (and only ever turns on).
VPC_DNS_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")


# ------------------------------------------------------------------------------------------------ writers
def _set_endpoint_policy(ec2: Any, action: Action) -> None:
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, PolicyDocument=action.params["policy_document"])


def _add_route_tables(ec2: Any, action: Action) -> None:
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, AddRouteTableIds=list(action.params["route_table_ids"]))


class AssociationLost(BotoCoreError):
    """A blackhole fix removed an association and could not put it back: those subnets have no route to the
    service. Raised after a second attempt to add it, with both errors."""

    fmt = "{message}"

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


def _reassociate_route_tables(ec2: Any, action: Action) -> None:
    """Rewrites a blackholed endpoint route the supported way: drop the association, then add it again.

    Between the two calls the tables' subnets have no route to the service at all, so an add that fails is
    tried once more at once (the association must come back before anything else); only if that fails too is
    the fix failed, with an error that names the tables left without the route."""
    tables = list(action.params["route_table_ids"])
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, RemoveRouteTableIds=tables)
    try:
        ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, AddRouteTableIds=tables)
    except (ClientError, BotoCoreError) as first:
        logger.warning("re-adding the association failed; restoring it", extra={
            "resource_id": action.resource_id, "route_table_ids": tables, "error": str(first)})
        try:
            ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, AddRouteTableIds=tables)
        except (ClientError, BotoCoreError) as again:
            raise AssociationLost(
                f"route table(s) {', '.join(tables)} were disassociated from {action.resource_id} and could not be "
                f"associated again: their subnets have no route to the service ({first}; then {again})") from again


def _set_private_dns(ec2: Any, action: Action) -> None:
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id, PrivateDnsEnabled=bool(action.params["enabled"]))


def _enable_vpc_attribute(ec2: Any, action: Action) -> None:
    """One attribute per call, as AWS requires (moto would accept two)."""
    attribute = action.params["attribute"]
    if attribute not in VPC_DNS_ATTRIBUTES:
        raise ValueError(f"vpce-guard never changes VPC attribute {attribute!r}")
    ec2.modify_vpc_attribute(VpcId=action.resource_id, **{attribute[0].upper() + attribute[1:]: {"Value": True}})


def _create_endpoint(ec2: Any, action: Action) -> dict[str, Any]:
    p = action.params
    kwargs: dict[str, Any] = {
        "VpcId": p["vpc_id"], "ServiceName": p["service_name"], "VpcEndpointType": p["type"],
        "ClientToken": p["client_token"],
        "TagSpecifications": [{"ResourceType": "vpc-endpoint",
                               "Tags": [{"Key": k, "Value": v} for k, v in sorted(p.get("tags", {}).items())]}],
    }
    if p.get("policy_document"):
        kwargs["PolicyDocument"] = p["policy_document"]
    if p["type"] == "Gateway":
        kwargs["RouteTableIds"] = list(p.get("route_table_ids", ()))
    else:
        kwargs |= {"SubnetIds": list(p["subnet_ids"]), "SecurityGroupIds": list(p["security_group_ids"]),
                   "PrivateDnsEnabled": bool(p.get("private_dns_enabled"))}
    created = ec2.create_vpc_endpoint(**kwargs)["VpcEndpoint"]
    return {"endpoint_id": created["VpcEndpointId"]}


def _authorize_ingress(ec2: Any, action: Action) -> None:
    p = action.params
    permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": p["port"], "ToPort": p["port"]}
    v4 = [c for c in p.get("cidrs", ()) if ":" not in c]
    v6 = [c for c in p.get("cidrs", ()) if ":" in c]
    if v4:
        permission["IpRanges"] = [{"CidrIp": c, "Description": p["description"]} for c in v4]
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": c, "Description": p["description"]} for c in v6]
    if p.get("group_ids"):
        permission["UserIdGroupPairs"] = [{"GroupId": g, "Description": p["description"]} for g in p["group_ids"]]
    try:
        ec2.authorize_security_group_ingress(GroupId=action.resource_id, IpPermissions=[permission])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
            raise  # a duplicate means someone added the same rule meanwhile: the state we want


def _remove_route_tables(ec2: Any, action: Action) -> None:
    """Only a rollback removes route tables: exactly those a recorded fix added."""
    ec2.modify_vpc_endpoint(VpcEndpointId=action.resource_id,
                            RemoveRouteTableIds=list(action.params["route_table_ids"]))


WRITERS: dict[str, Callable[[Any, Action], dict[str, Any] | None]] = {
    "set_endpoint_policy": _set_endpoint_policy,
    "add_route_tables": _add_route_tables,
    "remove_route_tables": _remove_route_tables,
    "reassociate_route_tables": _reassociate_route_tables,
    "set_private_dns": _set_private_dns,
    "enable_vpc_attribute": _enable_vpc_attribute,
    "create_endpoint": _create_endpoint,
    "authorize_ingress": _authorize_ingress,
}
_ENDPOINT_KINDS = frozenset({"set_endpoint_policy", "add_route_tables", "reassociate_route_tables", "set_private_dns",
                             "remove_route_tables"})


# ------------------------------------------------------------------------------------------------ read-back
@dataclass
class ReadBack:
    """What AWS shows after the writes, read once for all touched resources (batched where AWS allows)."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    vpc_attributes: dict[tuple[str, str], bool | None] = field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    endpoints_by_vpc: dict[str, list[Endpoint]] = field(default_factory=dict)

    @classmethod
    def read(cls, ctx: AwsContext, actions: Iterable[Action]) -> ReadBack:
        actions = list(actions)
        inv = Inventory(ctx)
        out = cls()
        endpoint_ids = {a.resource_id for a in actions if a.kind in _ENDPOINT_KINDS}
        if endpoint_ids:
            found, _ = inv.endpoints_by_id(endpoint_ids)
            out.endpoints = {e.id: e for e in found}
        for a in actions:  # DescribeVpcAttribute has no batch form
            if a.kind == "enable_vpc_attribute" and (a.resource_id, a.params["attribute"]) not in out.vpc_attributes:
                out.vpc_attributes[(a.resource_id, a.params["attribute"])] = inv.vpc_attribute(
                    a.resource_id, a.params["attribute"])
        groups = {a.resource_id for a in actions if a.kind == "authorize_ingress"}
        if groups:
            out.security_groups = inv.security_groups(groups)
        vpcs = {a.params["vpc_id"] for a in actions if a.kind == "create_endpoint"}
        if vpcs:
            for e in inv.endpoints_in_vpcs(vpcs):
                out.endpoints_by_vpc.setdefault(e.vpc_id, []).append(e)
        return out

    def state(self, action: Action) -> dict[str, Any]:
        """The part of the resource an action is about, as read from AWS."""
        if action.kind in _ENDPOINT_KINDS:
            ep = self.endpoints.get(action.resource_id)
            if ep is None:
                return {"deleted": True}
            if action.kind == "set_endpoint_policy":
                return {"policy_document": ep.policy_document}
            if action.kind == "set_private_dns":
                return {"private_dns_enabled": ep.private_dns_enabled}
            return {"route_table_ids": sorted(ep.route_table_ids)}
        if action.kind == "enable_vpc_attribute":
            attribute = action.params["attribute"]
            return {attribute: self.vpc_attributes.get((action.resource_id, attribute))}
        if action.kind == "authorize_ingress":
            group = self.security_groups.get(action.resource_id)
            if group is None:
                return {"deleted": True}
            return {"missing_sources": self._missing_sources(action, group)}
        if action.kind == "create_endpoint":
            ep = self._created(action)
            return {"endpoint": None} if ep is None else {"endpoint": ep.id, "state": ep.state}
        return {}

    def unchanged(self, action: Action) -> bool:
        """AWS still shows what the action was planned on: its `before`, as far as this read covers it. Read
        right before a write, False means someone changed the resource since the snapshot (re-plan)."""
        observed = self.state(action)
        if observed.get("deleted"):
            return False
        return all(_same(key, observed[key], action.before[key]) for key in set(observed) & set(action.before))

    def reached(self, action: Action) -> bool:
        observed = self.state(action)
        if action.kind == "set_endpoint_policy":
            return observed.get("policy_document") is not None and policy.same_policy(
                observed["policy_document"], action.params["policy_document"])
        if action.kind in ("add_route_tables", "reassociate_route_tables"):
            return set(action.params["route_table_ids"]) <= set(observed.get("route_table_ids", ()))
        if action.kind == "remove_route_tables":
            return "route_table_ids" in observed and not (
                set(action.params["route_table_ids"]) & set(observed["route_table_ids"]))
        if action.kind == "set_private_dns":
            return observed.get("private_dns_enabled") is bool(action.params["enabled"])
        if action.kind == "enable_vpc_attribute":
            return observed.get(action.params["attribute"]) is True
        if action.kind == "authorize_ingress":
            return observed.get("missing_sources") == []
        if action.kind == "create_endpoint":
            return observed.get("endpoint") is not None
        return False

    @staticmethod
    def _missing_sources(action: Action, group: SecurityGroup) -> list[str]:
        rules = [r for r in group.ingress if allows_https(r)]
        return ([c for c in action.params.get("cidrs", ()) if not any(covers(r, c) for r in rules)]
                + [g for g in action.params.get("group_ids", ()) if not any(g in r.group_ids for r in rules)])

    def _created(self, action: Action) -> Endpoint | None:
        p = action.params
        return next((e for e in self.endpoints_by_vpc.get(p["vpc_id"], [])
                     if e.service_name == p["service_name"] and e.type == p["type"]
                     and e.state not in GONE_ENDPOINT_STATES), None)


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "policy_document":
        return policy.same_policy(a, b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return sorted(map(str, a)) == sorted(map(str, b))
    return bool(a == b)


# ------------------------------------------------------------------------------------------------ execution
@dataclass
class _Attempt:
    action: Action
    error: str | None = None
    #: Rule whose finding made this very write earlier in the run (it is not repeated).
    written_by: str | None = None
    #: The error (of this write, or of the earlier step that blocked it) may pass on a later attempt.
    transient: bool = False
    attempted: bool = True


@dataclass
class _Write:
    error: str | None
    rule_id: str
    transient: bool = False


def _write_key(action: Action) -> tuple[str, str, str]:
    return action.kind, action.resource_id, repr(sorted(action.params.items()))


def _per_action(f: Finding, action: Action, k: int, n: int, written_by: str | None = None, **kw: Any) -> Outcome:
    """One Outcome for step k of n of a finding's fix, about the resource that step changes."""
    reason = kw.pop("reason", f.reason)
    if n > 1:
        reason = f"{reason} [step {k}/{n}: {action.summary or action.kind}]"
    details: dict[str, Any] = {"step": k, "steps": n} if n > 1 else {}
    if written_by:
        details["write_made_by"] = written_by  # the same call was made once, for that rule's finding
    return Outcome(finding=f, reason=reason, actions=(action,), resource_id=action.resource_id,
                   resource_type=resource_type_of(action.resource_id), details=details, **kw)


def intents(steps: list[Step]) -> list[Outcome]:
    """`pending` Outcomes for the fixes about to be applied, one per action with the same resource and step
    details as the outcome that will follow (so the outcome's ledger record can overwrite the intent's)."""
    return [
        _per_action(s.finding, a, k, len(s.finding.actions), status=Status.PENDING, before=a.before, after=a.after,
                    reason=f"{s.finding.reason}; fix being applied (if this record stays pending, its outcome "
                           "could not be recorded: the next evaluation shows the resource's state)")
        for s in steps if s.decision is Decision.APPLY
        for k, a in enumerate(s.finding.actions, start=1)
    ]


def execute(steps: list[Step], ctx: AwsContext) -> list[Outcome]:
    """Apply the APPLY steps in order, then read every touched resource back once."""
    ec2 = ctx.client("ec2")
    slots: list[list[Outcome] | None] = []
    written: list[tuple[int, Finding, list[_Attempt]]] = []
    done: dict[tuple[str, str, str], _Write] = {}  # writes made in this run
    for i, step in enumerate(steps):
        f = step.finding
        n = len(f.actions)
        if step.decision is Decision.APPLY:
            slots.append(None)
            attempts: list[_Attempt] = []
            blocked: _Attempt | None = None
            for k, action in enumerate(f.actions, start=1):
                if blocked:
                    attempts.append(_Attempt(action, f"not attempted: step {k - 1}/{n} failed", None,
                                             blocked.transient, attempted=False))
                    continue
                key = _write_key(action)
                shared = key in done
                if not shared:
                    try:
                        WRITERS[action.kind](ec2, action)
                        done[key] = _Write(None, f.rule_id)
                    except (ClientError, BotoCoreError) as exc:
                        done[key] = _Write(f"{action.kind} on {action.resource_id} failed: {exc}", f.rule_id,
                                           is_transient(exc))
                        logger.warning("remediation failed", extra={"rule_id": f.rule_id, "error": str(exc),
                                                                     "resource_id": action.resource_id})
                write = done[key]
                attempts.append(_Attempt(action, write.error, write.rule_id if shared else None, write.transient))
                if write.error:
                    blocked = attempts[-1]
            written.append((i, f, attempts))
        elif step.decision is Decision.DRY_RUN:
            slots.append([_per_action(f, a, k, n, status=Status.DRY_RUN, reason=f"{f.reason}; {step.note}",
                                      before=a.before, after=a.after)
                          for k, a in enumerate(f.actions, start=1)])
        elif step.decision in (Decision.EXEMPT, Decision.FLAPPING):
            # Left alone on purpose: record what a fix would do, and why it was not made.
            status = Status.EXEMPT if step.decision is Decision.EXEMPT else Status.FLAPPING
            reason = f"{f.reason}; {step.note}"
            outs = [_per_action(f, a, k, n, status=status, reason=reason, before=a.before, after=a.after)
                    for k, a in enumerate(f.actions, start=1)] or [Outcome(finding=f, status=status, reason=reason)]
            slots.append([o.model_copy(update={"details": {**o.details, **step.details}}) for o in outs])
        elif step.decision is Decision.UNFIXABLE:
            slots.append([Outcome(finding=f, status=Status.FAILED, reason=f.reason,
                                  error=f"cannot fix safely: {step.note}")])
        else:
            slots.append([Outcome(finding=f, status=f.status, reason=f.reason)])

    if written:
        reads: ReadBack | None
        read_error, read_transient = "", False
        read_at = datetime.now(UTC)
        try:
            reads = ReadBack.read(ctx, (a.action for _, _, attempts in written for a in attempts))
        except (ClientError, BotoCoreError) as exc:
            reads = None
            read_error = f"could not read the resource back after the write: {exc}"
            read_transient = is_transient(exc)
        for i, f, attempts in written:
            n = len(attempts)
            outs = []
            for k, attempt in enumerate(attempts, start=1):
                a = attempt.action
                by = attempt.written_by
                if reads is None:
                    outs.append(_per_action(f, a, k, n, by, status=Status.FAILED, before=a.before,
                                            error=attempt.error or read_error,
                                            retryable=attempt.transient or read_transient))
                    continue
                observed = reads.state(a)
                if reads.reached(a):
                    if not attempt.error:
                        reason = f.reason
                    elif attempt.attempted:
                        reason = (f"{f.reason}; the write answered with an error ({attempt.error}) but AWS shows "
                                  "the fix applied")
                    else:
                        reason = f"{f.reason}; not attempted ({attempt.error}), but AWS already shows this state"
                    outs.append(_per_action(f, a, k, n, by, status=Status.REMEDIATED, reason=reason,
                                            before=a.before, after=observed))
                elif attempt.error:
                    outs.append(_per_action(f, a, k, n, by, status=Status.FAILED, before=a.before, after=observed,
                                            error=attempt.error, retryable=attempt.transient))
                elif not reads.unchanged(a):
                    # Neither what was there nor what was written: someone else wrote at the same moment.
                    outs.append(_per_action(
                        f, a, k, n, by, status=Status.CONFLICT, before=a.before, after=observed,
                        reason=f"{f.reason}; changed by someone else while being fixed: AWS shows neither the "
                               "state before the fix nor the fix (the next event or sweep re-checks it)"))
                else:
                    outs.append(_per_action(f, a, k, n, by, status=Status.FAILED, before=a.before, after=observed,
                                            error="the write returned success but AWS does not show the intended "
                                                  "state"))
            slots[i] = [o.model_copy(update={"observed_at": read_at}) for o in outs]
    return [o for group in slots if group is not None for o in group]


def apply_and_verify(actions: tuple[Action, ...], ctx: AwsContext) -> tuple[bool, dict[str, Any], str | None]:
    """Apply actions in order (stopping at the first error), read the resources back once, and say whether
    AWS now shows every action's target state. Returns (reached, observed state, error). Used by rollback;
    `execute` does the same for a run's findings."""
    ec2 = ctx.client("ec2")
    error: str | None = None
    for action in actions:
        try:
            WRITERS[action.kind](ec2, action)
        except (ClientError, BotoCoreError) as exc:
            error = f"{action.kind} on {action.resource_id} failed: {exc}"
            break
    try:
        reads = ReadBack.read(ctx, actions)
    except (ClientError, BotoCoreError) as exc:
        return False, {}, error or f"could not read the resource back after the write: {exc}"
    observed: dict[str, Any] = {}
    for a in actions:
        observed.update(reads.state(a))
    reached = error is None and all(reads.reached(a) for a in actions)
    if error is None and not reached:
        error = "the write returned success but AWS does not show the intended state"
    return reached, observed, error
