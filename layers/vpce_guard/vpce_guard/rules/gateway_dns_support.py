"""Rule `gateway-endpoint-dns-support`: a VPC with a gateway endpoint has DNS resolution on.

A gateway endpoint is reached through the service's ordinary public name (s3.eu-west-1.amazonaws.com):
instances must be able to resolve it with the VPC's resolver, so `enableDnsSupport` must be on.
"""

from __future__ import annotations

from ..models import GONE_ENDPOINT_STATES, Finding, Snapshot, Status
from . import RuleContext, _vpc_dns, register

RULE_ID = "gateway-endpoint-dns-support"


@register(
    RULE_ID,
    "VPCs with a gateway endpoint have DNS resolution (enableDnsSupport) on",
    triggers=("ModifyVpcAttribute", "CreateVpcEndpoint", "ModifyVpcEndpoint"),
    reads=("vpcs", "vpc_dns"),  # owner, DNS attributes
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """For each VPC with a live gateway endpoint, `enableDnsSupport` must be on; the fix turns it on with
    one ModifyVpcAttribute call. Findings are about the VPC."""
    out: list[Finding] = []
    for vpc in snapshot.vpcs.values():
        gateways = sorted(e.id for e in snapshot.endpoints_of(vpc.id)
                          if e.type == "Gateway" and e.state not in GONE_ENDPOINT_STATES)
        if not gateways:
            continue
        base = {"rule_id": RULE_ID, "resource_id": vpc.id, "resource_type": "vpc", "vpc_id": vpc.id,
                "details": {"endpoints": gateways}}
        if vpc.dns_support is None:
            out.append(Finding(**base, status=Status.SKIPPED, reason=f"cannot read enableDnsSupport of {vpc.id}"))
            continue
        if vpc.dns_support:
            out.append(Finding(**base, status=Status.COMPLIANT,
                               reason=f"DNS resolution is on for gateway endpoint(s) {', '.join(gateways)}"))
            continue
        reason = (f"enableDnsSupport is off in {vpc.id}: instances cannot resolve the service names that gateway "
                  f"endpoint(s) {', '.join(gateways)} serve")
        refused = _vpc_dns.not_owner_reason(vpc, snapshot.account)
        if refused:
            out.append(Finding(**{**base, "details": {**base["details"], "unfixable": refused}},
                               status=Status.NON_COMPLIANT, reason=reason))
            continue
        out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=reason,
                           actions=tuple(_vpc_dns.enable_actions(vpc, [_vpc_dns.SUPPORT]))))
    return out
