"""Case 1: every event file in events/, on a compliant VPC and on a violating one, through the real handler.

The function is warm (one invocation on another VPC first), as most invocations are; what a cold start adds
is measured too (one DescribeOrganization when AllowedOrgIds is empty). Each case gets its own VPC, seeded
as `devkit.seed.seed_vpc` does (an S3 gateway endpoint and an SSM interface endpoint):

- compliant: both policies confined to the organization, the gateway endpoint on every route table, DNS
  support and hostnames on;
- violating: AWS's default full-access policies, the gateway endpoint on one of three route tables, DNS
  hostnames off under the SSM endpoint's private DNS.

Where the event describes a change that leaves a trace (a deleted endpoint, a removed association), that
change is made first, so the handler sees the world the event reports.

Endpoint-service events (CreateVpcEndpointServiceConfiguration, ModifyVpcEndpointService*,
AcceptVpcEndpointConnections) get an endpoint service of their own instead (`devkit.seed.seed_endpoint_service`):

- compliant: allowed to a role of the account and to a member of the organization (placed once, by the warm-up),
  acceptance required, a member's connection accepted;
- violating: allowed to `*` and to an account outside the organization, acceptance off, that account's request
  pending (made while acceptance was on) and another of its endpoints connected.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from devkit.api_calls import count_api_calls
from devkit.paging import aws_paging

from .harness import ACCOUNT, REGION, TABLE, environment, moto_world, ratio, timed
from .lower_bounds import Bound, EventTruth, ServiceEventTruth, event_bound, needed_reads, service_event_bound

ENDPOINT_EVENTS = {"CreateVpcEndpoint", "ModifyVpcEndpoint", "DeleteVpcEndpoints"}
VPC_EVENTS = {"ModifyVpcAttribute", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress",
              "ModifySecurityGroupRules"}
SERVICE_EVENTS = {"CreateVpcEndpointServiceConfiguration", "ModifyVpcEndpointServiceConfiguration",
                  "ModifyVpcEndpointServicePermissions", "AcceptVpcEndpointConnections"}
#: An account outside the organization (moto: any account id behind assumed-role credentials).
OUTSIDER = "999988887777"


@dataclass
class EventResult:
    event: str
    event_name: str
    scenario: str
    calls: int
    bound: int
    ratio: float | None
    reads: dict[str, int]
    writes: dict[str, int]
    bound_detail: dict[str, int]
    ledger_items: int
    statuses: dict[str, int]
    seconds: float


def _prepare(name: str, world: Any, ec2: Any) -> None:
    if name == "delete-vpc-endpoints.json":
        ec2.delete_vpc_endpoints(VpcEndpointIds=[world.ids["ssm_endpoint"]])
    elif name == "disassociate-route-table.json":
        ec2.disassociate_route_table(AssociationId=world.ids["assoc1"])


def _delivery(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "id": str(uuid.uuid4())}


def _truth(name: str, event_name: str, world: Any, violating: bool) -> EventTruth:
    s3, ssm = world.ids["s3_endpoint"], world.ids["ssm_endpoint"]
    deleted = {ssm} if name == "delete-vpc-endpoints.json" else set()
    if event_name in ENDPOINT_EVENTS:
        named = {"delete-vpc-endpoints.json": ssm}.get(name, s3)
        in_scope = tuple(e for e in (named,) if e not in deleted)
        names_vpc, vpc_scope, locatable = event_name == "CreateVpcEndpoint", False, True
    elif event_name in VPC_EVENTS:
        in_scope, names_vpc, vpc_scope, locatable = (s3, ssm), event_name == "ModifyVpcAttribute", True, True
    elif event_name == "DisassociateRouteTable":
        in_scope, names_vpc, vpc_scope, locatable = (), False, True, False
    else:  # route-table events concern the gateway endpoints of the VPC
        in_scope, names_vpc, vpc_scope, locatable = (s3,), event_name == "CreateRouteTable", True, True
    gateway = tuple(e for e in in_scope if e == s3)
    interface = tuple(e for e in in_scope if e == ssm)
    return EventTruth(
        names_endpoints=event_name in ENDPOINT_EVENTS, names_vpc=names_vpc, vpc_locatable=locatable,
        in_scope=in_scope, gateway_in_scope=gateway, to_fix=in_scope if violating else (), vpc_scope=vpc_scope,
        interface_in_scope=interface, located_by_group=event_name in VPC_EVENTS - {"ModifyVpcAttribute"},
        # The violating VPC keeps DNS hostnames off under the SSM endpoint's private DNS: one attribute to fix.
        vpc_fixes=1 if violating and interface else 0, deleted=bool(deleted))


def _service_world(ec2: Any, n: int, member: str, violating: bool) -> Any:
    """An endpoint service as the module docstring describes it (the n-th: its own VPCs' CIDRs)."""
    import boto3

    from devkit.seed import account_ec2, connect, seed_endpoint_service

    elbv2 = boto3.client("elbv2", region_name=REGION)
    if violating:
        service = seed_endpoint_service(ec2, elbv2, REGION, name=f"svc-{n}", cidr=f"10.{100 + n}.0.0/16",
                                        acceptance_required=True, principals=("*", f"arn:aws:iam::{OUTSIDER}:root"))
        outsider = account_ec2(OUTSIDER, REGION)
        connect(outsider, service, cidr=f"10.{150 + n}.0.0/16")
        ec2.modify_vpc_endpoint_service_configuration(ServiceId=service.ids["service"], AcceptanceRequired=False)
        connect(outsider, service, cidr=f"10.{200 + n}.0.0/16")  # accepted at once
    else:
        service = seed_endpoint_service(ec2, elbv2, REGION, name=f"svc-{n}", cidr=f"10.{100 + n}.0.0/16",
                                        acceptance_required=False,
                                        principals=(f"arn:aws:iam::{ACCOUNT}:role/app", f"arn:aws:iam::{member}:root"))
        connect(account_ec2(member, REGION), service, cidr=f"10.{150 + n}.0.0/16")
        ec2.modify_vpc_endpoint_service_configuration(ServiceId=service.ids["service"], AcceptanceRequired=True)
    return service


def _service_truth(violating: bool) -> ServiceEventTruth:
    """With the template's defaults only acceptance is fixed; the outsider is asked about on every event."""
    return ServiceEventTruth(accounts_to_place=1 if violating else 0, acceptance_fix=violating)


def run(quick: bool = False, files: list[str] | None = None) -> dict[str, Any]:
    from devkit import template
    from devkit.lambda_context import LocalLambdaContext
    from devkit.seed import confined_policy, event_files, render_event, seed_vpc
    from vpce_guard import aws, config

    results: list[EventResult] = []
    with moto_world() as mw, aws_paging(), environment(_function_env(mw.org_id)):
        config.settings.cache_clear()
        handler = template.function_spec("OnChangeFunction", resources={"LedgerTable": TABLE}).load_handler()
        ctx = LocalLambdaContext(function_name="OnChangeFunction")

        # Cold start: what the first invocation pays on top of a warm one.
        warm_world = seed_vpc(mw.ec2, REGION, name="warm-up", cidr="10.255.0.0/16",
                              s3_policy=confined_policy(mw.org_id), associate_all=True, dns_hostnames=True)
        # Every call is a new delivery: a new EventBridge id (the same id would be answered by idempotency).
        # A VPC event, so that every endpoint kind is seen once (what a cold start looks up is cached).
        with count_api_calls() as cold:
            handler(_delivery(render_event("modify-vpc-attribute.json", warm_world.mapping())), ctx)
        with count_api_calls() as warm:
            handler(_delivery(render_event("modify-vpc-attribute.json", warm_world.mapping())), ctx)
        cold_extra = dict(cold.calls - warm.calls)
        # The organization's member behind the compliant services, placed once as a warm function would have.
        import boto3

        member = boto3.client("organizations", region_name=REGION).create_account(
            AccountName="member", Email="member@example.com")["CreateAccountStatus"]["AccountId"]
        warm_service = _service_world(mw.ec2, 0, member, violating=False)
        handler(_delivery(render_event("modify-vpc-endpoint-service-configuration.json", warm_service.mapping())), ctx)

        reads_needed = needed_reads()
        files = files or (event_files()[:3] if quick else event_files())
        for i, name in enumerate(files):
            for j, scenario in enumerate(("compliant", "violating")):
                violating = scenario == "violating"
                event_name = render_event(name, {})["detail"]["eventName"]
                bound: Bound
                if event_name in SERVICE_EVENTS:
                    world = _service_world(mw.ec2, 2 * i + j + 1, member, violating)
                    event = _delivery(render_event(name, world.mapping()))
                    with count_api_calls() as calls:
                        summary, seconds = timed(lambda event=event: handler(event, ctx))
                    bound = service_event_bound(_service_truth(violating), summary["ledger_items"], reads_needed)
                else:
                    world = seed_vpc(mw.ec2, REGION, name=f"{scenario}-{i}", cidr=f"10.{2 * i + j + 1}.0.0/16",
                                     s3_policy=None if violating else confined_policy(mw.org_id),
                                     associate_all=not violating, dns_hostnames=not violating)
                    _prepare(name, world, mw.ec2)
                    event = _delivery(render_event(name, world.mapping()))
                    with count_api_calls() as calls:
                        summary, seconds = timed(lambda event=event: handler(event, ctx))
                    truth = _truth(name, event["detail"]["eventName"], world, violating)
                    bound = event_bound(truth, summary["ledger_items"], reads_needed)
                statuses: dict[str, int] = summary["counts"]
                results.append(EventResult(
                    event=name, event_name=event["detail"]["eventName"], scenario=scenario, calls=calls.total,
                    bound=bound.total, ratio=ratio(calls.total, bound.total),
                    reads={f"{s}:{o}": n for (s, o), n in sorted(calls.calls.items()) if o in calls.reads(s)},
                    writes={f"{s}:{o}": n for (s, o), n in sorted(calls.calls.items()) if o in calls.writes(s)},
                    bound_detail=dict(bound.calls), ledger_items=summary["ledger_items"], statuses=statuses,
                    seconds=round(seconds, 4)))
        aws.reset_caches()
    config.settings.cache_clear()
    return {
        "reads_needed": sorted(reads_needed),
        "cold_start_extra_calls": {f"{s}:{o}": n for (s, o), n in sorted(cold_extra.items())},
        "cases": [asdict(r) for r in results],
        "worst_ratio": max((r.ratio or 0) for r in results) if results else None,
    }


def _function_env(org_id: str) -> dict[str, str]:
    """The on-change function's environment as template.yaml sets it in a deployment (OrganizationId given;
    inside Lambda, as the service tells the function), with quiet logs for the benchmark."""
    from devkit import template

    spec = template.function_spec("OnChangeFunction", resources={"LedgerTable": TABLE},
                                  overrides={"OrganizationId": org_id})
    return {**spec.environment, "POWERTOOLS_LOG_LEVEL": "ERROR", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
