"""Shared by the endpoint-service rules: who is an allowed principal, or a connected account, really?

Every principal of an endpoint service's allow list, and every account connected to it, falls in one class:

* `insider`: an account of an allowed organization (the service's own account, an `OrgAccountIds` account,
  or one AWS Organizations places in an allowed organization), an IAM principal of such an account, or the
  ARN of an allowed organization or of one of its OUs;
* `partner`: named in `EndpointServicePartners` (an account id covers the account and its IAM principals);
* `service`: an AWS service principal (not an outsider: AWS's data-perimeter examples let them through);
* `outsider`: `*`, or an account (or its IAM principals, or an organization/OU) outside the allowed
  organizations, as AWS Organizations answered;
* `unverified`: an account nobody could place (Organizations could not be asked) or a principal form
  vpce-guard does not recognise. Reported; never removed or rejected, since it may be an insider.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..endpoint_services import GONE_SERVICE_STATES
from ..models import Action, EndpointConnection, Finding, ServiceConfiguration, Snapshot, Status
from . import RuleContext

INSIDER = "insider"
PARTNER = "partner"
SERVICE = "service"
OUTSIDER = "outsider"
UNVERIFIED = "unverified"

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_IAM_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):(?:root|(?:user|role)/.+)")
#: arn:aws:organizations::<management account>:organization/o-… and …:ou/o-…/ou-…
_ORG_ARN_RE = re.compile(r"arn:aws[a-z-]*:organizations::[0-9]{12}:(?:organization|ou)/(o-[a-z0-9]{10,32})(?:/.*)?")
_SERVICE_RE = re.compile(r"[a-z0-9.-]+\.amazonaws\.com(?:\.cn)?")


@dataclass(frozen=True)
class Verdict:
    """Where one principal (or connected account) stands, and why, in words for the ledger."""

    principal: str
    kind: str
    why: str
    account: str | None = None


def account_of(principal: str) -> str | None:
    """The one account a principal names (`123456789012`, `arn:aws:iam::123456789012:…`), else None."""
    if _ACCOUNT_RE.fullmatch(principal):
        return principal
    match = _IAM_ARN_RE.fullmatch(principal)
    return match.group(1) if match else None


def partner_accounts(ctx: RuleContext) -> frozenset[str]:
    """Accounts named by the partner list (by id, or through one of their IAM principals)."""
    return frozenset(a for a in (account_of(p) for p in ctx.endpoint_service_partners) if a)


def classify_account(account: str, snapshot: Snapshot, ctx: RuleContext, *, principal: str | None = None) -> Verdict:
    """Where an account stands. `principal`: the allow-list entry that names it (a partner may be one IAM
    principal of an account); None for a connected account (partner when any partner entry is in it)."""
    name = principal or account
    partner = (principal in ctx.endpoint_service_partners or account in ctx.endpoint_service_partners
               if principal is not None else account in partner_accounts(ctx))
    if partner:
        return Verdict(name, PARTNER, f"account {account} is a named partner", account)
    if account == snapshot.account or account in ctx.org_account_ids:
        return Verdict(name, INSIDER, f"account {account} is in the organization", account)
    if account in snapshot.account_orgs:
        org = snapshot.account_orgs[account]
        if org in ctx.allowed_org_ids:
            return Verdict(name, INSIDER, f"account {account} is in {org}", account)
        where = f"in {org}, not an allowed organization" if org else "not in the organization"
        return Verdict(name, OUTSIDER, f"account {account} is {where}", account)
    why = snapshot.account_orgs_unread or "it was not looked up"
    return Verdict(name, UNVERIFIED, f"whether account {account} is in the organization is unknown: {why}", account)


def classify(principal: str, principal_type: str | None, snapshot: Snapshot, ctx: RuleContext) -> Verdict:
    """Where one allowed principal stands."""
    if principal == "*" or principal_type == "All":
        return Verdict(principal, OUTSIDER, "'*' lets any principal of any account connect")
    if principal_type == "Service" or _SERVICE_RE.fullmatch(principal):
        return Verdict(principal, SERVICE, "an AWS service principal")
    org = _ORG_ARN_RE.fullmatch(principal)
    if org:
        if org.group(1) in ctx.allowed_org_ids:
            return Verdict(principal, INSIDER, f"{org.group(1)} is an allowed organization")
        return Verdict(principal, OUTSIDER, f"{org.group(1)} is not an allowed organization")
    account = account_of(principal)
    if account is None:
        return Verdict(principal, UNVERIFIED, "not a principal form vpce-guard recognises")
    return classify_account(account, snapshot, ctx, principal=principal)


def accounts_to_look_up(snapshot: Snapshot, ctx: RuleContext) -> set[str]:
    """Accounts the endpoint-service rules cannot place from the configuration alone: those named by allowed
    principals or owning connections, minus the evaluated account, OrgAccountIds and partners."""
    known = {snapshot.account, *ctx.org_account_ids, *partner_accounts(ctx)}
    named: set[str] = set()
    for service in snapshot.service_configurations.values():
        for p in service.allowed_principals or ():
            account = account_of(p.principal)
            if account and p.principal not in ctx.endpoint_service_partners:
                named.add(account)
        named |= {c.owner for c in service.connections or () if c.owner}
    return named - known


def describe(verdicts: list[Verdict]) -> str:
    """`'*' ('*' lets any principal …), arn:aws:iam::…:root (account … is not in the organization)`."""
    return "; ".join(f"{v.principal} ({v.why})" for v in verdicts)


def base(rule_id: str, service: ServiceConfiguration) -> dict[str, Any]:
    """The fields every endpoint-service finding shares (services belong to the account, not to a VPC)."""
    return {"rule_id": rule_id, "resource_id": service.id, "resource_type": "vpc-endpoint-service"}


def not_judged(rule_id: str, service: ServiceConfiguration, *, connections: bool = False) -> Finding | None:
    """The finding for a service that cannot be judged (gone, or its permissions/connections not read)."""
    if service.state in GONE_SERVICE_STATES:
        return Finding(**base(rule_id, service), status=Status.NOT_APPLICABLE, reason=f"service is {service.state}")
    if service.allowed_principals is None or (connections and service.connections is None):
        what = "connections" if connections else "allowed principals"
        return Finding(**base(rule_id, service), status=Status.SKIPPED, reason=f"its {what} were not read")
    return None


def judged_services(rule_id: str, snapshot: Snapshot, ctx: RuleContext,
                    out: list[Finding]) -> Iterator[tuple[ServiceConfiguration, list[Verdict]]]:
    """Each service that can be judged, with where each of its allowed principals stands; the others get their
    `not_judged` finding appended to `out`."""
    for service in snapshot.service_configurations.values():
        skipped = not_judged(rule_id, service)
        if skipped is not None:
            out.append(skipped)
            continue
        principals = service.allowed_principals or ()
        yield service, [classify(p.principal, p.principal_type, snapshot, ctx) for p in principals]


#: Connection states: waiting for the owner's decision, and connected (accepted, being set up, or partly up).
PENDING_CONNECTION_STATES = frozenset({"pendingacceptance"})
LIVE_CONNECTION_STATES = frozenset({"available", "pending", "partial"})


def connections_in(service: ServiceConfiguration, states: frozenset[str], snapshot: Snapshot,
                   ctx: RuleContext) -> list[tuple[EndpointConnection, Verdict]]:
    """The service's connections in these states, each with where its owner (who asked) stands."""
    out = []
    for c in service.connections or ():
        if c.state in states:
            verdict = (classify_account(c.owner, snapshot, ctx) if c.owner
                       else Verdict("(unknown owner)", UNVERIFIED, "AWS did not say who owns the endpoint"))
            out.append((c, verdict))
    return out


def describe_connections(pairs: list[tuple[EndpointConnection, Verdict]]) -> str:
    """`vpce-… from account 999999999999 (account 999999999999 is not in the organization)`."""
    return "; ".join(f"{c.endpoint_id} from account {c.owner or 'unknown'} ({v.why})" for c, v in pairs)


def connection_details(pairs: list[tuple[EndpointConnection, Verdict]]) -> list[dict[str, Any]]:
    return [{"endpoint_id": c.endpoint_id, "owner": c.owner, "state": c.state, "created": c.created,
             "standing": v.kind} for c, v in pairs]


Flagged = list[tuple[EndpointConnection, Verdict]]


def judge_connections(rule_id: str, snapshot: Snapshot, ctx: RuleContext, *, states: frozenset[str], noun: str,
                      none: str, problem: str, detail_key: str,
                      fixes: Callable[[ServiceConfiguration, Flagged], tuple[Action, ...]] | None = None,
                      ) -> list[Finding]:
    """One finding per service about its connections in `states`: non-compliant when any comes from outside
    the organization (not a partner) or from an account nobody could place; `fixes` proposes the actions."""
    out: list[Finding] = []
    for service in snapshot.service_configurations.values():
        skipped = not_judged(rule_id, service, connections=True)
        if skipped is not None:
            out.append(skipped)
            continue
        found = connections_in(service, states, snapshot, ctx)
        flagged = [(c, v) for c, v in found if v.kind in (OUTSIDER, UNVERIFIED)]
        details = {detail_key: connection_details(found)} if found else {}
        if not flagged:
            partners = sum(1 for _, v in found if v.kind == PARTNER)
            reason = f"{len(found)} {noun}, none from outside the organization" if found else none
            if partners:
                reason += f" but named partners ({partners})"
            out.append(Finding(**base(rule_id, service), status=Status.COMPLIANT, reason=reason, details=details))
            continue
        out.append(Finding(**base(rule_id, service), status=Status.NON_COMPLIANT, details=details,
                           actions=fixes(service, flagged) if fixes else (),
                           reason=f"{problem}: {describe_connections(flagged)}"))
    return out
