"""Rule `endpoint-service-accepted-connections`: who outside the organization is connected right now.

An accepted connection from an account outside the organization (and not a named partner) is traffic from a
stranger reaching the provider's load balancer. It is reported, with the account and its endpoint, and never
dropped: cutting a live connection breaks a consumer mid-flight, and whether it should go is the owner's
decision (RejectVpcEndpointConnections on an accepted connection, or removing the principal first).
"""

from __future__ import annotations

from ..models import Finding, Snapshot, Status
from . import RuleContext, register
from ._service_principals import (
    LIVE_CONNECTION_STATES,
    OUTSIDER,
    PARTNER,
    UNVERIFIED,
    base,
    connection_details,
    connections_in,
    describe_connections,
    not_judged,
)

RULE_ID = "endpoint-service-accepted-connections"


@register(
    RULE_ID,
    "No account outside the organization is connected to an endpoint service",
    triggers=("AcceptVpcEndpointConnections", "ModifyVpcEndpointServiceConfiguration"),
    fix_by_default=False,
    reads=("service_configurations", "service_connections"),
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """No endpoint service has an accepted (live) connection from an account outside the organization that
    is not a named partner. Detect only, always: vpce-guard never drops a live connection."""
    out: list[Finding] = []
    for service in snapshot.service_configurations.values():
        skipped = not_judged(RULE_ID, service, connections=True)
        if skipped is not None:
            out.append(skipped)
            continue
        live = connections_in(service, LIVE_CONNECTION_STATES, snapshot, ctx)
        flagged = [(c, v) for c, v in live if v.kind in (OUTSIDER, UNVERIFIED)]
        details = {"connections": connection_details(live)} if live else {}
        if not flagged:
            partners = sum(1 for _, v in live if v.kind == PARTNER)
            reason = (f"{len(live)} connection(s), none from outside the organization"
                      + (f" but named partners ({partners})" if partners else "") if live
                      else "no endpoint is connected")
            out.append(Finding(**base(RULE_ID, service), status=Status.COMPLIANT, reason=reason, details=details))
            continue
        out.append(Finding(**base(RULE_ID, service), status=Status.NON_COMPLIANT, details=details,
                           reason=f"connected from outside the organization (left in place: vpce-guard never drops "
                                  f"a live connection): {describe_connections(flagged)}"))
    return out
