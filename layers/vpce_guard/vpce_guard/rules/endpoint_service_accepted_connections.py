"""Rule `endpoint-service-accepted-connections`: who outside the organization is connected right now.

An accepted connection from an account outside the organization (and not a named partner) is traffic from a
stranger reaching the provider's load balancer. It is reported, with the account and its endpoint, and never
dropped: cutting a live connection breaks a consumer mid-flight, and whether it should go is the owner's
decision (RejectVpcEndpointConnections on an accepted connection, or removing the principal first).
"""

from __future__ import annotations

from ..models import Finding, Snapshot
from . import RuleContext, register
from ._service_principals import LIVE_CONNECTION_STATES, judge_connections

RULE_ID = "endpoint-service-accepted-connections"


@register(
    RULE_ID,
    "No account outside the organization is connected to an endpoint service",
    triggers=("AcceptVpcEndpointConnections", "ModifyVpcEndpointServiceConfiguration"),
    fix_by_default=False,
    reads=("service_configurations", "service_connections"),
    severity="HIGH",
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """No endpoint service has an accepted (live) connection from an account outside the organization that
    is not a named partner. Detect only, always: vpce-guard never drops a live connection."""
    return judge_connections(RULE_ID, snapshot, ctx, states=LIVE_CONNECTION_STATES, noun="connection(s)",
                             none="no endpoint is connected", detail_key="connections",
                             problem="connected from outside the organization (left in place: vpce-guard never "
                                     "drops a live connection)")
