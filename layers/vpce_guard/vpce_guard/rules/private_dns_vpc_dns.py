"""Rule `private-dns-vpc-dns`: interface endpoints with private DNS sit in a VPC with DNS support and hostnames.

Private DNS makes a service's public name (ssm.eu-west-1.amazonaws.com) resolve to the endpoint inside the
VPC. It only works while the VPC has both `enableDnsSupport` and `enableDnsHostnames` on; turn either off
and clients silently go back to the public endpoint (through a NAT, or nowhere). AWS refuses to enable
private DNS on an endpoint unless both are on, but lets someone turn them off later.
"""

from __future__ import annotations

from ..models import GONE_ENDPOINT_STATES, Action, Endpoint, Finding, Snapshot, Status
from . import RuleContext, _vpc_dns, register

RULE_ID = "private-dns-vpc-dns"


@register(
    RULE_ID,
    "Interface endpoints with private DNS have VPC DNS support and DNS hostnames",
    triggers=("ModifyVpcAttribute", "CreateVpcEndpoint", "ModifyVpcEndpoint"),
    reads=("vpcs", "vpc_dns"),  # tags (profiles), owner, DNS attributes
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """For each VPC with interface endpoints whose private DNS is on, or is required by one of the VPC's
    profiles: both VPC DNS attributes must be on and so must the endpoints' private DNS. The fix turns the
    attributes on one call each (support, then hostnames), then private DNS on the endpoints that a
    profile requires it for. Findings are about the VPC; a VPC whose endpoints were not all read is only
    judged on evidence of a problem (never called compliant from a partial view)."""
    out: list[Finding] = []
    for vpc in snapshot.vpcs.values():
        interface = [e for e in snapshot.endpoints_of(vpc.id)
                     if e.type == "Interface" and e.state not in GONE_ENDPOINT_STATES]
        complete = vpc.id in snapshot.vpcs_with_all_endpoints
        base = {"rule_id": RULE_ID, "resource_id": vpc.id, "resource_type": "vpc", "vpc_id": vpc.id}
        wanting: list[tuple[Endpoint, list[str]]] = []
        for ep in interface:
            required_by = ctx.private_dns_required(vpc, ep.service_short_name)
            if ep.private_dns_enabled or required_by:
                wanting.append((ep, required_by))
        if not wanting:
            if complete and interface:
                out.append(Finding(**base, status=Status.NOT_APPLICABLE,
                                   reason=f"no interface endpoint in {vpc.id} uses or requires private DNS"))
            continue

        names = ", ".join(f"{ep.id} ({ep.service_short_name})" for ep, _ in wanting)
        details: dict[str, object] = {"endpoints": [ep.id for ep, _ in wanting]}
        off = _vpc_dns.missing_attributes(vpc, hostnames=True)
        unknown = _vpc_dns.unknown_attributes(vpc, hostnames=True)
        private_off = [(ep, req) for ep, req in wanting if not ep.private_dns_enabled]
        if not off and unknown:
            out.append(Finding(**base, status=Status.SKIPPED, details=details,
                               reason=f"cannot read {', '.join(unknown)} of {vpc.id}"))
            continue
        if not off and not private_off:
            if complete:
                out.append(Finding(**base, status=Status.COMPLIANT, details=details,
                                   reason=f"DNS support and hostnames are on for private DNS of {names}"))
            continue

        problems = []
        if off:
            problems.append(f"{' and '.join(off)} off in {vpc.id}, so private DNS of {names} does not resolve")
        if private_off:
            problems.append("private DNS is off on " + ", ".join(
                f"{ep.id} ({ep.service_short_name}, required by {', '.join(req)})" for ep, req in private_off))
        reason = "; ".join(problems)
        refused = _vpc_dns.not_owner_reason(vpc, snapshot.account) if off else None
        if refused:
            out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=reason,
                               details={**details, "unfixable": refused}))
            continue
        actions = _vpc_dns.enable_actions(vpc, off)
        deferred = []
        for ep, _ in private_off:
            if ep.owner_id and ep.owner_id != snapshot.account:
                deferred.append(f"{ep.id} is owned by account {ep.owner_id}")
            elif ep.state != "available":
                deferred.append(f"{ep.id} is {ep.state}; private DNS can be turned on once it is available")
            else:
                actions.append(Action(kind="set_private_dns", resource_id=ep.id, params={"enabled": True},
                                      before={"private_dns_enabled": False}, after={"private_dns_enabled": True},
                                      summary=f"turn private DNS on for {ep.id} ({ep.service_short_name})"))
        if deferred:
            details["not_changed"] = deferred
            reason += "; not changed: " + "; ".join(deferred)
        out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=reason, actions=tuple(actions),
                           details=details))
    return out
