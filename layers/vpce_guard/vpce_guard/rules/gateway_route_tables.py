"""Rule `gateway-endpoint-route-tables`: every subnet of a VPC keeps reaching its S3/DynamoDB gateway endpoint.

A gateway endpoint works through routes: each route table associated with it gets a route whose destination
is the service's prefix list (`pl-…`) and whose target is the endpoint. A subnet whose route table lacks
that route sends S3/DynamoDB traffic over the internet or a NAT, or nowhere. Ways to get there: a
ModifyVpcEndpoint with RemoveRouteTableIds, a subnet moved (AssociateRouteTable,
ReplaceRouteTableAssociation) onto a table the endpoint lacks, a new route table, or a prefix-list route
that is a blackhole or goes somewhere else.

The fix only ever goes through ModifyVpcEndpoint (AddRouteTableIds; for a blackholed route of the endpoint
itself, RemoveRouteTableIds then AddRouteTableIds), never by writing raw routes, and never removes an
association a user made.
"""

from __future__ import annotations

from ..models import Action, Endpoint, Finding, Route, RouteTable, Snapshot, Status
from . import RuleContext, register

RULE_ID = "gateway-endpoint-route-tables"
GATEWAY_SERVICES = frozenset({"s3", "dynamodb"})
_ACTIVE = frozenset({"available", "pending"})


@register(
    RULE_ID,
    "Gateway endpoint is associated with every route table of its VPC",
    triggers=("CreateVpcEndpoint", "ModifyVpcEndpoint", "CreateRouteTable", "AssociateRouteTable",
              "ReplaceRouteTableAssociation", "DisassociateRouteTable", "CreateRoute", "ReplaceRoute",
              "DeleteRoute"),
    reads=("route_tables", "prefix_lists"),
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """Every route table of the VPC (except those tagged `vpce-guard:exclude=true`) must reach an S3/DynamoDB
    gateway endpoint of the service: associated with this endpoint, or with another gateway endpoint of the
    same service. Missing tables are added with ModifyVpcEndpoint AddRouteTableIds; a blackholed prefix-list
    route of this endpoint is re-associated (RemoveRouteTableIds, then AddRouteTableIds). A prefix-list
    route to anything else (internet gateway, NAT, a deleted endpoint) is reported, not rewritten."""
    out: list[Finding] = []
    for ep in snapshot.endpoints.values():
        if ep.type != "Gateway" or ep.service_short_name not in GATEWAY_SERVICES:
            continue
        base = {"rule_id": RULE_ID, "resource_id": ep.id, "resource_type": "vpc-endpoint", "vpc_id": ep.vpc_id}
        if ep.state not in _ACTIVE:
            out.append(Finding(**base, status=Status.NOT_APPLICABLE, reason=f"endpoint is {ep.state}"))
            continue
        if ep.owner_id and ep.owner_id != snapshot.account:
            out.append(Finding(**base, status=Status.NOT_APPLICABLE,
                               reason=f"endpoint is owned by account {ep.owner_id}; its owner's deployment covers it"))
            continue
        tables = snapshot.route_tables_of(ep.vpc_id)
        if not tables:
            out.append(Finding(**base, status=Status.SKIPPED, reason="route tables of the VPC were not read"))
            continue
        out.append(_judge(snapshot, ctx, ep, tables, base))
    return out


def _judge(snapshot: Snapshot, ctx: RuleContext, ep: Endpoint, tables: list[RouteTable],
           base: dict[str, str]) -> Finding:
    prefix_lists = {pl for pl, name in snapshot.prefix_lists.items() if name == ep.service_name}
    prefix_lists |= {r.destination for rt in tables for r in rt.routes
                     if r.target == ep.id and r.destination and r.destination.startswith("pl-")}
    siblings = [e for e in snapshot.endpoints_of(ep.vpc_id)
                if e.id != ep.id and e.type == "Gateway" and e.service_name == ep.service_name and e.state in _ACTIVE]
    excluded = sorted(rt.id for rt in tables if ctx.excluded(rt.tags))
    required = sorted((rt for rt in tables if not ctx.excluded(rt.tags)), key=lambda rt: rt.id)

    missing: list[str] = []
    blackholed: list[str] = []
    conflicts: dict[str, str] = {}
    served_elsewhere: dict[str, str] = {}
    for rt in required:
        route = _service_route(rt, prefix_lists)
        if rt.id in ep.route_table_ids:
            if route is not None and route.state == "blackhole" and route.target == ep.id:
                blackholed.append(rt.id)
            continue
        sibling = next((s.id for s in siblings if rt.id in s.route_table_ids), None)
        if sibling:
            served_elsewhere[rt.id] = sibling
        elif route is None or route.target == ep.id:
            # A route to this endpoint in a table it is not associated with is stale (AWS shows none; moto
            # keeps it after RemoveRouteTableIds): the association list is the truth.
            missing.append(rt.id)
        elif route.target and route.target.startswith("vpce-") and route.state != "blackhole":
            served_elsewhere[rt.id] = route.target  # another gateway endpoint of the service, not read here
        else:
            where = route.target or "nowhere"
            conflicts[rt.id] = f"{route.destination} → {where}" + (" (blackhole)" if route.state == "blackhole" else "")

    details: dict[str, object] = {}
    if excluded:
        details["excluded_route_tables"] = excluded
    if served_elsewhere:
        details["served_by_other_endpoints"] = served_elsewhere
    if conflicts:
        details["conflicting_routes"] = conflicts
    if not (missing or blackholed or conflicts):
        return Finding(**base, status=Status.COMPLIANT, details=details,
                       reason=f"all {len(required)} route table(s) of {ep.vpc_id} reach a gateway endpoint "
                              f"of {ep.service_short_name}")

    problems = []
    actions = []
    current = sorted(ep.route_table_ids)
    if missing and siblings:
        problems.append(f"route table(s) {', '.join(missing)} reach no {ep.service_short_name} gateway endpoint, "
                        f"and {ep.vpc_id} has several ({', '.join(sorted([ep.id, *(s.id for s in siblings)]))}): "
                        "associate each table with the one meant for it")
        details["unassigned_route_tables"] = missing
    elif missing:
        problems.append(f"not associated with route table(s) {', '.join(missing)} of {ep.vpc_id}")
        actions.append(Action(kind="add_route_tables", resource_id=ep.id, params={"route_table_ids": missing},
                              before={"route_table_ids": current},
                              after={"route_table_ids": sorted({*current, *missing})},
                              summary=f"associate {ep.id} with {', '.join(missing)}"))
    if blackholed:
        problems.append(f"the {ep.service_short_name} route of {ep.id} is a blackhole in {', '.join(blackholed)}")
        actions.append(Action(kind="reassociate_route_tables", resource_id=ep.id,
                              params={"route_table_ids": blackholed},
                              before={"route_table_ids": current, "blackholed_route_tables": blackholed},
                              after={"route_table_ids": current},
                              summary=f"re-associate {ep.id} with {', '.join(blackholed)}"))
    if conflicts:
        problems.append("prefix-list route(s) go elsewhere: " + "; ".join(f"{rt}: {r}" for rt, r in conflicts.items())
                        + " (vpce-guard never rewrites routes: remove or fix them, then the endpoint is associated)")
    if not actions:
        details["unfixable"] = "; ".join(problems)
    return Finding(**base, status=Status.NON_COMPLIANT, actions=tuple(actions), details=details,
                   reason="; ".join(problems))


def _service_route(rt: RouteTable, prefix_lists: set[str]) -> Route | None:
    return next((r for r in rt.routes if r.destination in prefix_lists), None)
