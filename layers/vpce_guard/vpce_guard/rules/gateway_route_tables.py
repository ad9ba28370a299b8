"""Rule `gateway-endpoint-route-tables`: S3/DynamoDB gateway endpoints reach every route table of their VPC."""

from __future__ import annotations

from ..models import Action, Finding, Snapshot, Status
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
    reads=("route_tables",),
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """A subnet whose route table lacks the gateway endpoint sends S3/DynamoDB traffic over the internet or
    NAT (or nowhere). Missing route tables are added with ModifyVpcEndpoint AddRouteTableIds, never by
    writing raw routes; a route table tagged `vpce-guard:exclude=true` stays out, and associations a user
    made are never removed."""
    out: list[Finding] = []
    for ep in snapshot.endpoints.values():
        if ep.type != "Gateway" or ep.service_short_name not in GATEWAY_SERVICES:
            continue
        base = {"rule_id": RULE_ID, "resource_id": ep.id, "resource_type": "vpc-endpoint", "vpc_id": ep.vpc_id}
        if ep.state not in _ACTIVE:
            out.append(Finding(**base, status=Status.NOT_APPLICABLE, reason=f"endpoint is {ep.state}"))
            continue
        tables = snapshot.route_tables_of(ep.vpc_id)
        if not tables:
            out.append(Finding(**base, status=Status.SKIPPED, reason="route tables of the VPC were not read"))
            continue
        excluded = sorted(rt.id for rt in tables if ctx.excluded(rt.tags))
        required = sorted(rt.id for rt in tables if not ctx.excluded(rt.tags))
        missing = [rt for rt in required if rt not in ep.route_table_ids]
        details = {"excluded_route_tables": excluded} if excluded else {}
        if not missing:
            out.append(Finding(**base, status=Status.COMPLIANT, details=details,
                               reason=f"associated with all {len(required)} route table(s) of {ep.vpc_id}"))
            continue
        current = sorted(ep.route_table_ids)
        action = Action(
            kind="add_route_tables",
            resource_id=ep.id,
            params={"route_table_ids": missing},
            before={"route_table_ids": current},
            after={"route_table_ids": sorted({*current, *missing})},
        )
        out.append(Finding(**base, status=Status.NON_COMPLIANT, actions=(action,), details=details,
                           reason=f"not associated with route table(s) {', '.join(missing)} of {ep.vpc_id}"))
    return out
