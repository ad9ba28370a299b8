"""Typed shapes that flow through the pipeline: trigger → targets → snapshot → findings → actions → ledger.

Everything here is plain data (pydantic models), so the rules and the planner stay pure functions
and every value that reaches DynamoDB or a log line has a known shape.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Status(StrEnum):
    """Outcome of evaluating one rule on one resource (the ledger's `status`)."""

    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    REMEDIATED = "remediated"
    DRY_RUN = "dry_run"
    FAILED = "failed"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    NOT_APPLICABLE = "not_applicable"
    EXEMPT = "exempt"
    FLAPPING = "flapping"
    #: A fix was about to be applied; written before the write and overwritten by its outcome. One that
    #: stays means the outcome could not be recorded (the evaluation after it shows the resource's state).
    PENDING = "pending"
    #: Someone else changed the resource while vpce-guard was fixing it: what AWS shows after the write is
    #: neither what was there nor what was written. Nothing of theirs was overwritten knowingly; the next
    #: event or sweep re-checks it.
    CONFLICT = "conflict"


#: Statuses that mean "this resource still needs attention" (kept on the open-findings index).
OPEN_STATUSES = frozenset({Status.NON_COMPLIANT, Status.DRY_RUN, Status.FAILED, Status.FLAPPING, Status.PENDING,
                           Status.CONFLICT})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trigger(Frozen):
    """Who or what caused an evaluation: a CloudTrail event, the sweep, or an operator."""

    source: str = "event"  # event | sweep | manual
    event_id: str | None = None
    event_name: str | None = None
    actor_arn: str | None = None
    event_time: str | None = None
    #: The IAM role behind an assumed-role caller (carries the role's path, which `actor_arn` does not).
    issuer_arn: str | None = None


class Targets(Frozen):
    """The resources an event or a sweep unit points at, in one account and region."""

    account: str
    region: str
    endpoint_ids: tuple[str, ...] = ()
    vpc_ids: tuple[str, ...] = ()
    route_table_ids: tuple[str, ...] = ()
    #: Route-table association ids (DisassociateRouteTable / ReplaceRouteTableAssociation name only these).
    association_ids: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    #: A sweep unit evaluates every endpoint of the account-region.
    everything: bool = False

    def is_empty(self) -> bool:
        return not (
            self.everything
            or self.endpoint_ids
            or self.vpc_ids
            or self.route_table_ids
            or self.association_ids
            or self.subnet_ids
            or self.security_group_ids
        )


#: Endpoint states in which an endpoint no longer serves its VPC (and cannot be changed).
GONE_ENDPOINT_STATES = frozenset({"deleted", "deleting", "rejected", "failed", "expired"})
#: States of an endpoint that exists or is coming (`pendingacceptance`: waiting for the service owner).
LIVE_ENDPOINT_STATES = frozenset({"available", "pending", "pendingacceptance", "partial"})


def resource_type_of(resource_id: str) -> str:
    """`vpce-…` → `vpc-endpoint`, `sg-…` → `security-group`, … (the ledger's resource_type)."""
    prefix = resource_id.split("-", 1)[0]
    return {"vpce": "vpc-endpoint", "rtb": "route-table", "vpc": "vpc", "subnet": "subnet",
            "rtbassoc": "route-table-association", "sg": "security-group"}.get(prefix, "resource")


class Endpoint(Frozen):
    id: str
    vpc_id: str
    type: str  # Gateway | Interface | GatewayLoadBalancer | Resource | ServiceNetwork
    service_name: str
    state: str
    owner_id: str | None = None
    policy_document: str | None = None
    route_table_ids: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    private_dns_enabled: bool = False
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def service_short_name(self) -> str:
        """`com.amazonaws.eu-west-1.s3` (or China's `cn.com.amazonaws.cn-north-1.s3`) → `s3`;
        `com.amazonaws.eu-west-1.ecr.dkr` → `ecr.dkr` (everything after the region);
        `com.amazonaws.vpce.…` (endpoint services of other accounts) stay whole."""
        parts = self.service_name.split(".")
        if parts[:1] == ["cn"]:
            parts = parts[1:]
        aws_service = len(parts) >= 4 and parts[0] == "com" and parts[1] == "amazonaws" and parts[2] != "vpce"
        return ".".join(parts[3:]) if aws_service else self.service_name


class Route(Frozen):
    destination: str | None = None  # CIDR (v4 or v6) or prefix-list id
    gateway_id: str | None = None
    #: Where the route sends traffic, whatever its kind (igw-, nat-, vpce-, tgw-, pcx-, eni-, i-, …).
    target: str | None = None
    state: str | None = None  # active | blackhole
    origin: str | None = None


class RouteTable(Frozen):
    id: str
    vpc_id: str
    main: bool = False
    subnet_ids: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)


class Vpc(Frozen):
    id: str
    owner_id: str | None = None
    cidrs: tuple[str, ...] = ()
    #: None when the attribute was not read (the rule then reads it as unknown, never as false).
    dns_support: bool | None = None
    dns_hostnames: bool | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class Subnet(Frozen):
    id: str
    vpc_id: str
    availability_zone: str | None = None
    availability_zone_id: str | None = None
    owner_id: str | None = None


class IngressRule(Frozen):
    """One inbound permission of a security group, as DescribeSecurityGroups lists it."""

    protocol: str  # "-1" (all), "tcp", "udp", "icmp", or a protocol number
    from_port: int | None = None
    to_port: int | None = None
    cidrs: tuple[str, ...] = ()
    ipv6_cidrs: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    prefix_list_ids: tuple[str, ...] = ()


class SecurityGroup(Frozen):
    id: str
    vpc_id: str | None = None
    owner_id: str | None = None
    ingress: tuple[IngressRule, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)


class Snapshot(Frozen):
    """What the rules see: configuration of one account-region, read in batches."""

    account: str
    region: str
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    vpcs: dict[str, Vpc] = Field(default_factory=dict)
    route_tables: dict[str, RouteTable] = Field(default_factory=dict)
    #: Service names known not to support endpoint policies (from DescribeVpcEndpointServices).
    policy_unsupported_services: frozenset[str] = frozenset()
    #: Ids the event named that no longer exist (deleted between the event and the read).
    missing_ids: tuple[str, ...] = ()
    #: Subnets and security groups of the interface endpoints in the snapshot (one batched read each).
    subnets: dict[str, Subnet] = Field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = Field(default_factory=dict)
    #: AWS-managed prefix lists: id → name (`com.amazonaws.<region>.s3`), to recognise gateway endpoint routes.
    prefix_lists: dict[str, str] = Field(default_factory=dict)
    #: VPCs whose endpoints were ALL read (VPC events, deletions, sweeps). Rules that judge a VPC by what it
    #: lacks (a required endpoint, "no endpoint needs DNS") only conclude for these; an event about one
    #: endpoint reads that endpoint only.
    vpcs_with_all_endpoints: frozenset[str] = frozenset()

    #: Route tables and endpoints grouped by VPC, with the mapping each grouping was built from.
    _by_vpc: dict[str, tuple[object, dict[str | None, list[Any]]]] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Equal configuration is equal, whatever groupings either has built."""
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # dict fields: a snapshot is not hashable

    def route_tables_of(self, vpc_id: str) -> list[RouteTable]:
        return list(self._grouped("route_tables").get(vpc_id, ()))

    def endpoints_of(self, vpc_id: str) -> list[Endpoint]:
        return list(self._grouped("endpoints").get(vpc_id, ()))

    def _grouped(self, field: str) -> dict[str | None, list[Any]]:
        """A field's items grouped by VPC, built once. Rules ask per VPC and per endpoint; scanning every item
        each time made a sweep quadratic in its size. Rebuilt if the field was replaced (model_copy)."""
        source = getattr(self, field)
        built = self._by_vpc.get(field)
        if built is None or built[0] is not source:
            groups: dict[str | None, list[Any]] = {}
            for item in source.values():
                groups.setdefault(item.vpc_id, []).append(item)
            built = (source, groups)
            self._by_vpc[field] = built
        return built[1]


class Action(Frozen):
    """One AWS write, as data. `remediate.py` is the only place that turns it into a call."""

    kind: str  # set_endpoint_policy | add_route_tables | enable_vpc_attribute | …
    resource_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    #: One line for the ledger when a fix has several steps ("enable enableDnsHostnames on vpc-…").
    summary: str = ""


class Finding(Frozen):
    """Verdict of one rule on one resource, with the fix it proposes (if any)."""

    rule_id: str
    resource_id: str
    resource_type: str  # vpc-endpoint | vpc | route-table
    vpc_id: str | None = None
    status: Status
    reason: str
    actions: tuple[Action, ...] = ()
    details: dict[str, Any] = Field(default_factory=dict)


class Outcome(Frozen):
    """A finding after planning and remediation: what the ledger records.

    A fix of several actions yields one Outcome per action (one ledger record per change), each about the
    resource that action changed; `resource_id`/`resource_type` then name it (None: the finding's).
    """

    finding: Finding
    status: Status
    reason: str
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    error: str | None = None
    #: The failure was transient (throttling, 5xx, network, stale credentials): a later attempt may succeed.
    retryable: bool = False
    resource_id: str | None = None
    resource_type: str | None = None
    #: Added to the finding's details in the ledger (e.g. {"step": 2, "steps": 3}).
    details: dict[str, Any] = Field(default_factory=dict)
    #: When what the outcome reports was read (the read-back after a write); None: when the run read the
    #: resource. The ledger orders state items by it.
    observed_at: datetime | None = None
