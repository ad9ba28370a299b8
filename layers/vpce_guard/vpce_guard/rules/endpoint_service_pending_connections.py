"""Rule `endpoint-service-pending-connections`: nobody outside the organization is waiting at the door.

With acceptance required, a consumer's endpoint stays `pendingAcceptance` until the service's owner decides.
A request from an account outside the organization (and not a named partner) is reported with who asked:
the account and its endpoint. The request is made in the consumer's account, so no event of ours announces
it: the sweep finds it. With `RejectOutsideConnections=true` such requests are rejected, each one by its own
RejectVpcEndpointConnections call naming exactly that endpoint (never a list computed from an older read).
Requests from accounts nobody could place are reported and never rejected.
"""

from __future__ import annotations

from ..models import Action, Finding, ServiceConfiguration, Snapshot
from . import RuleContext, register
from ._service_principals import OUTSIDER, PENDING_CONNECTION_STATES, Flagged, judge_connections

RULE_ID = "endpoint-service-pending-connections"
REJECT = "reject_connection"


@register(
    RULE_ID,
    "No connection request from outside the organization waits on an endpoint service",
    triggers=("ModifyVpcEndpointServiceConfiguration", "AcceptVpcEndpointConnections"),
    fix_by_default=False,
    reads=("service_configurations", "service_connections"),
    severity="MEDIUM",
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """No endpoint service has a connection request pending acceptance from an account outside the
    organization that is not a named partner (who asked is in the finding). Detect only; with
    RejectOutsideConnections=true each such request is rejected (never one whose account could not be placed,
    never an accepted connection)."""
    def reject(service: ServiceConfiguration, flagged: Flagged) -> tuple[Action, ...]:
        if not ctx.reject_outside_connections:
            return ()
        return tuple(
            Action(kind=REJECT, resource_id=service.id, params={"endpoint_id": c.endpoint_id},
                   before={"endpoint_id": c.endpoint_id, "owner": c.owner, "state": c.state},
                   after={"endpoint_id": c.endpoint_id, "state": "rejected"},
                   summary=f"reject {c.endpoint_id} of account {c.owner} on {service.id}")
            for c, v in flagged if v.kind == OUTSIDER)

    return judge_connections(RULE_ID, snapshot, ctx, states=PENDING_CONNECTION_STATES, noun="pending request(s)",
                             none="no connection request is pending", detail_key="pending", fixes=reject,
                             problem="connection request(s) from outside the organization wait for acceptance")
