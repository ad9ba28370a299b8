"""Rule `endpoint-policy-org-confined`: an endpoint policy lets only principals of the organization in."""

from __future__ import annotations

import re

from .. import policy
from ..models import Action, Endpoint, Finding, Snapshot, Status
from . import RuleContext, register

RULE_ID = "endpoint-policy-org-confined"

#: Endpoint states in which a policy can neither matter nor be changed.
_GONE = frozenset({"deleted", "deleting", "rejected", "failed", "expired"})

#: Amazon S3's own endpoint service (gateway and interface alike), e.g. com.amazonaws.eu-west-1.s3 (China:
#: cn.com.amazonaws.cn-north-1.s3). Not s3-outposts, s3express or the s3-global access points: those never
#: serve the AWS-owned package buckets, so no exemption applies to them.
_S3_SERVICE_RE = re.compile(r"(?:cn\.)?com\.amazonaws\.([a-z0-9-]+)\.s3")


def _aws_owned_resources(ep: Endpoint, ctx: RuleContext) -> tuple[str, ...]:
    """The exempt AWS-owned resources for this endpoint: the configured ones on S3 endpoints, none elsewhere.

    The region is the one in the service name: the endpoint reaches that region's buckets.
    """
    match = _S3_SERVICE_RE.fullmatch(ep.service_name)
    return ctx.aws_owned_resources(match.group(1)) if match else ()


@register(
    RULE_ID,
    "Endpoint policy confines access to the organization",
    severity="HIGH",
    triggers=("CreateVpcEndpoint", "ModifyVpcEndpoint"),
    reads=("endpoint_services",),
)
def evaluate(snapshot: Snapshot, ctx: RuleContext) -> list[Finding]:
    """Every Allow must be limited to principals of an allowed organization (aws:PrincipalOrgID), either by
    its own condition or by a Deny that covers it; AWS service principals do not count as outsiders.
    On S3 endpoints the configured AWS-owned resources (AWS_OWNED_RESOURCE_ARNS: the Amazon Linux
    repositories by default) stay outside the perimeter, so anonymous package downloads keep working.
    With PERIMETER=identity+resource, every Allow on S3 and DynamoDB endpoints must also keep callers on
    resources of the allowed organizations (aws:ResourceOrgID), the same AWS-owned resources aside.
    The fix appends one Deny statement per perimeter and never changes or removes an existing statement.
    Endpoints that share a policy (most keep AWS's default) are analysed once per distinct document."""
    out: list[Finding] = []
    judged: dict[tuple[str | None, tuple[str, ...], bool],
                 tuple[policy.PolicyVerdict | policy.PolicyError, policy.ConfineResult | None]] = {}
    for ep in snapshot.endpoints.values():
        base = {"rule_id": RULE_ID, "resource_id": ep.id, "resource_type": "vpc-endpoint", "vpc_id": ep.vpc_id}
        if ep.state in _GONE:
            out.append(Finding(**base, status=Status.NOT_APPLICABLE, reason=f"endpoint is {ep.state}"))
            continue
        if ep.service_name in snapshot.policy_unsupported_services or ep.type == "GatewayLoadBalancer":
            out.append(Finding(**base, status=Status.NOT_APPLICABLE,
                               reason=f"{ep.type} endpoint to {ep.service_name} does not support endpoint policies"))
            continue
        if ep.owner_id and ep.owner_id != snapshot.account:
            out.append(Finding(**base, status=Status.NOT_APPLICABLE,
                               reason=f"endpoint is owned by account {ep.owner_id}; its owner's deployment covers it"))
            continue
        exempt = _aws_owned_resources(ep, ctx)
        resources_too = ctx.resource_perimeter_for(ep.service_short_name)
        details: dict[str, object] = {"aws_owned_resource_arns": list(exempt)} if exempt else {}
        if resources_too:
            details["perimeter"] = "identity+resource"
        key = (ep.policy_document, exempt, resources_too)
        if key not in judged:
            judged[key] = _judge(ep.policy_document, ctx, exempt, resources_too)
        verdict, fix = judged[key]
        if isinstance(verdict, policy.PolicyError):
            out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=f"policy cannot be read: {verdict}",
                               details={"unfixable": "the policy is not a valid policy document"}))
            continue
        if verdict.compliant:
            reason = "every Allow is confined to the allowed organizations"
            if resources_too:
                reason += " and to their resources"
            if verdict.notes:
                reason += " (" + "; ".join(verdict.notes) + ")"
            out.append(Finding(**base, status=Status.COMPLIANT, reason=reason, details=details))
            continue
        reason = "; ".join(verdict.reasons) or "policy allows principals outside the organization"
        if fix is None or fix.refused or not fix.document:
            out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=reason,
                               details={**details, "unfixable": fix.refused or "no fix could be computed"}))
            continue
        action = Action(
            kind="set_endpoint_policy",
            resource_id=ep.id,
            params={"policy_document": fix.document},
            before={"policy_document": ep.policy_document},
            after={"policy_document": fix.document},
        )
        out.append(Finding(**base, status=Status.NON_COMPLIANT, reason=reason, actions=(action,), details=details))
    return out


def _judge(document: str | None, ctx: RuleContext, exempt: tuple[str, ...], resources_too: bool) -> tuple[
        policy.PolicyVerdict | policy.PolicyError, policy.ConfineResult | None]:
    """A policy document's verdict and, when it is not confined, its fix (or why it cannot be read)."""
    try:
        verdict = policy.analyse(document, ctx.allowed_org_ids, ctx.org_account_ids,
                                 aws_owned_resource_arns=exempt, resource_perimeter=resources_too)
    except policy.PolicyError as exc:
        return exc, None
    if verdict.compliant:
        return verdict, None
    return verdict, policy.confine(document, ctx.allowed_org_ids, ctx.org_account_ids,
                                   aws_owned_resource_arns=exempt, resource_perimeter=resources_too)
