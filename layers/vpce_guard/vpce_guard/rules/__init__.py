"""The rule registry: every rule is a pure function `(Snapshot, RuleContext) -> [Finding]` in its own module.

Adding a rule is one module that calls `@register`; the pipeline, the planner and the ledger need no change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..config import aws_owned_resources_in
from ..models import Finding, Snapshot

RuleFn = Callable[[Snapshot, "RuleContext"], list[Finding]]

#: Parts of a snapshot beyond the endpoints themselves that a rule may read; inventory.py reads only the parts
#: some active rule declares (each costs AWS calls: DescribeRouteTables, DescribeVpcs, two DescribeVpcAttribute
#: per VPC, DescribeVpcEndpointServices). A rule that declares nothing is given everything.
SNAPSHOT_PARTS = frozenset({"route_tables", "vpcs", "vpc_dns", "endpoint_services"})


@dataclass(frozen=True)
class RuleContext:
    """Configuration the rules read (never AWS): allowed organizations and opt-outs."""

    allowed_org_ids: frozenset[str]
    org_account_ids: frozenset[str] = frozenset()
    exclude_tag_key: str = "vpce-guard:exclude"
    exclude_tag_value: str = "true"
    #: AWS-owned S3 resource ARN patterns (``<region>`` placeholder allowed) outside the org perimeter on S3
    #: endpoints; empty (the default here, unlike Settings): no exemption.
    aws_owned_resource_arns: tuple[str, ...] = ()

    def excluded(self, tags: dict[str, str]) -> bool:
        return tags.get(self.exclude_tag_key, "").strip().lower() == self.exclude_tag_value

    def aws_owned_resources(self, region: str) -> tuple[str, ...]:
        """The exempt resource ARNs of one region's S3 (placeholders filled in)."""
        return aws_owned_resources_in(self.aws_owned_resource_arns, region)


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


REGISTRY: dict[str, Rule] = {}


def register(rule_id: str, title: str, *, triggers: Iterable[str] = (), fix_by_default: bool = True,
             reads: Iterable[str] | None = None) -> Callable[[RuleFn], RuleFn]:
    """Register a rule. `reads` names the snapshot parts it needs (omit it and the rule gets all of them)."""
    declared = None if reads is None else frozenset(reads)
    if declared is not None and not declared <= SNAPSHOT_PARTS:
        raise ValueError(f"rule {rule_id!r} reads unknown snapshot parts {sorted(declared - SNAPSHOT_PARTS)}")

    def deco(fn: RuleFn) -> RuleFn:
        if rule_id in REGISTRY:
            raise ValueError(f"rule {rule_id!r} registered twice")
        REGISTRY[rule_id] = Rule(rule_id, title, fn, fix_by_default, (fn.__doc__ or "").strip(), tuple(triggers),
                                 declared)
        return fn

    return deco


def all_rules() -> list[Rule]:
    """Every rule, in a stable order (the order fixes are applied within one resource)."""
    from . import endpoint_policy, gateway_route_tables  # noqa: F401  (registration side effect)

    return list(REGISTRY.values())


def reads_of(rules: Iterable[Rule]) -> frozenset[str]:
    """The snapshot parts these rules need together (what inventory.take_snapshot must read)."""
    out: set[str] = set()
    for rule in rules:
        out |= SNAPSHOT_PARTS if rule.reads is None else rule.reads
    return frozenset(out)


def evaluate_all(snapshot: Snapshot, ctx: RuleContext, rules: Iterable[Rule] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for rule in all_rules() if rules is None else rules:
        findings += rule.evaluate(snapshot, ctx)
    return findings
