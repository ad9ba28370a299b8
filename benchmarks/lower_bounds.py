"""The floor each benchmark case is compared against: the calls any correct implementation must make.

Written from the problem, not from our code: what must be read to decide every finding the pipeline
reports, what must be written to fix, and what the ledger needs. Reads depend on what the registered rules
consume (`reads` declared on each rule; a rule that declares nothing is taken to read everything).

Conventions (each stated in docs/performance.md):
- warm function: the organization id and endpoint-service facts are cached per cold start, so they cost
  nothing per event; the cold start pays one DescribeOrganization (measured separately);
- a listing costs `devkit.paging.pages()` calls: the page size AWS uses (DescribeRouteTables 100,
  DescribeVpcEndpoints/DescribeVpcs 1000); an empty answer is still one call;
- VPC DNS attributes have no batch API: one DescribeVpcAttribute per VPC that holds an endpoint in scope (DNS
  support, which gateway endpoints need), and one more where an interface endpoint is (DNS hostnames, for
  private DNS);
- one ModifyVpcEndpoint can carry a new policy and added route tables, so an endpoint needs at most one write;
  after writing, one batched DescribeVpcEndpoints reads the result back (the ledger says `remediated` only for
  what AWS shows);
- the ledger orders each (resource, rule)'s current state by observation time and reports status changes, so a
  run first reads the current state of what it evaluated (100 keys per BatchGetItem) and writes state items on a
  condition: a write of up to 100 items is one TransactWriteItems; a larger one sends history 25 items per
  BatchWriteItem and state 100 per transaction. A sweep writes only what changed. A sweep of a whole
  account-region first reads its digest (one GetItem, unit_digest.py): when that vouches that nothing changed
  since the last sweep, no state item is read back and no open finding listed; otherwise it does both and
  stores a new digest (one conditional UpdateItem). Before fixing, a `pending`
  record of each fix is written ahead (so a fix whose outcome cannot be recorded is never lost:
  pipeline._record_intents);
- right before writing, what a fix changes is read again (an owner's edit since the snapshot must not be
  overwritten): one batched DescribeVpcEndpoints for endpoint fixes, one DescribeVpcAttribute per attribute to
  turn on; only where a write follows;
- safety (docs/operations.md, "Delivery, retries and failures"): an event handler that must do nothing on a
  redelivered event needs one conditional write per event to claim its id (Powertools Idempotency also stores
  the result: one more);
  fixing a resource needs its recent fixes first, one Query on its ledger partition (flap protection);
  the exemption registry is cached by a warm function, so it costs nothing per event;
- endpoint services (docs/endpoint-services.md): the services of an account-region are one listing (by id for
  an event); who may connect has no batch API (one DescribeVpcEndpointServicePermissions per service); the
  connections of every service are one listing; an account the configuration cannot place costs one
  organizations:DescribeAccount, except a member a warm function placed before (an account outside the
  organization is asked about every time: it may have joined since, and acting on a stale "outsider" would
  remove an insider). RemoveAllowedPrincipals and RejectVpcEndpointConnections take lists: one write each per
  service, whatever the number of principals or requests.
- findings leave the ledger (docs/findings.md) only when their status changes (the state read above tells
  which): a finding event per change on the hub bus (10 per PutEvents); Security Hub is off by default and
  nothing here needs a person.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from devkit.paging import pages

#: Parts of a snapshot a rule can read beyond the endpoints themselves.
ALL_READS = frozenset({"route_tables", "vpcs", "vpc_dns", "endpoint_services", "service_configurations",
                       "service_connections"})
LEDGER_BATCH = 25
#: Open state items (about 600 bytes each) in one 1 MB page of a Query.
OPEN_ITEMS_PER_PAGE = 1500


def needed_reads() -> frozenset[str]:
    """Union of what the registered rules read (a rule without a `reads` declaration reads everything)."""
    from vpce_guard.rules import all_rules

    out: set[str] = set()
    for rule in all_rules():
        declared = getattr(rule, "reads", None)
        out |= ALL_READS if declared is None else set(declared)
    return frozenset(out)


@dataclass
class Bound:
    """A lower bound, itemised by `service:Operation` so a report can show where the floor comes from."""

    calls: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def add(self, op: str, n: int, note: str = "") -> None:
        if n:
            self.calls[op] += n
            if note:
                self.notes.append(f"{op} x{n}: {note}")

    @property
    def total(self) -> int:
        return sum(self.calls.values())


#: Items per TransactWriteItems (state items are written on a condition).
LEDGER_TRANSACTION = 100


def ledger_calls(items: int) -> int:
    return math.ceil(items / LEDGER_BATCH) if items else 0


def ledger_write(b: Bound, items: int, note: str, *, state_items: int | None = None) -> None:
    """A ledger write of `items` items: one transaction up to 100, else history in batches of 25 and the
    `state_items` (default: half) in transactions of 100."""
    if not items:
        return
    if items <= LEDGER_TRANSACTION:
        b.add("dynamodb:TransactWriteItems", 1, note)
        return
    states = items // 2 if state_items is None else state_items
    b.add("dynamodb:BatchWriteItem", ledger_calls(items - states), f"{note}: history")
    b.add("dynamodb:TransactWriteItems", math.ceil(states / LEDGER_TRANSACTION), f"{note}: state items")


@dataclass(frozen=True)
class EventTruth:
    """What an event is about, from the seeded world (not from our code)."""

    #: The event names the endpoints (endpoint events) — one batched read by id.
    names_endpoints: bool
    #: The VPC is named in the event (CreateVpcEndpoint, CreateRouteTable, ModifyVpcAttribute).
    names_vpc: bool
    #: A VPC can be found from the event at all (False for a disassociation whose association is gone).
    vpc_locatable: bool
    #: Endpoints the rules must evaluate, and which of them are gateway endpoints / need a fix.
    in_scope: tuple[str, ...]
    gateway_in_scope: tuple[str, ...]
    to_fix: tuple[str, ...]
    #: Scope is every (gateway) endpoint of the VPC rather than only the named ones.
    vpc_scope: bool
    #: Interface endpoints in scope (their subnets and security groups are read: multi-AZ, HTTPS ingress).
    interface_in_scope: tuple[str, ...] = ()
    #: The event was located through its security group (that read also serves the ingress rule).
    located_by_group: bool = False
    #: VPC DNS attributes to turn on (one write and one read-back each).
    vpc_fixes: int = 0
    #: The event deleted the named endpoint: only its VPC's tags remain to read (do profiles require endpoints).
    deleted: bool = False


def event_bound(truth: EventTruth, ledger_items: int, reads: frozenset[str]) -> Bound:
    b = Bound()
    b.add("dynamodb:PutItem", 1, "claim the event id (a redelivery must do nothing)")
    if truth.names_endpoints:
        b.add("ec2:DescribeVpcEndpoints", 1, "the named endpoints (batched by id)")
    if not truth.names_vpc and not truth.names_endpoints:
        b.add("ec2:Describe(locate)", 1, "find the VPC of the named route table / association / security group")
    if not truth.vpc_locatable:
        b.add("dynamodb:BatchWriteItem", ledger_calls(ledger_items), "ledger (history only: nothing evaluated)")
        return b
    if truth.vpc_scope:
        b.add("ec2:DescribeVpcEndpoints", 1, "the endpoints of the VPC")
    if "route_tables" in reads and truth.gateway_in_scope:
        b.add("ec2:DescribeRouteTables", 1, "every route table of the VPC")
    if truth.in_scope:
        if "vpcs" in reads:
            b.add("ec2:DescribeVpcs", 1, "the VPC")
        if "vpc_dns" in reads:
            interface = bool(set(truth.in_scope) - set(truth.gateway_in_scope))
            b.add("ec2:DescribeVpcAttribute", 1 + interface,
                  "enableDnsSupport" + (", enableDnsHostnames (an interface endpoint)" if interface else ""))
        if truth.interface_in_scope and "subnets" in reads:
            b.add("ec2:DescribeSubnets", 1, "subnets of the interface endpoints (their zones)")
        if truth.interface_in_scope and "security_groups" in reads and not truth.located_by_group:
            b.add("ec2:DescribeSecurityGroups", 1, "security groups of the interface endpoints (HTTPS in)")
    elif truth.deleted and "vpc_endpoints" in reads and "vpcs" in reads:
        b.add("ec2:DescribeVpcs", 1, "the VPC's tags: whether its profiles require endpoints")
    if truth.to_fix:
        b.add("dynamodb:Query", len(truth.to_fix), "recent fixes of each endpoint to fix (flap protection)")
        b.add("ec2:DescribeVpcEndpoints", 1, "read again right before writing (an edit since must survive)")
        b.add("ec2:ModifyVpcEndpoint", len(truth.to_fix), "one write per endpoint to fix")
        b.add("ec2:DescribeVpcEndpoints", 1, "read back what was written")
    if truth.vpc_fixes:
        b.add("dynamodb:Query", 1, "recent fixes of the VPC (flap protection)")
        b.add("ec2:DescribeVpcAttribute", truth.vpc_fixes, "read again right before writing each attribute")
        b.add("ec2:ModifyVpcAttribute", truth.vpc_fixes, "one write per DNS attribute (AWS takes one a call)")
        b.add("ec2:DescribeVpcAttribute", truth.vpc_fixes, "read back each attribute written")
    if ledger_items:
        b.add("dynamodb:BatchGetItem", 1, "current state of what was evaluated (status changes, ordering)")
    if truth.to_fix or truth.vpc_fixes:
        b.add("dynamodb:TransactWriteItems", 1, "the fixes, written ahead as pending")
        b.add("events:PutEvents", 1, "finding events for the statuses that changed (10 per call)")
    ledger_write(b, ledger_items, "ledger")
    return b


@dataclass(frozen=True)
class ServiceEventTruth:
    """What an endpoint-service event is about, from the seeded world (not from our code)."""

    #: Accounts named by the service's principals or connections that only AWS Organizations can place, and that
    #: a warm function cannot have placed before (outside the organization, or never seen).
    accounts_to_place: int = 0
    #: What the enabled fixes must change: acceptance turned on, principals removed, requests rejected.
    acceptance_fix: bool = False
    principals_to_remove: int = 0
    requests_to_reject: int = 0
    #: The service no longer exists when the event is read (only the listing is needed).
    gone: bool = False


def service_event_bound(truth: ServiceEventTruth, ledger_items: int, reads: frozenset[str]) -> Bound:
    b = Bound()
    b.add("dynamodb:PutItem", 1, "claim the event id (a redelivery must do nothing)")
    if "service_configurations" in reads:
        b.add("ec2:DescribeVpcEndpointServiceConfigurations", 1, "the named service")
        if not truth.gone:
            b.add("ec2:DescribeVpcEndpointServicePermissions", 1, "who may connect to it (no batch API)")
            if "service_connections" in reads:
                b.add("ec2:DescribeVpcEndpointConnections", 1, "who asked or is connected")
            b.add("organizations:DescribeAccount", truth.accounts_to_place, "place each account nobody placed before")
    writes = {"ec2:ModifyVpcEndpointServiceConfiguration": int(truth.acceptance_fix),
              "ec2:ModifyVpcEndpointServicePermissions": int(truth.principals_to_remove > 0),
              "ec2:RejectVpcEndpointConnections": int(truth.requests_to_reject > 0)}
    if any(writes.values()):
        b.add("dynamodb:Query", 1, "recent fixes of the service (flap protection)")
        # Read again right before writing (an edit since must survive), and back after writing: each time the
        # service, and who may connect or who asked where that is what the write changes.
        for when in ("read again right before writing", "read back what was written"):
            b.add("ec2:DescribeVpcEndpointServiceConfigurations", 1, when)
            if truth.principals_to_remove:
                b.add("ec2:DescribeVpcEndpointServicePermissions", 1, f"{when}: the allowed principals")
            if truth.requests_to_reject:
                b.add("ec2:DescribeVpcEndpointConnections", 1, f"{when}: the connections")
        for op, n in writes.items():
            b.add(op, n, "one call, however many principals or requests it names")
        b.add("dynamodb:TransactWriteItems", 1, "the fixes, written ahead as pending")
        b.add("events:PutEvents", 1, "finding events for the statuses that changed (10 per call)")
    if ledger_items:
        b.add("dynamodb:BatchGetItem", 1, "current state of what was evaluated (status changes, ordering)")
    ledger_write(b, ledger_items, "ledger")
    return b


def sweep_bound(*, endpoints: int, route_tables: int, vpcs: int, vpcs_with_endpoints: int, ledger_items: int,
                reads: frozenset[str], to_fix: int = 0, vpcs_with_interface_endpoints: int | None = None,
                state_keys: int = 0, open_items: int = 0, services: int = 0, vouched: bool = False) -> Bound:
    """One account-region: every listing by pages, per-VPC attributes once, nothing per endpoint; and, for a
    ledger that records changes (`state_keys` (resource, rule) pairs evaluated), the account-region's digest,
    then, unless it vouches that nothing changed since the last sweep (`vouched`), their current state read in
    batches of 100, the open findings listed and the new digest stored."""
    b = Bound()
    b.add("dynamodb:GetItem", 1, "the account-region's digest: whether the state items must be read back")
    if not vouched:
        b.add("dynamodb:BatchGetItem", math.ceil(state_keys / 100),
              "current state of each (resource, rule) evaluated, to write only what changed")
        if state_keys:
            b.add("dynamodb:Query", 1 + open_items // OPEN_ITEMS_PER_PAGE, "the account-region's open findings "
                  "(one Query, by 1 MB pages), to close those the sweep no longer sees")
        b.add("dynamodb:UpdateItem", 1, "the new digest, on condition that nobody else wrote meanwhile")
    b.add("ec2:DescribeVpcEndpoints", pages("ec2", "DescribeVpcEndpoints", endpoints), "all endpoints, by page")
    if "service_configurations" in reads:
        b.add("ec2:DescribeVpcEndpointServiceConfigurations",
              pages("ec2", "DescribeVpcEndpointServiceConfigurations", services), "all endpoint services, by page")
        b.add("ec2:DescribeVpcEndpointServicePermissions", services, "who may connect, per service (no batch API)")
        if services and "service_connections" in reads:
            b.add("ec2:DescribeVpcEndpointConnections", 1, "the connections of every service")
    if "route_tables" in reads:
        b.add("ec2:DescribeRouteTables", pages("ec2", "DescribeRouteTables", route_tables), "all route tables")
    if "vpcs" in reads:
        b.add("ec2:DescribeVpcs", pages("ec2", "DescribeVpcs", vpcs), "all VPCs")
    if "vpc_dns" in reads:
        with_interface = vpcs_with_endpoints if vpcs_with_interface_endpoints is None else vpcs_with_interface_endpoints
        b.add("ec2:DescribeVpcAttribute", vpcs_with_endpoints + with_interface,
              "DNS support per VPC holding endpoints, hostnames per VPC holding interface endpoints (no batch API)")
    if to_fix:
        b.add("dynamodb:Query", to_fix, "recent fixes of each endpoint to fix (flap protection)")
        b.add("ec2:DescribeVpcEndpoints", math.ceil(to_fix / 200), "read again right before writing, 200 ids a call")
        b.add("ec2:ModifyVpcEndpoint", to_fix, "one write per endpoint to fix")
        b.add("ec2:DescribeVpcEndpoints", math.ceil(to_fix / 200), "read back, 200 ids per call")
        ledger_write(b, 2 * to_fix, "the fixes, written ahead as pending (history and state item each)",
                     state_items=to_fix)
        b.add("events:PutEvents", math.ceil(to_fix / 10), "a finding event per status changed, 10 per call")
    ledger_write(b, ledger_items, "ledger")
    return b
