"""Rule `interface-endpoint-ingress`: an interface endpoint accepts HTTPS from the clients it serves.

An interface endpoint is a set of network interfaces guarded by security groups. AWS APIs are HTTPS, so
unless a group allows inbound TCP 443 from the clients' addresses, every call through the endpoint times
out, which looks like a service outage rather than a configuration error. By default "the clients" are
the VPC's CIDR blocks (all of them: a VPC can have several); a deployment can name its own CIDRs and/or
security groups instead.
"""

from __future__ import annotations

from ..models import GONE_ENDPOINT_STATES, Action, Endpoint, Finding, SecurityGroup, Snapshot, Status
from . import RuleContext, register
from ._ingress import HTTPS, allows_https, covers

RULE_ID = "interface-endpoint-ingress"


@register(
    RULE_ID,
    "Interface endpoint security groups allow inbound TCP 443 from the VPC",
    severity="LOW",
    triggers=("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "ModifySecurityGroupRules",
              "CreateVpcEndpoint", "ModifyVpcEndpoint"),
    fix_by_default=False,
    reads=("vpcs", "security_groups"),  # the VPC's CIDR blocks, the endpoint's groups
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """The security groups of every interface endpoint must, together, allow inbound TCP 443 from each CIDR
    of the endpoint's VPC (or from each configured CIDR and security group). Detect only; with
    `AddEndpointIngress=true` the missing sources are added as one rule on the endpoint's first security
    group owned by this account. Rules that reference prefix lists are not expanded (they do not count)."""
    out: list[Finding] = []
    for ep in snapshot.endpoints.values():
        if ep.type != "Interface" or ep.state in GONE_ENDPOINT_STATES:
            continue
        out.append(_judge(snapshot, ctx, ep))
    return out


def _judge(snapshot: Snapshot, ctx: RuleContext, ep: Endpoint) -> Finding:
    base = {"rule_id": RULE_ID, "resource_id": ep.id, "resource_type": "vpc-endpoint", "vpc_id": ep.vpc_id}
    if not ep.security_group_ids:
        return Finding(**base, status=Status.SKIPPED, reason="the endpoint lists no security groups")
    unread = [g for g in ep.security_group_ids if g not in snapshot.security_groups]
    if unread:
        return Finding(**base, status=Status.SKIPPED, reason=f"security group(s) {', '.join(unread)} not read")
    groups = [snapshot.security_groups[g] for g in ep.security_group_ids]

    if ctx.endpoint_ingress_cidrs or ctx.endpoint_ingress_source_groups:
        cidrs, sources, what = ctx.endpoint_ingress_cidrs, ctx.endpoint_ingress_source_groups, "the configured sources"
    else:
        vpc = snapshot.vpcs.get(ep.vpc_id)
        if vpc is None or not vpc.cidrs:
            return Finding(**base, status=Status.SKIPPED, reason=f"CIDR blocks of {ep.vpc_id} not read")
        cidrs, sources, what = vpc.cidrs, (), f"the CIDR block(s) of {ep.vpc_id}"
    rules = [r for g in groups for r in g.ingress if allows_https(r)]
    missing_cidrs = [c for c in cidrs if not any(covers(r, c) for r in rules)]
    missing_groups = [g for g in sources if not any(g in r.group_ids for r in rules)]
    details: dict[str, object] = {"security_groups": list(ep.security_group_ids), "required_cidrs": list(cidrs)}
    if sources:
        details["required_source_groups"] = list(sources)
    if not (missing_cidrs or missing_groups):
        return Finding(**base, status=Status.COMPLIANT, details=details,
                       reason=f"inbound TCP 443 is allowed from {what}")

    missing = [*missing_cidrs, *missing_groups]
    details["missing_sources"] = missing
    reason = (f"security group(s) {', '.join(ep.security_group_ids)} do not allow inbound TCP 443 from "
              f"{', '.join(missing)}: calls through {ep.id} ({ep.service_short_name}) from there time out")
    if any(r.prefix_list_ids for g in groups for r in g.ingress):
        reason += " (rules that reference prefix lists were not expanded)"
    if not ctx.add_endpoint_ingress:
        return Finding(**base, status=Status.NON_COMPLIANT, reason=reason, details=details)
    target = _own_group(groups, snapshot.account)
    if target is None:
        details["unfixable"] = f"none of the endpoint's security groups is owned by account {snapshot.account}"
        return Finding(**base, status=Status.NON_COMPLIANT, reason=reason, details=details)
    action = Action(
        kind="authorize_ingress", resource_id=target.id,
        params={"port": HTTPS, "cidrs": missing_cidrs, "group_ids": missing_groups,
                "description": f"vpce-guard: HTTPS to interface endpoint {ep.id}"},
        before={"missing_sources": missing}, after={"missing_sources": []},
        summary=f"allow inbound TCP 443 from {', '.join(missing)} in {target.id}",
    )
    return Finding(**base, status=Status.NON_COMPLIANT, reason=reason, details=details, actions=(action,))


def _own_group(groups: list[SecurityGroup], account: str) -> SecurityGroup | None:
    return next((g for g in groups if g.owner_id in (None, account)), None)
