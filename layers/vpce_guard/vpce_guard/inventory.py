"""Reads: turn Targets into a Snapshot with as few AWS calls as the question allows.

Every read is batched (ids or filters, never one call per resource) and paginated, so the cost of an
event or a sweep grows with the number of result pages, not with the number of resources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from .aws import AwsContext, side_by_side
from .models import (
    GONE_ENDPOINT_STATES,
    Endpoint,
    IngressRule,
    Route,
    RouteTable,
    SecurityGroup,
    Snapshot,
    Subnet,
    Targets,
    Vpc,
)

#: EC2 accepts at most 200 values per filter / ids per call.
CHUNK = 200

#: Services whose endpoints we know support policies without asking (gateway endpoints).
_POLICY_SUPPORT_CACHE: dict[tuple[str, str], bool] = {}
#: AWS-managed prefix lists per region (id → name); they do not change during a cold start.
_PREFIX_LIST_CACHE: dict[str, dict[str, str]] = {}

DNS_SUPPORT = "enableDnsSupport"
DNS_HOSTNAMES = "enableDnsHostnames"
_DNS_FIELDS = {DNS_SUPPORT: "dns_support", DNS_HOSTNAMES: "dns_hostnames"}

#: Route keys that name where a route sends traffic (exactly one is set on a route).
_ROUTE_TARGET_KEYS = ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId",
                      "NetworkInterfaceId", "InstanceId", "EgressOnlyInternetGatewayId", "LocalGatewayId",
                      "CarrierGatewayId", "CoreNetworkArn")


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
                target=next((r[k] for k in _ROUTE_TARGET_KEYS if r.get(k)), None),
                state=r.get("State"),
                origin=r.get("Origin"),
            )
            for r in raw.get("Routes") or []
        ),
        tags=_tags(raw.get("Tags")),
    )


def subnet_from_api(raw: dict[str, Any]) -> Subnet:
    return Subnet(id=raw["SubnetId"], vpc_id=raw.get("VpcId", ""), availability_zone=raw.get("AvailabilityZone"),
                  availability_zone_id=raw.get("AvailabilityZoneId"), owner_id=raw.get("OwnerId"))


def _port(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


def security_group_from_api(raw: dict[str, Any]) -> SecurityGroup:
    return SecurityGroup(
        id=raw["GroupId"], vpc_id=raw.get("VpcId"), owner_id=raw.get("OwnerId"), tags=_tags(raw.get("Tags")),
        ingress=tuple(
            IngressRule(
                protocol=str(p.get("IpProtocol", "-1")).lower(),
                from_port=_port(p.get("FromPort")), to_port=_port(p.get("ToPort")),
                cidrs=tuple(r["CidrIp"] for r in p.get("IpRanges") or () if r.get("CidrIp")),
                ipv6_cidrs=tuple(r["CidrIpv6"] for r in p.get("Ipv6Ranges") or () if r.get("CidrIpv6")),
                group_ids=tuple(g["GroupId"] for g in p.get("UserIdGroupPairs") or () if g.get("GroupId")),
                prefix_list_ids=tuple(x["PrefixListId"] for x in p.get("PrefixListIds") or ()
                                      if x.get("PrefixListId")),
            )
            for p in raw.get("IpPermissions") or ()
        ),
    )


class Inventory:
    """Reads one account-region through an `AwsContext`."""

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx
        self.ec2 = ctx.client("ec2")

    # -- endpoints -------------------------------------------------------------------------------------
    def endpoints_by_id(self, ids: Iterable[str]) -> tuple[list[Endpoint], list[str]]:
        """Named endpoints; ids that do not exist come back in the second list (not an error).

        One unknown id fails a whole DescribeVpcEndpoints by ids. Asking again id by id would cost a call per id
        (an event can name hundreds that never existed); instead the region's endpoints are listed once
        (paginated; deleted ones stay listed for a while) and the named ones picked from that."""
        wanted = sorted(set(ids))
        found: list[Endpoint] = []
        listing: dict[str, Endpoint] | None = None
        for batch in _chunks(wanted):
            if listing is None:
                try:
                    found += [endpoint_from_api(e) for e in _paginate(
                        self.ec2, "describe_vpc_endpoints", "VpcEndpoints", VpcEndpointIds=batch)]
                    continue
                except ClientError as exc:
                    if not _is_not_found(exc):
                        raise
                    listing = {e.id: e for e in self.endpoints_in_vpcs(None)}
            found += [listing[i] for i in batch if i in listing]
        have = {e.id for e in found}
        return found, [i for i in wanted if i not in have]

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
        if ids:
            named = self._by_ids("describe_route_tables", "RouteTables", "RouteTableIds", ids, route_table_from_api,
                                 id_filter="route-table-id")
            have = {rt.id for rt in named}
            out += named
            missing += [i for i in sorted(set(ids)) if i not in have]
        if vpc_ids is None and not ids and not filters:
            out += [route_table_from_api(r) for r in _paginate(self.ec2, "describe_route_tables", "RouteTables")]
        elif vpc_ids is not None:
            for batch in _chunks(sorted(set(vpc_ids))):
                out += [route_table_from_api(r) for r in _paginate(
                    self.ec2, "describe_route_tables", "RouteTables",
                    Filters=[{"Name": "vpc-id", "Values": batch}])]
        return list({rt.id: rt for rt in out}.values()), missing

    # -- VPCs ------------------------------------------------------------------------------------------
    def vpcs(self, vpc_ids: Iterable[str] | None) -> dict[str, Vpc]:
        """VPCs by id (None: all of the region), without their DNS attributes (`with_dns` adds those)."""
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
            out[v["VpcId"]] = Vpc(id=v["VpcId"], owner_id=v.get("OwnerId"), cidrs=cidrs, tags=_tags(v.get("Tags")))
        return out

    def with_dns(self, vpcs: dict[str, Vpc], wanted: dict[str, tuple[str, ...]]) -> dict[str, Vpc]:
        """The VPCs with the DNS attributes `wanted` (VPC id → attribute names) read; the others stay None.

        AWS has no batch form (one DescribeVpcAttribute per VPC and attribute), so this is the one read of a
        sweep that grows with the number of VPCs. The calls are independent, so they go out side by side
        (`aws.side_by_side`): a sweep waits for a fraction of their latency instead of all of it."""
        jobs = [(vpc_id, attribute) for vpc_id, attributes in sorted(wanted.items()) if vpc_id in vpcs
                for attribute in attributes]

        def read(job: tuple[str, str]) -> bool | None:
            vpc = vpcs[job[0]]
            # A participant of a shared VPC may not be allowed to read its owner's attributes: unknown.
            shared = bool(vpc.owner_id) and vpc.owner_id != self.ctx.account
            return self.vpc_attribute(vpc.id, job[1], tolerate_denied=shared)

        values = side_by_side(read, jobs)
        update: dict[str, dict[str, bool | None]] = {}
        for (vpc_id, attribute), value in zip(jobs, values, strict=True):
            update.setdefault(vpc_id, {})[_DNS_FIELDS[attribute]] = value
        return {vpc_id: vpc.model_copy(update=update[vpc_id]) if vpc_id in update else vpc
                for vpc_id, vpc in vpcs.items()}

    def vpc_attribute(self, vpc_id: str, attribute: str, *, tolerate_denied: bool = False) -> bool | None:
        """One DNS attribute (AWS has no batch form: one call per VPC and attribute). None: not readable."""
        try:
            resp = self.ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if tolerate_denied and (code.startswith("UnauthorizedOperation") or code.endswith(".NotFound")):
                return None
            raise
        key = attribute[0].upper() + attribute[1:]
        value = resp.get(key, {}).get("Value")
        return bool(value) if value is not None else None

    # -- subnets, security groups (used to find the VPC an event is about) ---------------------------------
    def vpcs_of_subnets(self, subnet_ids: Iterable[str]) -> set[str]:
        return {s.vpc_id for s in self.subnets(subnet_ids).values() if s.vpc_id}

    def subnets(self, subnet_ids: Iterable[str]) -> dict[str, Subnet]:
        """Subnets by id, one DescribeSubnets per 200 (ids that no longer exist are left out)."""
        return {s.id: s for s in self._by_ids("describe_subnets", "Subnets", "SubnetIds", subnet_ids,
                                              subnet_from_api, id_filter="subnet-id")}

    def security_groups(self, group_ids: Iterable[str]) -> dict[str, SecurityGroup]:
        """Security groups by id with their inbound rules, one DescribeSecurityGroups per 200."""
        return {g.id: g for g in self._by_ids("describe_security_groups", "SecurityGroups", "GroupIds", group_ids,
                                              security_group_from_api, id_filter="group-id")}

    def _by_ids(self, operation: str, key: str, id_param: str, ids: Iterable[str], convert: Any, *,
                id_filter: str) -> list[Any]:
        """Resources by id, 200 a call. One unknown id fails the whole call; that batch is then asked for once
        with the id filter, which leaves unknown ids out instead of failing (never one call per id)."""
        out: list[Any] = []
        for batch in _chunks(sorted(set(ids))):
            try:
                out += [convert(r) for r in _paginate(self.ec2, operation, key, **{id_param: batch})]
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
                out += [convert(r) for r in _paginate(self.ec2, operation, key,
                                                      Filters=[{"Name": id_filter, "Values": batch}])]
        return out

    def prefix_lists(self) -> dict[str, str]:
        """AWS-managed prefix lists of the region (id → name), once per region per cold start."""
        region = self.ctx.region
        if region not in _PREFIX_LIST_CACHE:
            _PREFIX_LIST_CACHE[region] = {
                p["PrefixListId"]: p.get("PrefixListName", "")
                for p in _paginate(self.ec2, "describe_prefix_lists", "PrefixLists")
            }
        return _PREFIX_LIST_CACHE[region]

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
GONE_STATES = GONE_ENDPOINT_STATES
#: Every snapshot part (see rules.SNAPSHOT_PARTS): what a caller that does not say gets.
ALL_PARTS = frozenset({"route_tables", "vpcs", "vpc_dns", "endpoint_services", "subnets", "security_groups",
                       "prefix_lists", "vpc_endpoints", "service_configurations", "service_connections"})


def take_snapshot(ctx: AwsContext, targets: Targets, reads: frozenset[str] | None = None,
                  requires_endpoints: Callable[[Vpc], bool] | None = None) -> Snapshot:
    """Read what the rules need for these targets: the endpoints (`_take_endpoint_snapshot`) and the endpoint
    services this account provides (`endpoint_services`: they belong to the account, not to a VPC)."""
    from . import endpoint_services  # it builds on this module's readers

    parts = ALL_PARTS if reads is None else reads
    if not endpoint_services.concerned(targets, parts):
        return _take_endpoint_snapshot(ctx, targets, parts, requires_endpoints)
    # Independent of the endpoints: the services are read beside them (a sweep then waits for the longer).
    with ThreadPoolExecutor(max_workers=1) as pool:
        services = pool.submit(endpoint_services.read_services, Inventory(ctx), targets, parts)
        snap = _take_endpoint_snapshot(ctx, targets, parts, requires_endpoints)
        found, missing = services.result()
    if not found and not missing:
        return snap
    return snap.model_copy(update={"service_configurations": found, "missing_ids": (*snap.missing_ids, *missing)})


def _take_endpoint_snapshot(ctx: AwsContext, targets: Targets, reads: frozenset[str] | None = None,
                            requires_endpoints: Callable[[Vpc], bool] | None = None) -> Snapshot:
    """Read what the endpoint rules need for these targets: endpoints in focus, their VPCs and route tables.

    `reads` names the parts the active rules need (`rules.reads_of`); parts nobody needs are not read, since
    each costs calls (VPC DNS attributes cost a call per VPC and attribute: there is no batch API for them).
    DNS attributes are read only where a rule can use them (see `_read_vpcs`). `requires_endpoints` names the
    VPCs that require endpoints (profiles): only those are read whole after one of their endpoints is deleted.
    """
    parts = ALL_PARTS if reads is None else reads
    inv = Inventory(ctx)
    endpoints: dict[str, Endpoint] = {}
    missing: list[str] = []
    route_tables: dict[str, RouteTable] = {}

    if targets.everything:
        # The region-wide listings do not depend on each other: read them side by side (one page of each in
        # flight; boto3 clients are thread-safe), so a sweep waits for the longest, not for their sum.
        # The DNS attributes (one call per VPC) follow once the listings are in. Sent while route tables still
        # page they saved little (about 0.05 s at 200 VPCs on moto), and a sweep's calls would no longer come in
        # the stages the organization-scale model is calibrated on (benchmarks/orgsim: listings, then DNS).
        with ThreadPoolExecutor(max_workers=3) as pool:
            listed_rts = pool.submit(inv.route_tables) if "route_tables" in parts else None
            listed_vpcs = pool.submit(inv.vpcs, None) if "vpcs" in parts else None
            endpoints = {e.id: e for e in inv.endpoints_in_vpcs(None)}
            every_vpc = listed_vpcs.result() if listed_vpcs is not None else None
            if listed_rts is not None:
                route_tables = {rt.id: rt for rt in listed_rts.result()[0]}
        vpcs = _read_vpcs(inv, None, endpoints.values(), parts, listed=every_vpc)
        return _complete(inv, Snapshot(
            account=targets.account, region=targets.region, endpoints=endpoints, vpcs=vpcs,
            route_tables=route_tables, vpcs_with_all_endpoints=frozenset(vpcs),
            policy_unsupported_services=_policy_unsupported(inv, endpoints.values(), parts),
        ), parts)

    # 1. Find the VPCs the event is about. An endpoint that is gone no longer concerns its VPC, unless a rule
    #    judges what a VPC lacks ("vpc_endpoints"): a deletion may leave it without an endpoint it requires.
    #    `requires_endpoints` says which VPCs require any (their profiles); the others need no further look.
    vpc_ids: set[str] = set(targets.vpc_ids)
    deleted_from: set[str] = set()
    known_vpcs: dict[str, Vpc] = {}
    if targets.endpoint_ids:
        found, gone = inv.endpoints_by_id(targets.endpoint_ids)
        endpoints.update({e.id: e for e in found})
        missing += gone
        vpc_ids |= {e.vpc_id for e in found if e.vpc_id and e.state not in GONE_STATES}
        if "vpc_endpoints" in parts:
            deleted_from = {e.vpc_id for e in found if e.vpc_id and e.state in GONE_STATES}
            if deleted_from and requires_endpoints is not None and "vpcs" in parts:
                known_vpcs = inv.vpcs(deleted_from)  # their tags say; read once, reused below
                deleted_from = {v for v, vpc in known_vpcs.items() if requires_endpoints(vpc)}
            vpc_ids |= deleted_from
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
    named_groups: dict[str, SecurityGroup] = {}
    if targets.security_group_ids:  # the groups themselves, not only their VPCs: same single call
        named_groups = inv.security_groups(targets.security_group_ids)
        vpc_ids |= {g.vpc_id for g in named_groups.values() if g.vpc_id}

    # 2. Route-table events concern every gateway endpoint of the VPC; VPC and security-group events every
    #    endpoint. An event that names its endpoints (CreateVpcEndpoint also names the VPC) concerns those.
    route_or_subnet_event = bool(targets.route_table_ids or targets.association_ids or targets.subnet_ids)
    vpc_event = bool(targets.security_group_ids) or (bool(targets.vpc_ids) and not (
        targets.endpoint_ids and endpoints) and not route_or_subnet_event)
    whole = (set(vpc_ids) if vpc_event else set()) | deleted_from
    if whole:
        endpoints.update({e.id: e for e in inv.endpoints_in_vpcs(whole) if e.id not in endpoints})
    if route_or_subnet_event and vpc_ids - whole:
        more = inv.endpoints_in_vpcs(vpc_ids - whole, endpoint_type="Gateway")
        endpoints.update({e.id: e for e in more if e.id not in endpoints})

    # 3. Their route tables and VPC attributes, in one batch each.
    if vpc_ids and "route_tables" in parts:
        rts, _ = inv.route_tables(vpc_ids=vpc_ids)
        route_tables = {rt.id: rt for rt in rts}
        if rts_with_vpc:
            missing += [i for i in targets.route_table_ids if i not in route_tables]
    vpcs = _read_vpcs(inv, vpc_ids, endpoints.values(), parts, known_vpcs) if vpc_ids else {}
    return _complete(inv, Snapshot(
        account=targets.account, region=targets.region, endpoints=endpoints, vpcs=vpcs, route_tables=route_tables,
        policy_unsupported_services=_policy_unsupported(inv, endpoints.values(), parts),
        missing_ids=tuple(missing), vpcs_with_all_endpoints=frozenset(whole & set(vpcs)),
    ), parts, named_groups)


def _complete(inv: Inventory, snap: Snapshot, parts: frozenset[str],
              known_groups: dict[str, SecurityGroup] | None = None) -> Snapshot:
    """Add what the network rules read about the endpoints in the snapshot, one batched call per kind and as
    far as `parts` asks: subnets and security groups of interface endpoints, and the region's managed prefix
    lists when a gateway endpoint is in view (cached per cold start)."""
    interface = [e for e in snap.endpoints.values() if e.type == "Interface" and e.state not in GONE_STATES]
    update: dict[str, Any] = {}
    subnet_ids = {s for e in interface for s in e.subnet_ids}
    if "subnets" in parts and subnet_ids:
        update["subnets"] = inv.subnets(subnet_ids)
    if "security_groups" in parts:
        known = known_groups or {}
        wanted = {g for e in interface for g in e.security_group_ids} - set(known)
        update["security_groups"] = {**known, **(inv.security_groups(wanted) if wanted else {})}
    if "prefix_lists" in parts and any(e.type == "Gateway" for e in snap.endpoints.values()):
        update["prefix_lists"] = inv.prefix_lists()
    return snap.model_copy(update=update) if update else snap


def _read_vpcs(inv: Inventory, vpc_ids: set[str] | None, endpoints: Iterable[Endpoint],
               parts: frozenset[str], known: dict[str, Vpc] | None = None,
               *, listed: dict[str, Vpc] | None = None) -> dict[str, Vpc]:
    """VPCs (DescribeVpcs) and/or their DNS attributes, as far as `parts` asks for them (`listed`: every VPC
    of the region, read already).

    Each attribute costs a call per VPC, so only what a rule can use is read: DNS support in every VPC holding
    a live endpoint (gateway endpoints resolve through it), DNS hostnames only where a live interface endpoint
    is (private DNS needs both; a required interface endpoint is only created next to an existing one, whose
    subnets it takes). A VPC without a live endpoint has nothing for an endpoint rule to check."""
    live = [e for e in endpoints if e.vpc_id and e.state not in GONE_STATES
            and (vpc_ids is None or e.vpc_id in vpc_ids)]
    support_for = {e.vpc_id for e in live if e.vpc_id}
    both_for = {e.vpc_id for e in live if e.vpc_id and e.type == "Interface"}
    if "vpcs" in parts and listed is not None:
        vpcs = listed
        if "vpc_dns" not in parts:
            return vpcs
    elif "vpcs" in parts:
        known = {v: vpc for v, vpc in (known or {}).items() if vpc_ids is None or v in vpc_ids}
        unread = None if vpc_ids is None else vpc_ids - set(known)
        vpcs = {**known, **(inv.vpcs(unread) if unread is None or unread else {})}
        if "vpc_dns" not in parts:
            return vpcs
    elif "vpc_dns" in parts:
        vpcs = {v: Vpc(id=v) for v in sorted(support_for)}
    else:
        return {}
    wanted = {v: (DNS_SUPPORT, DNS_HOSTNAMES) if v in both_for else (DNS_SUPPORT,) for v in support_for}
    return inv.with_dns(vpcs, wanted)


def _policy_unsupported(inv: Inventory, endpoints: Iterable[Endpoint], parts: frozenset[str]) -> frozenset[str]:
    """Services without policy support among the live endpoints (a deleted endpoint's policy is nobody's concern)."""
    if "endpoint_services" not in parts:
        return frozenset()
    return inv.policy_unsupported([e for e in endpoints if e.state not in GONE_STATES])
