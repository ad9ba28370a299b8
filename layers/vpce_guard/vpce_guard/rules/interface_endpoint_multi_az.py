"""Rule `interface-endpoint-multi-az`: an interface endpoint has network interfaces in at least two AZs.

An interface endpoint lives in the subnets it was given, one network interface per subnet. With all of them
in one Availability Zone, an outage of that zone cuts every client in the VPC off from the service, and
clients in other zones pay cross-zone traffic. This is a resilience finding: detect only (which subnet to
add is a design decision).
"""

from __future__ import annotations

from ..models import GONE_ENDPOINT_STATES, Finding, Snapshot, Status
from . import RuleContext, register

RULE_ID = "interface-endpoint-multi-az"
MIN_ZONES = 2


@register(
    RULE_ID,
    "Interface endpoints span at least two Availability Zones",
    severity="LOW",
    triggers=("CreateVpcEndpoint", "ModifyVpcEndpoint"),
    fix_by_default=False,
    reads=("subnets",),
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """Every interface endpoint must have subnets in at least two Availability Zones (counted by zone id,
    which is the same physical zone in every account). Detect only."""
    out: list[Finding] = []
    for ep in snapshot.endpoints.values():
        if ep.type != "Interface" or ep.state in GONE_ENDPOINT_STATES:
            continue
        base = {"rule_id": RULE_ID, "resource_id": ep.id, "resource_type": "vpc-endpoint", "vpc_id": ep.vpc_id}
        unread = [s for s in ep.subnet_ids if s not in snapshot.subnets]
        if unread:
            out.append(Finding(**base, status=Status.SKIPPED, reason=f"subnet(s) {', '.join(unread)} not read"))
            continue
        zones = sorted({snapshot.subnets[s].availability_zone_id or snapshot.subnets[s].availability_zone or s
                        for s in ep.subnet_ids})
        details = {"subnets": list(ep.subnet_ids), "zones": zones}
        if len(zones) >= MIN_ZONES:
            out.append(Finding(**base, status=Status.COMPLIANT, details=details,
                               reason=f"network interfaces in {len(zones)} Availability Zones"))
            continue
        where = f"only {zones[0]}" if zones else "no subnet at all"
        out.append(Finding(**base, status=Status.NON_COMPLIANT, details=details,
                           reason=f"{ep.id} ({ep.service_short_name}) has network interfaces in {where}: one zone's "
                                  f"outage cuts the VPC off from {ep.service_short_name}; add a subnet in another "
                                  "zone"))
    return out
