"""The rule registry: every rule is a pure function `(Snapshot, RuleContext) -> [Finding]` in its own module.

Adding a rule is one module that calls `@register`; the pipeline, the planner and the ledger need no change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from .. import profiles
from ..config import Perimeter, aws_owned_resources_in
from ..models import Finding, Snapshot, Vpc

if TYPE_CHECKING:
    from ..config import Settings

RuleFn = Callable[[Snapshot, "RuleContext"], list[Finding]]

#: Services whose endpoints get the resource perimeter in `identity+resource` mode. Their AWS-owned resources
#: can be named as S3 ARNs (AwsOwnedResourceArns) or they need none (DynamoDB: AWS's service-specific guidance
#: lists no consideration for a resource perimeter on its endpoints). Other services' endpoints need AWS-owned
#: resources S3 ARNs cannot name (SSM documents and parameters, Amazon's AMIs, Lambda layers, ECR repositories in
#: AWS accounts; aws-samples/data-perimeter-policy-examples, vpc_endpoint_policies/), so they keep the identity
#: perimeter only (docs/endpoint-services.md).
RESOURCE_PERIMETER_SERVICES = frozenset({"s3", "dynamodb"})

#: Parts of a snapshot beyond the endpoints themselves that a rule may read; inventory.py reads only the parts
#: some active rule declares (each costs AWS calls: DescribeRouteTables, DescribeVpcs, two DescribeVpcAttribute
#: per VPC, DescribeVpcEndpointServices, DescribeSubnets, DescribeSecurityGroups, DescribePrefixLists). A rule
#: that declares nothing is given everything. `vpc_endpoints`: a VPC one of whose endpoints is being deleted
#: is read whole (its other endpoints), for rules that judge what a VPC lacks. `service_configurations`: the
#: endpoint services this account provides with their allowed principals (DescribeVpcEndpointServiceConfigurations,
#: one DescribeVpcEndpointServicePermissions per service); `service_connections`: who is connected to them
#: (DescribeVpcEndpointConnections).
SNAPSHOT_PARTS = frozenset({"route_tables", "vpcs", "vpc_dns", "endpoint_services", "subnets", "security_groups",
                            "prefix_lists", "vpc_endpoints", "service_configurations", "service_connections"})


@dataclass(frozen=True)
class RuleContext:
    """Configuration the rules read (never AWS): allowed organizations and opt-outs.

    Kept apart from `Settings` on purpose: rules are pure functions tested on hand-built contexts (Settings
    needs a ledger table and validates a whole function environment), and a context holds resolved values
    (the organization ids looked up in AWS, the parsed profile catalogue) with defaults of its own (no
    AWS-owned exemption unless asked). Its fields are not copied one by one: `from_settings` takes every
    field Settings has under the same name, so a new setting for the rules is one field here and one there.
    """

    allowed_org_ids: frozenset[str]
    org_account_ids: frozenset[str] = frozenset()
    exclude_tag_key: str = "vpce-guard:exclude"
    exclude_tag_value: str = "true"
    #: AWS-owned S3 resource ARN patterns (``<region>`` placeholder allowed) outside the org perimeter on S3
    #: endpoints; empty (the default here, unlike Settings): no exemption.
    aws_owned_resource_arns: tuple[str, ...] = ()
    #: Endpoint profiles (shipped + custom), the default selection, and the VPC tag that overrides it.
    profiles: Mapping[str, profiles.Profile] = field(default_factory=lambda: dict(profiles.SHIPPED))
    default_profiles: tuple[str, ...] = ()
    profiles_tag_key: str = "vpce-guard:profiles"
    #: Opt-in fixes (off by default): create missing required endpoints; add the 443 rule to endpoint groups.
    create_missing_endpoints: bool = False
    add_endpoint_ingress: bool = False
    #: Sources interface endpoints must accept HTTPS from (both empty: the CIDRs of the endpoint's VPC).
    endpoint_ingress_cidrs: tuple[str, ...] = ()
    endpoint_ingress_source_groups: tuple[str, ...] = ()
    #: What endpoint policies are confined to: principals (identity), and resources too (identity+resource).
    perimeter: Perimeter = Perimeter.IDENTITY
    #: Endpoint services: opt-in fixes (remove outside principals, reject outside connection requests) and
    #: the partners outside the organization that may be allowed (account ids or IAM principal ARNs).
    remove_outside_principals: bool = False
    reject_outside_connections: bool = False
    endpoint_service_partners: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, *, allowed_org_ids: frozenset[str]) -> RuleContext:
        """The context of a run: every field Settings has by the same name, plus what is resolved for the run
        (the allowed organizations; `org_account_ids` as a set; the profile catalogue, parsed)."""
        same = {f.name: getattr(settings, f.name) for f in fields(cls) if f.name in type(settings).model_fields}
        return cls(**{**same, "allowed_org_ids": allowed_org_ids,
                      "org_account_ids": frozenset(settings.org_account_ids), "profiles": settings.profile_catalogue()})

    def excluded(self, tags: dict[str, str]) -> bool:
        return tags.get(self.exclude_tag_key, "").strip().lower() == self.exclude_tag_value

    def resource_perimeter_for(self, service_short_name: str) -> bool:
        """Does the resource perimeter apply to endpoints of this service (`s3`, `dynamodb`, …)?"""
        return (self.perimeter is Perimeter.IDENTITY_AND_RESOURCE
                and service_short_name in RESOURCE_PERIMETER_SERVICES)

    def aws_owned_resources(self, region: str) -> tuple[str, ...]:
        """The exempt resource ARNs of one region's S3 (placeholders filled in)."""
        return aws_owned_resources_in(self.aws_owned_resource_arns, region)

    def profiles_of(self, vpc: Vpc) -> tuple[list[profiles.Profile], list[str], str]:
        """The profiles a VPC must satisfy, the names that match no profile, and where the names came from."""
        names, source = profiles.selected(vpc.tags, self.default_profiles, self.profiles_tag_key)
        return ([self.profiles[n] for n in names if n in self.profiles],
                [n for n in names if n not in self.profiles], source)

    def private_dns_required(self, vpc: Vpc, service_short_name: str) -> list[str]:
        """Names of the VPC's profiles that require private DNS on this service's interface endpoint."""
        known, _, _ = self.profiles_of(vpc)
        return [p.name for p in known
                if any(r.private_dns and r.service == service_short_name for r in p.endpoints)]


#: Severity labels a rule may declare (ASFF's Severity.Label values; OCSF maps each to a severity_id).
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
#: What a rule that declares none gets.
DEFAULT_SEVERITY = "MEDIUM"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    evaluate: RuleFn
    fix_by_default: bool = True
    doc: str = ""
    triggers: tuple[str, ...] = field(default=())
    #: Snapshot parts the rule reads (see SNAPSHOT_PARTS); None: all of them.
    reads: frozenset[str] | None = None
    #: How bad a non-compliant finding is (an ASFF Severity.Label; docs/findings.md lists each rule's).
    severity: str = DEFAULT_SEVERITY


REGISTRY: dict[str, Rule] = {}


def register(rule_id: str, title: str, *, triggers: Iterable[str] = (), fix_by_default: bool = True,
             reads: Iterable[str] | None = None, severity: str = DEFAULT_SEVERITY) -> Callable[[RuleFn], RuleFn]:
    """Register a rule. `reads` names the snapshot parts it needs (omit it and the rule gets all of them);
    `severity` says how bad its non-compliant findings are (one of SEVERITIES)."""
    declared = None if reads is None else frozenset(reads)
    if declared is not None and not declared <= SNAPSHOT_PARTS:
        raise ValueError(f"rule {rule_id!r} reads unknown snapshot parts {sorted(declared - SNAPSHOT_PARTS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"rule {rule_id!r}: severity {severity!r} is not one of {SEVERITIES}")

    def deco(fn: RuleFn) -> RuleFn:
        if rule_id in REGISTRY:
            raise ValueError(f"rule {rule_id!r} registered twice")
        REGISTRY[rule_id] = Rule(rule_id, title, fn, fix_by_default, (fn.__doc__ or "").strip(), tuple(triggers),
                                 declared, severity)
        return fn

    return deco


def all_rules() -> list[Rule]:
    """Every rule, in a stable order (the order fixes are applied within one resource)."""
    # Registration side effect. The order does not matter for correctness: every finding carries the actions
    # its fix needs, in order (VPC DNS before private DNS or before creating an endpoint with private DNS),
    # and remediate.py performs a write another finding already made in the same run only once.
    from . import (  # noqa: F401
        endpoint_policy,
        endpoint_service_acceptance,
        endpoint_service_accepted_connections,
        endpoint_service_allowed_principals,
        endpoint_service_pending_connections,
        gateway_dns_support,
        gateway_route_tables,
        interface_endpoint_ingress,
        interface_endpoint_multi_az,
        private_dns_vpc_dns,
        vpc_required_endpoints,
    )

    return list(REGISTRY.values())


def reads_of(rules: Iterable[Rule]) -> frozenset[str]:
    """The snapshot parts these rules need together (what inventory.take_snapshot must read)."""
    out: set[str] = set()
    for rule in rules:
        out |= SNAPSHOT_PARTS if rule.reads is None else rule.reads
    return frozenset(out)


def evaluate_all(snapshot: Snapshot, ctx: RuleContext, rules: Iterable[Rule] | None = None) -> list[Finding]:
    """Every rule's findings. A rule that raises on one resource costs that resource its verdict, never its
    neighbours theirs (`isolate`)."""
    findings: list[Finding] = []
    for rule in all_rules() if rules is None else rules:
        try:
            findings += rule.evaluate(snapshot, ctx)
        except Exception as exc:  # any bug or unreadable input of one resource: isolate it
            findings += isolate(rule, snapshot, ctx, exc)
    return findings


def isolate(rule: Rule, snapshot: Snapshot, ctx: RuleContext, error: Exception) -> list[Finding]:
    """A rule raised on the snapshot: find the resources it raises on, record them `failed` with the error, and
    keep every other resource's verdict.

    The rule is run again on narrower snapshots: one per VPC (its endpoints and route tables, as the whole
    snapshot has them), then, in a VPC where it still raises, one per endpoint (without the VPC-wide view, so
    rules that judge what a VPC lacks say nothing there this time; the next run does). What still raises is
    `failed`; a rule that raises with no VPC or endpoint service in view is one `failed` finding about the
    account-region. Endpoint services are judged one by one, apart from the VPCs (they belong to the account)."""
    from ..models import Status

    def failed(resource_id: str, resource_type: str, vpc_id: str | None, exc: BaseException) -> Finding:
        return Finding(rule_id=rule.id, resource_id=resource_id, resource_type=resource_type, vpc_id=vpc_id,
                       status=Status.FAILED, reason=f"could not evaluate: {type(exc).__name__}: {exc}"[:1000],
                       details={"error": type(exc).__name__})

    vpc_ids = sorted({*snapshot.vpcs, *(e.vpc_id for e in snapshot.endpoints.values() if e.vpc_id)})
    services = snapshot.service_configurations
    if not vpc_ids and not services:
        return [failed(f"{snapshot.account}/{snapshot.region}", "account-region", None, error)]
    out: list[Finding] = []
    # Endpoint services belong to the account, not to a VPC: one part each, without the VPCs.
    for service_id, service in services.items():
        alone = snapshot.model_copy(update={"endpoints": {}, "vpcs": {}, "route_tables": {},
                                            "vpcs_with_all_endpoints": frozenset(),
                                            "service_configurations": {service_id: service}})
        try:
            out += [f for f in rule.evaluate(alone, ctx) if f.resource_id == service_id]
        except Exception as exc:
            out.append(failed(service_id, "vpc-endpoint-service", None, exc))
    for vpc_id in vpc_ids:
        endpoints = {i: e for i, e in snapshot.endpoints.items() if e.vpc_id == vpc_id}
        part = snapshot.model_copy(update={
            "endpoints": endpoints, "vpcs": {k: v for k, v in snapshot.vpcs.items() if k == vpc_id},
            "route_tables": {i: t for i, t in snapshot.route_tables.items() if t.vpc_id == vpc_id},
            "vpcs_with_all_endpoints": snapshot.vpcs_with_all_endpoints & {vpc_id},
            "service_configurations": {}})
        try:
            out += rule.evaluate(part, ctx)
            continue
        except Exception as exc:
            vpc_error: Exception = exc
        if not endpoints:
            out.append(failed(vpc_id, "vpc", vpc_id, vpc_error))
            continue
        for endpoint_id, endpoint in endpoints.items():
            one = part.model_copy(update={"endpoints": {endpoint_id: endpoint},
                                          "vpcs_with_all_endpoints": frozenset()})
            try:
                out += [f for f in rule.evaluate(one, ctx) if f.resource_id == endpoint_id]
            except Exception as exc:
                out.append(failed(endpoint_id, "vpc-endpoint", vpc_id, exc))
    return out
