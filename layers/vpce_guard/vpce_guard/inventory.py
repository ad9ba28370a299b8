"""Reads: turn Targets into a Snapshot with as few AWS calls as the question allows.

Every read is batched (ids or filters, never one call per resource) and paginated, so the cost of an
event or a sweep grows with the number of result pages, not with the number of resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from .aws import AwsContext
from .models import Endpoint, Route, RouteTable, Snapshot, Targets, Vpc

#: EC2 accepts at most 200 values per filter / ids per call.
CHUNK = 200

#: Services whose endpoints we know support policies without asking (gateway endpoints).
_POLICY_SUPPORT_CACHE: dict[tuple[str, str], bool] = {}


def _chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(result_key, [])


def _tags(raw: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in raw or []}


def _is_not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code", "").endswith(".NotFound")


def endpoint_from_api(raw: dict[str, Any]) -> Endpoint:
    return Endpoint(
        id=raw["VpcEndpointId"],
        vpc_id=raw.get("VpcId", ""),
        type=raw.get("VpcEndpointType", "Gateway"),
        service_name=raw.get("ServiceName", ""),
        state=str(raw.get("State", "")).lower(),
        owner_id=raw.get("OwnerId"),
        policy_document=raw.get("PolicyDocument"),
        route_table_ids=tuple(raw.get("RouteTableIds") or ()),
        subnet_ids=tuple(raw.get("SubnetIds") or ()),
        security_group_ids=tuple(g["GroupId"] for g in raw.get("Groups") or ()),
        private_dns_enabled=bool(raw.get("PrivateDnsEnabled", False)),
        tags=_tags(raw.get("Tags")),
    )


def route_table_from_api(raw: dict[str, Any]) -> RouteTable:
    assocs = raw.get("Associations") or []
    return RouteTable(
        id=raw["RouteTableId"],
        vpc_id=raw.get("VpcId", ""),
        main=any(a.get("Main") for a in assocs),
        subnet_ids=tuple(a["SubnetId"] for a in assocs if a.get("SubnetId")),
        routes=tuple(
            Route(
                destination=r.get("DestinationCidrBlock")
                or r.get("DestinationIpv6CidrBlock")
                or r.get("DestinationPrefixListId"),
                gateway_id=r.get("GatewayId"),
                state=r.get("State"),
                origin=r.get("Origin"),
            )
            for r in raw.get("Routes") or []
        ),
        tags=_tags(raw.get("Tags")),
    )


class Inventory:
    """Reads one account-region through an `AwsContext`."""

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx
        self.ec2 = ctx.client("ec2")

    # -- endpoints -------------------------------------------------------------------------------------
    def endpoints_by_id(self, ids: Iterable[str]) -> tuple[list[Endpoint], list[str]]:
        """Named endpoints; ids that no longer exist come back in the second list (not an error)."""
        found: list[Endpoint] = []
        missing: list[str] = []
        for batch in _chunks(sorted(set(ids))):
            try:
                found += [endpoint_from_api(e) for e in _paginate(
                    self.ec2, "describe_vpc_endpoints", "VpcEndpoints", VpcEndpointIds=batch)]
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
                # One unknown id fails the whole call: fall back to one call per id for this (rare) batch.
                for one in batch:
                    try:
                        found += [endpoint_from_api(e) for e in _paginate(
                            self.ec2, "describe_vpc_endpoints", "VpcEndpoints", VpcEndpointIds=[one])]
                    except ClientError as inner:
                        if not _is_not_found(inner):
                            raise
                        missing.append(one)
        return found, missing

    def endpoints_in_vpcs(self, vpc_ids: Iterable[str] | None, endpoint_type: str | None = None) -> list[Endpoint]:
        """Endpoints of the given VPCs (None: of the whole account-region)."""
        filters: list[dict[str, Any]] = []
        if endpoint_type:
            filters.append({"Name": "vpc-endpoint-type", "Values": [endpoint_type]})
        if vpc_ids is None:
            return [endpoint_from_api(e) for e in _paginate(
                self.ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=filters)]
        out: list[Endpoint] = []
        for batch in _chunks(sorted(set(vpc_ids))):
            out += [endpoint_from_api(e) for e in _paginate(
                self.ec2, "describe_vpc_endpoints", "VpcEndpoints",
                Filters=[{"Name": "vpc-id", "Values": batch}, *filters])]
        return out

    # -- route tables ----------------------------------------------------------------------------------
    def route_tables(self, *, vpc_ids: Iterable[str] | None = None, ids: Iterable[str] = (),
                     filters: list[dict[str, Any]] | None = None) -> tuple[list[RouteTable], list[str]]:
        out: list[RouteTable] = []
        missing: list[str] = []
        if filters:
            out += [route_table_from_api(r) for r in _paginate(
                self.ec2, "describe_route_tables", "RouteTables", Filters=filters)]
        for batch in _chunks(sorted(set(ids))):
            try:
                out += [route_table_from_api(r) for r in _paginate(
                    self.ec2, "describe_route_tables", "RouteTables", RouteTableIds=batch)]
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
                for one in batch:
                    try:
                        out += [route_table_from_api(r) for r in _paginate(
                            self.ec2, "describe_route_tables", "RouteTables", RouteTableIds=[one])]
                    except ClientError as inner:
                        if not _is_not_found(inner):
                            raise
                        missing.append(one)
        if vpc_ids is None and not ids and not filters:
            out += [route_table_from_api(r) for r in _paginate(self.ec2, "describe_route_tables", "RouteTables")]
        elif vpc_ids is not None:
            for batch in _chunks(sorted(set(vpc_ids))):
                out += [route_table_from_api(r) for r in _paginate(
                    self.ec2, "describe_route_tables", "RouteTables",
                    Filters=[{"Name": "vpc-id", "Values": batch}])]
        return list({rt.id: rt for rt in out}.values()), missing

    # -- VPCs ------------------------------------------------------------------------------------------
    def vpcs(self, vpc_ids: Iterable[str] | None, *, with_dns: bool = True,
             dns_for: set[str] | None = None) -> dict[str, Vpc]:
        """VPCs by id (None: all of the region); DNS attributes of those in `dns_for` (None: of all)."""
        raw: list[dict[str, Any]] = []
        if vpc_ids is None:
            raw = list(_paginate(self.ec2, "describe_vpcs", "Vpcs"))
        else:
            for batch in _chunks(sorted(set(vpc_ids))):
                try:
                    raw += list(_paginate(self.ec2, "describe_vpcs", "Vpcs", VpcIds=batch))
                except ClientError as exc:
                    if not _is_not_found(exc):
                        raise
                    raw += list(_paginate(self.ec2, "describe_vpcs", "Vpcs",
                                          Filters=[{"Name": "vpc-id", "Values": batch}]))
        out: dict[str, Vpc] = {}
        for v in raw:
            cidrs = tuple(
                a["CidrBlock"] for a in v.get("CidrBlockAssociationSet") or []
                if a.get("CidrBlockState", {}).get("State", "associated") == "associated"
            ) or ((v["CidrBlock"],) if v.get("CidrBlock") else ())
            dns_support = dns_hostnames = None
            if with_dns and (dns_for is None or v["VpcId"] in dns_for):
                dns_support = self._vpc_attribute(v["VpcId"], "enableDnsSupport")
                dns_hostnames = self._vpc_attribute(v["VpcId"], "enableDnsHostnames")
            out[v["VpcId"]] = Vpc(
                id=v["VpcId"], owner_id=v.get("OwnerId"), cidrs=cidrs,
                dns_support=dns_support, dns_hostnames=dns_hostnames, tags=_tags(v.get("Tags")),
            )
        return out

    def vpc_dns(self, vpc_id: str) -> Vpc:
        """A VPC known only by its DNS attributes (when no rule needs DescribeVpcs)."""
        return Vpc(id=vpc_id, dns_support=self._vpc_attribute(vpc_id, "enableDnsSupport"),
                   dns_hostnames=self._vpc_attribute(vpc_id, "enableDnsHostnames"))

    def _vpc_attribute(self, vpc_id: str, attribute: str) -> bool:
        resp = self.ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        key = attribute[0].upper() + attribute[1:]
        return bool(resp.get(key, {}).get("Value", False))

    # -- subnets, security groups (used to find the VPC an event is about) ---------------------------------
    def vpcs_of_subnets(self, subnet_ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for batch in _chunks(sorted(set(subnet_ids))):
            try:
                out |= {s["VpcId"] for s in _paginate(self.ec2, "describe_subnets", "Subnets", SubnetIds=batch)}
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
        return out

    def vpcs_of_security_groups(self, group_ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for batch in _chunks(sorted(set(group_ids))):
            try:
                out |= {g["VpcId"] for g in _paginate(
                    self.ec2, "describe_security_groups", "SecurityGroups", GroupIds=batch) if g.get("VpcId")}
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
        return out

    # -- endpoint services -----------------------------------------------------------------------------
    def policy_unsupported(self, endpoints: Iterable[Endpoint]) -> frozenset[str]:
        """Service names (of interface endpoints) whose endpoints cannot carry a policy.

        Gateway endpoints (S3, DynamoDB) always support policies and Gateway Load Balancer endpoints never
        do, so only the other interface services are asked about, once per region per cold start.
        """
        region = self.ctx.region
        unknown = sorted({
            e.service_name for e in endpoints
            if e.type == "Interface" and (region, e.service_name) not in _POLICY_SUPPORT_CACHE
        })
        for batch in _chunks(unknown):
            try:
                for page in self.ec2.get_paginator("describe_vpc_endpoint_services").paginate(ServiceNames=batch):
                    for detail in page.get("ServiceDetails", []):
                        _POLICY_SUPPORT_CACHE[(region, detail["ServiceName"])] = bool(
                            detail.get("VpcEndpointPolicySupported", True))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvalidServiceName":
                    raise
        return frozenset(
            e.service_name for e in endpoints
            if e.type in ("GatewayLoadBalancer", "Resource", "ServiceNetwork")
            or _POLICY_SUPPORT_CACHE.get((region, e.service_name)) is False
        )


#: Endpoint states after which an endpoint no longer touches its VPC (it has no routes, policy or DNS left).
GONE_STATES = frozenset({"deleted", "deleting", "rejected", "failed", "expired"})
#: Every snapshot part (see rules.SNAPSHOT_PARTS): what a caller that does not say gets.
ALL_PARTS = frozenset({"route_tables", "vpcs", "vpc_dns", "endpoint_services"})


def take_snapshot(ctx: AwsContext, targets: Targets, reads: frozenset[str] | None = None) -> Snapshot:
    """Read what the rules need for these targets: endpoints in focus, their VPCs and route tables.

    `reads` names the parts the active rules need (`rules.reads_of`); parts nobody needs are not read, since
    each costs calls (VPC DNS attributes cost two per VPC: there is no batch API for them). DNS attributes are
    read only for VPCs that hold a live endpoint: a VPC without one has nothing for an endpoint rule to check.
    """
    parts = ALL_PARTS if reads is None else reads
    inv = Inventory(ctx)
    endpoints: dict[str, Endpoint] = {}
    missing: list[str] = []
    route_tables: dict[str, RouteTable] = {}

    if targets.everything:
        # The two region-wide listings do not depend on each other: read them side by side (one page of
        # each in flight; boto3 clients are thread-safe), which halves their latency in a sweep.
        with ThreadPoolExecutor(max_workers=2) as pool:
            listed_rts = pool.submit(inv.route_tables) if "route_tables" in parts else None
            endpoints = {e.id: e for e in inv.endpoints_in_vpcs(None)}
            if listed_rts is not None:
                route_tables = {rt.id: rt for rt in listed_rts.result()[0]}
        return Snapshot(
            account=targets.account, region=targets.region, endpoints=endpoints,
            vpcs=_read_vpcs(inv, None, endpoints.values(), parts), route_tables=route_tables,
            policy_unsupported_services=_policy_unsupported(inv, endpoints.values(), parts),
        )

    # 1. Find the VPCs the event is about. An endpoint that is gone no longer concerns its VPC.
    vpc_ids: set[str] = set(targets.vpc_ids)
    if targets.endpoint_ids:
        found, gone = inv.endpoints_by_id(targets.endpoint_ids)
        endpoints.update({e.id: e for e in found})
        missing += gone
        vpc_ids |= {e.vpc_id for e in found if e.vpc_id and e.state not in GONE_STATES}
    named_rts: list[RouteTable] = []
    # A route table named together with its VPC (CreateRouteTable) comes with the VPC's listing below.
    rts_with_vpc = bool(targets.vpc_ids)
    if targets.route_table_ids and not rts_with_vpc:
        named_rts, gone = inv.route_tables(ids=targets.route_table_ids)
        missing += gone
    # An association only locates a VPC; a named route table already did (both are in the same VPC).
    if targets.association_ids and not named_rts:
        assoc_rts, _ = inv.route_tables(filters=[
            {"Name": "association.route-table-association-id", "Values": list(targets.association_ids)}])
        named_rts += assoc_rts
    vpc_ids |= {rt.vpc_id for rt in named_rts}
    if targets.subnet_ids and not vpc_ids:
        vpc_ids |= inv.vpcs_of_subnets(targets.subnet_ids)
    if targets.security_group_ids:
        vpc_ids |= inv.vpcs_of_security_groups(targets.security_group_ids)

    # 2. Route-table events concern every gateway endpoint of the VPC; VPC and security-group events every
    #    endpoint. An event that names its endpoints (CreateVpcEndpoint also names the VPC) concerns those.
    route_or_subnet_event = bool(targets.route_table_ids or targets.association_ids or targets.subnet_ids)
    vpc_event = bool(targets.security_group_ids) or (bool(targets.vpc_ids) and not (
        targets.endpoint_ids and endpoints) and not route_or_subnet_event)
    if vpc_ids and (route_or_subnet_event or vpc_event):
        more = inv.endpoints_in_vpcs(vpc_ids, endpoint_type=None if vpc_event else "Gateway")
        endpoints.update({e.id: e for e in more if e.id not in endpoints})

    # 3. Their route tables and VPC attributes, in one batch each.
    if vpc_ids and "route_tables" in parts:
        rts, _ = inv.route_tables(vpc_ids=vpc_ids)
        route_tables = {rt.id: rt for rt in rts}
        if rts_with_vpc:
            missing += [i for i in targets.route_table_ids if i not in route_tables]
    return Snapshot(
        account=targets.account, region=targets.region, endpoints=endpoints,
        vpcs=_read_vpcs(inv, vpc_ids, endpoints.values(), parts) if vpc_ids else {}, route_tables=route_tables,
        policy_unsupported_services=_policy_unsupported(inv, endpoints.values(), parts),
        missing_ids=tuple(missing),
    )


def _read_vpcs(inv: Inventory, vpc_ids: set[str] | None, endpoints: Iterable[Endpoint],
               parts: frozenset[str]) -> dict[str, Vpc]:
    """VPCs (DescribeVpcs) and/or their DNS attributes, as far as `parts` asks for them."""
    live = {e.vpc_id for e in endpoints if e.vpc_id and e.state not in GONE_STATES}
    dns_for = live if vpc_ids is None else live & vpc_ids
    if "vpcs" in parts:
        return inv.vpcs(vpc_ids, with_dns="vpc_dns" in parts, dns_for=dns_for)
    if "vpc_dns" in parts:
        return {v: inv.vpc_dns(v) for v in sorted(dns_for)}
    return {}


def _policy_unsupported(inv: Inventory, endpoints: Iterable[Endpoint], parts: frozenset[str]) -> frozenset[str]:
    return inv.policy_unsupported(endpoints) if "endpoint_services" in parts else frozenset()
