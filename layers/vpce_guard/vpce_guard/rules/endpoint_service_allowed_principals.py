"""Rule `endpoint-service-allowed-principals`: only the organization (and named partners) may connect to the
endpoint services an account provides.

An endpoint service's allowed principals decide who may create an endpoint to it. `*` makes it public (anyone
who knows its name can ask), and an account outside the organization is a stranger with a door into the
provider's network. Detect by default: removing a principal can cut off a consumer someone agreed to. With
`RemoveOutsidePrincipals=true` the fix removes exactly the outsiders, one principal per
ModifyVpcEndpointServicePermissions call (`RemoveAllowedPrincipals`, a delta that cannot undo anyone else's
concurrent change), so each removal is its own ledger record with its before and after. It never adds a
principal and never touches existing connections (see `endpoint-service-accepted-connections`).
"""

from __future__ import annotations

from ..models import Action, Finding, Snapshot, Status
from . import RuleContext, register
from ._service_principals import INSIDER, OUTSIDER, PARTNER, SERVICE, UNVERIFIED, base, describe, judged_services

RULE_ID = "endpoint-service-allowed-principals"
REMOVE = "remove_allowed_principal"


@register(
    RULE_ID,
    "Only principals of the organization (or named partners) may connect to an endpoint service",
    triggers=("CreateVpcEndpointServiceConfiguration", "ModifyVpcEndpointServicePermissions"),
    fix_by_default=False,
    reads=("service_configurations",),
    severity="HIGH",
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """Every allowed principal of every endpoint service the account provides is an account of an allowed
    organization (`arn:aws:iam::<account>:root`), an IAM principal of one, the organization or one of its OUs,
    an AWS service, or a partner in EndpointServicePartners; `*` never is. Detect only; with
    RemoveOutsidePrincipals=true, the outsiders are removed one by one (never a principal whose account could
    not be placed)."""
    out: list[Finding] = []
    for service, verdicts in judged_services(RULE_ID, snapshot, ctx, out):
        principals = service.allowed_principals or ()
        by_kind = {k: [v for v in verdicts if v.kind == k] for k in (INSIDER, PARTNER, SERVICE, OUTSIDER, UNVERIFIED)}
        listed = sorted(p.principal for p in principals)
        details: dict[str, object] = {"allowed_principals": listed}
        for kind, key in ((PARTNER, "partners"), (OUTSIDER, "outside_principals"),
                          (UNVERIFIED, "unverified_principals")):
            if by_kind[kind]:
                details[key] = [v.principal for v in by_kind[kind]]
        if not (by_kind[OUTSIDER] or by_kind[UNVERIFIED]):
            reason = f"{len(principals)} allowed principal(s), all of the organization"
            if by_kind[PARTNER]:
                reason += f" or named partners ({len(by_kind[PARTNER])})"
            if not principals:
                reason = "no principal may connect"
            out.append(Finding(**base(RULE_ID, service), status=Status.COMPLIANT, reason=reason, details=details))
            continue
        parts = []
        if by_kind[OUTSIDER]:
            parts.append(f"allows principal(s) outside the organization: {describe(by_kind[OUTSIDER])}")
        if by_kind[UNVERIFIED]:
            parts.append(f"allows principal(s) it cannot place: {describe(by_kind[UNVERIFIED])}")
        reason = "; ".join(parts)
        actions: tuple[Action, ...] = ()
        if ctx.remove_outside_principals:
            actions = tuple(
                Action(kind=REMOVE, resource_id=service.id, params={"principal": v.principal},
                       before={"principal": v.principal, "allowed": True, "allowed_principals": listed},
                       after={"principal": v.principal, "allowed": False},
                       summary=f"remove allowed principal {v.principal} from {service.id}")
                for v in by_kind[OUTSIDER])
        out.append(Finding(**base(RULE_ID, service), status=Status.NON_COMPLIANT, reason=reason, details=details,
                           actions=actions))
    return out
