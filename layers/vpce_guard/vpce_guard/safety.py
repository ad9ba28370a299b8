"""The pipeline's safety lookups that need I/O, kept out of the pure planner: `lookup_guards` reads the
exemption registry and the ledger's recent fixes and hands the planner the result as data (`plan.Guards`).
It reads nothing when no finding is non-compliant, and counts fixes only for findings that would otherwise
be fixed now. (A fix is recorded `pending` before it is applied: `pipeline._record_intents`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import exemptions, flapping, plan
from .aws import side_by_side
from .models import Finding, Snapshot, Status

if TYPE_CHECKING:
    from .pipeline import Runtime


def _tags_of(snapshot: Snapshot, resource_id: str) -> Mapping[str, str]:
    for pool in (snapshot.endpoints, snapshot.vpcs, snapshot.route_tables, snapshot.service_configurations):
        res = pool.get(resource_id)
        if res is not None:
            return res.tags
    return {}


def lookup_guards(rt: Runtime, snapshot: Snapshot, findings: list[Finding], now: datetime) -> plan.Guards:
    """Exemptions and flapping state for the findings that need them, as data for `plan.make_plan`."""
    base = plan.make_plan(findings, rt.mode_for)
    candidates = [s.finding for s in base if s.finding.status is Status.NON_COMPLIANT]
    if not candidates:
        return plan.NO_GUARDS

    exempt: dict[tuple[str, str], plan.Guard] = {}
    registry = rt.exemptions
    if registry is not None:
        known = registry.for_account(snapshot.account)
        for f in candidates:
            hit = exemptions.match(known.entries, rule_id=f.rule_id, account=snapshot.account,
                                   resource_id=f.resource_id, vpc_id=f.vpc_id, ou_path=known.ou_path,
                                   tags=_tags_of(snapshot, f.resource_id), now=now,
                                   tag_key=rt.settings.exempt_tag_key)
            if hit is not None:
                exempt[(f.rule_id, f.resource_id)] = plan.Guard(hit.describe(), {"exemption": hit.summary()})

    to_fix = [s.finding for s in plan.make_plan(findings, rt.mode_for, plan.Guards(exempt=exempt))
              if s.decision is plan.Decision.APPLY]
    flaps: dict[tuple[str, str], plan.Guard] = {}
    policy = rt.flap_policy
    # One Query per resource partition, shared by its findings; the partitions are independent, so a sweep
    # with many fixes waits for a few Queries' latency, not for all of them one after another.
    resources = sorted({r for f in to_fix for r in flapping.resources_of(f)})
    history: dict[str, list[dict[str, Any]]] = dict(zip(resources, side_by_side(
        lambda r: rt.ledger.history_since(snapshot.account, snapshot.region, r, now - policy.window), resources),
        strict=True))
    for f in to_fix:
        items = [i for r in flapping.resources_of(f) for i in history[r]]
        state = flapping.assess(items, rule_id=f.rule_id, resource_id=f.resource_id, policy=policy, now=now)
        if state.flapping:
            flaps[(f.rule_id, f.resource_id)] = plan.Guard(state.note(policy), state.details(policy))
    return plan.Guards(exempt=exempt, flapping=flaps)

