"""Rule `endpoint-service-acceptance`: an endpoint service open to anyone outside the organization requires
acceptance.

Without acceptance, an endpoint created by an allowed principal connects at once: for `*` or a stranger's
account that means live traffic into the provider's load balancer before anyone looked. Partners count too:
a partner is trusted to ask, and the owner still decides each connection. The fix turns AcceptanceRequired
on (ModifyVpcEndpointServiceConfiguration). It is on by default because it closes a door without breaking
anything: AWS applies it to new connection requests only, so connections already accepted keep working.
"""

from __future__ import annotations

from ..models import Action, Finding, Snapshot, Status
from . import RuleContext, register
from ._service_principals import INSIDER, SERVICE, base, describe, judged_services

RULE_ID = "endpoint-service-acceptance"
REQUIRE = "require_acceptance"


@register(
    RULE_ID,
    "An endpoint service that allows principals outside the organization requires acceptance",
    triggers=("CreateVpcEndpointServiceConfiguration", "ModifyVpcEndpointServiceConfiguration",
              "ModifyVpcEndpointServicePermissions"),
    reads=("service_configurations",),
    severity="MEDIUM",
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """A service whose allowed principals include anyone outside the organization (`*`, outside accounts,
    named partners, or principals whose account could not be placed) has AcceptanceRequired on. The fix
    turns it on; connections already accepted are not affected."""
    out: list[Finding] = []
    for service, verdicts in judged_services(RULE_ID, snapshot, ctx, out):
        outside = [v for v in verdicts if v.kind not in (INSIDER, SERVICE)]
        details = {"acceptance_required": service.acceptance_required,
                   "outside_principals": [v.principal for v in outside]}
        if not outside:
            out.append(Finding(**base(RULE_ID, service), status=Status.COMPLIANT, details=details,
                               reason="only principals of the organization may connect"))
            continue
        if service.acceptance_required:
            out.append(Finding(**base(RULE_ID, service), status=Status.COMPLIANT, details=details,
                               reason=f"acceptance is required of principals outside the organization: "
                                      f"{', '.join(v.principal for v in outside)}"))
            continue
        action = Action(kind=REQUIRE, resource_id=service.id, params={"acceptance_required": True},
                        before={"acceptance_required": service.acceptance_required},
                        after={"acceptance_required": True},
                        summary=f"require acceptance of connection requests to {service.id}")
        out.append(Finding(**base(RULE_ID, service), status=Status.NON_COMPLIANT, details=details, actions=(action,),
                           reason=f"acceptance is not required, so these connect without anyone accepting: "
                                  f"{describe(outside)}"))
    return out
