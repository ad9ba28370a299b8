"""Rule `vpc-required-endpoints`: a VPC has every endpoint its profiles require (and nobody deleted one).

Profiles (profiles.py) name what a workload needs, e.g. `ssm-session-manager`: the ssm, ssmmessages and
ec2messages interface endpoints. A VPC missing one fails in a way that is hard to trace (Session Manager
shows the instance as offline). The usual way to get there is a DeleteVpcEndpoints, so that event
re-checks the endpoint's VPC. `patch-manager` also needs the S3 endpoint policy, when restricted, to keep
allowing the AWS-owned buckets Patch Manager reads.

Missing endpoints are reported; with `CreateMissingEndpoints=true` they are created, with an org-confined
policy from the start, the subnets and security groups of an interface endpoint already in the VPC, and
private DNS when the profile asks for it (VPC DNS is turned on first when needed).
"""

from __future__ import annotations

import hashlib

from .. import policy, policy_eval
from ..models import (
    GONE_ENDPOINT_STATES,
    LIVE_ENDPOINT_STATES,
    Action,
    Endpoint,
    Finding,
    Snapshot,
    Status,
    Vpc,
)
from ..profiles import EndpointRequirement, Profile
from . import RuleContext, _vpc_dns, register

RULE_ID = "vpc-required-endpoints"
CREATED_TAG = "vpce-guard:created-for"


@register(
    RULE_ID,
    "VPCs have the endpoints their profiles require",
    triggers=("DeleteVpcEndpoints", "ModifyVpcAttribute", "AuthorizeSecurityGroupIngress",
              "RevokeSecurityGroupIngress", "ModifySecurityGroupRules", "ModifyVpcEndpoint", "CreateVpcEndpoint"),
    fix_by_default=False,
    reads=("vpcs", "vpc_dns", "route_tables", "endpoint_services", "vpc_endpoints"),
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """Each VPC with profiles (DefaultProfiles, or its `vpce-guard:profiles` tag) must have a live endpoint for
    every endpoint the profiles list (pending and pending-acceptance count as present); only VPCs whose
    endpoints were all read are judged on that. For profiles with S3 policy requirements (patch-manager),
    every S3 endpoint in view must let a principal of this account and organization s3:GetObject the listed
    buckets. Missing endpoints are created only when `CreateMissingEndpoints` is true."""
    out: list[Finding] = []
    for vpc in snapshot.vpcs.values():
        known, unknown, source = ctx.profiles_of(vpc)
        if not known and not unknown:
            continue
        base = {"rule_id": RULE_ID, "resource_id": vpc.id, "resource_type": "vpc", "vpc_id": vpc.id}
        if vpc.owner_id and vpc.owner_id != snapshot.account:
            if vpc.id in snapshot.vpcs_with_all_endpoints:
                out.append(Finding(**base, status=Status.NOT_APPLICABLE,
                                   reason=f"{vpc.id} is shared by account {vpc.owner_id}; its endpoints are the "
                                          "owner's"))
            continue
        # What a VPC lacks can only be judged from all of its endpoints; an S3 policy from the endpoint alone.
        if vpc.id in snapshot.vpcs_with_all_endpoints:
            out.append(_judge_vpc(snapshot, ctx, vpc, known=known, unknown=unknown, source=source, base=base))
        out += _judge_s3_policies(snapshot, ctx, vpc, known)
    return out


def _requirements(profiles: list[Profile]) -> dict[tuple[str, str], tuple[EndpointRequirement, list[str]]]:
    """Requirements of several profiles, merged: one per (service, type); private DNS if any profile wants it."""
    merged: dict[tuple[str, str], tuple[EndpointRequirement, list[str]]] = {}
    for prof in profiles:
        for req in prof.endpoints:
            key = (req.service, req.type)
            if key in merged:
                old, names = merged[key]
                merged[key] = (old.model_copy(update={"private_dns": old.private_dns or req.private_dns}),
                               [*names, prof.name])
            else:
                merged[key] = (req, [prof.name])
    return merged


def _judge_vpc(snapshot: Snapshot, ctx: RuleContext, vpc: Vpc, *, known: list[Profile], unknown: list[str],
               source: str, base: dict[str, str]) -> Finding:
    endpoints = snapshot.endpoints_of(vpc.id)
    live = [e for e in endpoints if e.state in LIVE_ENDPOINT_STATES]
    missing: list[tuple[EndpointRequirement, list[str], list[Endpoint]]] = []
    waiting: list[str] = []
    for req, names in _requirements(known).values():
        present = [e for e in live if req.satisfied_by(e.type, e.service_short_name)]
        if not present:
            gone = [e for e in endpoints if e.state in GONE_ENDPOINT_STATES
                    and req.satisfied_by(e.type, e.service_short_name)]
            missing.append((req, names, gone))
        elif all(e.state != "available" for e in present):
            waiting.append(f"{present[0].id} ({req.service}) is {present[0].state}")

    details: dict[str, object] = {"profiles": [p.name for p in known], "profiles_from": source}
    if waiting:
        details["not_yet_available"] = waiting
    problems = []
    if unknown:
        details["unknown_profiles"] = unknown
        problems.append(f"unknown profile(s) {', '.join(unknown)} in tag {ctx.profiles_tag_key} "
                        f"(known: {', '.join(sorted(ctx.profiles))})")
    if missing:
        details["missing"] = [{"service": r.service, "type": r.create_type(), "profiles": n,
                               "deleted": [e.id for e in g]} for r, n, g in missing]
        problems += [
            f"no {r.label()} endpoint required by {', '.join(n)}"
            + (f" ({', '.join(f'{e.id} is {e.state}' for e in g)})" if g else "")
            for r, n, g in missing
        ]
    if not problems:
        return Finding(**base, status=Status.COMPLIANT, details=details,
                       reason=f"has every endpoint of {', '.join(p.name for p in known)}")
    reason = f"{vpc.id}: " + "; ".join(problems)
    if not missing or not ctx.create_missing_endpoints:
        return Finding(**base, status=Status.NON_COMPLIANT, reason=reason, details=details)
    actions, refused = _creations(snapshot, ctx, vpc, live, missing)
    if refused:
        details["unfixable"] = refused
        return Finding(**base, status=Status.NON_COMPLIANT, reason=reason, details=details)
    return Finding(**base, status=Status.NON_COMPLIANT, reason=reason, details=details, actions=tuple(actions))


def _creations(snapshot: Snapshot, ctx: RuleContext, vpc: Vpc, live: list[Endpoint],
               missing: list[tuple[EndpointRequirement, list[str], list[Endpoint]]]) -> tuple[list[Action], str]:
    """The actions that create the missing endpoints, or why they cannot be created safely."""
    if not ctx.allowed_org_ids:
        return [], "no organization to confine a new endpoint's policy to"
    template = next((e for e in live if e.type == "Interface" and e.subnet_ids
                     and e.owner_id in (None, snapshot.account)), None)
    tables = sorted(rt.id for rt in snapshot.route_tables_of(vpc.id) if not ctx.excluded(rt.tags))
    actions: list[Action] = []
    if any(r.private_dns and r.create_type() == "Interface" for r, _, _ in missing):
        if refused := _vpc_dns.not_owner_reason(vpc, snapshot.account):
            return [], refused
        actions += _vpc_dns.enable_actions(vpc, _vpc_dns.missing_attributes(vpc, hostnames=True))
    for req, names, gone in missing:
        kind = req.create_type()
        service = f"{_service_prefix(snapshot.region)}.{snapshot.region}.{req.service}"
        params: dict[str, object] = {"vpc_id": vpc.id, "service_name": service, "type": kind,
                                     "tags": {CREATED_TAG: " ".join(names)},
                                     "client_token": _client_token(vpc.id, service, kind, gone)}
        if service not in snapshot.policy_unsupported_services:
            params["policy_document"] = policy.confine(None, ctx.allowed_org_ids, ctx.org_account_ids,
                                                       resource_perimeter=ctx.resource_perimeter_for(req.service)).document
        if kind == "Gateway":
            if not tables:
                return [], f"no route table of {vpc.id} was read to associate a new {req.service} gateway endpoint with"
            params["route_table_ids"] = tables
        else:
            if template is None:
                return [], (f"{vpc.id} has no interface endpoint to take subnets and security groups from for a new "
                            f"{req.service} endpoint; create one, then vpce-guard can add the others")
            params |= {"subnet_ids": list(template.subnet_ids),
                       "security_group_ids": list(template.security_group_ids),
                       "private_dns_enabled": req.private_dns}
        actions.append(Action(kind="create_endpoint", resource_id=vpc.id, params=params,
                              before={"endpoint": None}, after={"endpoint": f"{req.service} ({kind.lower()})"},
                              summary=f"create a {req.service} {kind.lower()} endpoint in {vpc.id} "
                                      f"(for {', '.join(names)})"))
    return actions, ""


def _service_prefix(region: str) -> str:
    """AWS service names are `com.amazonaws.<region>.<service>`, in China `cn.com.amazonaws.<region>.<service>`."""
    return "cn.com.amazonaws" if region.startswith("cn-") else "com.amazonaws"


def _client_token(vpc_id: str, service: str, kind: str, gone: list[Endpoint]) -> str:
    """Idempotency token: a retried invocation creates nothing twice; a later deletion gives a new token."""
    seed = "|".join([vpc_id, service, kind, *sorted(e.id for e in gone)])
    return "vpce-guard-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _judge_s3_policies(snapshot: Snapshot, ctx: RuleContext, vpc: Vpc, known: list[Profile]) -> list[Finding]:
    """Profiles with S3 policy requirements: each live S3 endpoint must still let the buckets through."""
    wanted = {arn.format(region=snapshot.region): p.name for p in known for arn in p.s3_policy_must_allow}
    if not wanted:
        return []
    out = []
    for ep in snapshot.endpoints_of(vpc.id):
        if ep.service_short_name != "s3" or ep.state not in LIVE_ENDPOINT_STATES:
            continue
        base = {"rule_id": RULE_ID, "resource_id": ep.id, "resource_type": "vpc-endpoint", "vpc_id": vpc.id}
        if ep.owner_id and ep.owner_id != snapshot.account:
            out.append(Finding(**base, status=Status.NOT_APPLICABLE, reason=f"endpoint is owned by {ep.owner_id}"))
            continue
        orgs = sorted(ctx.allowed_org_ids) or [None]
        try:
            denied = [arn for arn in wanted if not any(policy_eval.allows(ep.policy_document, policy_eval.Request(
                action="s3:GetObject", resource=arn, principal_arn=f"arn:aws:iam::{snapshot.account}:root",
                principal_account=snapshot.account, principal_org_id=org)) for org in orgs)]
        except policy.PolicyError as exc:
            out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=f"policy cannot be read: {exc}",
                               details={"unfixable": "the policy is not a valid policy document"}))
            continue
        if not denied:
            out.append(Finding(**base, status=Status.COMPLIANT,
                               reason=f"policy lets the organization read {', '.join(wanted)}"))
            continue
        profiles = sorted({wanted[a] for a in denied})
        out.append(Finding(**base, status=Status.NON_COMPLIANT, details={"denied": denied, "profiles": profiles},
                           reason=f"the policy of {ep.id} does not let principals of the organization s3:GetObject "
                                  f"{', '.join(denied)} (needed by {', '.join(profiles)}): add an Allow for them"))
    return out
