"""`make demo`: the story in under a minute, against a moto server this command starts and stops itself.

1. start moto; seed an organization: the hub (management) account and two member accounts, each member with
   the spoke role of templates/spoke.yaml, and VPCs carrying the drift people really cause: AWS's default
   "allow everything" endpoint policy, a vendor account let in through a DynamoDB endpoint, gateway endpoints
   that never reached some of their VPC's route tables, private DNS endpoints in VPCs whose DNS hostnames are
   off, DNS resolution turned off under gateway endpoints, and an endpoint service (the provider side of
   PrivateLink) opened to everyone (`*`) and to an account outside the organization, acceptance off;
2. send the CloudTrail events those changes produce through the real on-change handler, run exactly as
   `sam local invoke` would run it (devkit.local: template.yaml's environment, SAM's precedence rules), with
   the credentials of the function's own role; one event comes from a member account and is acted on there
   through the spoke role;
3. run the scheduled sweep (SweepFunction queues one unit per account and region on SQS, SweepWorkerFunction
   drains it as Lambda's event source mapping would): it finds and fixes what no event reported;
4. print, per endpoint and per VPC, what it was before and what it is now; then the ledger report
   (`vpce-guard report`) and the sweep's summary;
5. stop the server (nothing is left running) and say where to look next: commands that run as printed, from
   the directory the demo ran in (tests/e2e/test_demo.py runs each).

`vpce-guard demo`, `make demo` and `python -m devkit.demo` are the same.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from devkit import local, report, template
from devkit.environ import patched_environ
from devkit.moto_server import moto_server
from devkit.org import HUB_FUNCTION_ROLES, OrgWorld, hub_function_env, seed_org
from devkit.seed import (
    PLACEHOLDERS,
    ServiceWorld,
    SpineWorld,
    confined_policy,
    render_event,
    seed_endpoint_service,
    seed_vpc,
)
from devkit.sqs import create_sweep_queues, drain
from vpce_guard import cli
from vpce_guard.ledger import Ledger
from vpce_guard.models import Status

REGION = "us-east-1"
REGIONS = ("us-east-1", "eu-west-1")
TABLE = "vpce-guard-ledger"
VENDOR_ACCOUNT = "444455556666"
#: An account outside the organization that someone allowed on the hub's endpoint service.
STRANGER_ACCOUNT = "999988887777"
FUNCTION = "OnChangeFunction"
#: The execution role of each hub function (what Lambda would give it); the spoke role trusts these.
ROLE_OF = {"OnChangeFunction": HUB_FUNCTION_ROLES[0], "SweepWorkerFunction": HUB_FUNCTION_ROLES[1],
           "SweepFunction": "vpce-guard-SweepFunctionRole"}


def _principals(stmt: dict[str, Any]) -> str:
    p = stmt.get("Principal", "*")
    if p in ("*", {"AWS": "*"}):
        return "*"
    values = p.get("AWS", p.get("Service", "")) if isinstance(p, dict) else p
    values = values if isinstance(values, list) else [values]
    return ",".join(v.split(":")[4] if v.startswith("arn:") else v for v in values)


def policy_summary(doc: str | None) -> str:
    """A policy in a few words: `Allow *` for AWS's default, the Sid of our Deny when it is there."""
    if not doc:
        return "(none: full access)"
    parsed = json.loads(doc)
    stmts = parsed["Statement"] if isinstance(parsed["Statement"], list) else [parsed["Statement"]]
    parts = []
    for s in stmts:
        keys = [k.removeprefix("aws:").removeprefix("Principal") for op in s.get("Condition", {}).values() for k in op]
        cond = " if " + ",".join(keys) if keys else ""
        if s.get("Effect") == "Deny" and s.get("Sid"):
            parts.append(f"Deny[{s['Sid']}]")
        else:
            parts.append(f"{s.get('Effect')} {_principals(s)}{cond}")
    return " + ".join(parts)


def _names(ec2: Any, route_table_ids: list[str]) -> str:
    if not route_table_ids:
        return "-"
    names = []
    for t in ec2.describe_route_tables(RouteTableIds=route_table_ids)["RouteTables"]:
        tag = {x["Key"]: x["Value"] for x in t.get("Tags", [])}.get("Name", "")
        main = any(a.get("Main") for a in t.get("Associations", []))
        names.append(tag.rsplit("-", 2)[-2] + "-" + tag.rsplit("-", 1)[-1] if tag else ("main" if main else
                                                                                         t["RouteTableId"]))
    return ", ".join(sorted(names))


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 100 - len(title)))


def seed_hub(ec2: Any, org_id: str) -> tuple[SpineWorld, SpineWorld]:
    """Two VPCs in the hub account: `payments` with AWS's defaults everywhere, `analytics` half done."""
    payments = seed_vpc(ec2, REGION, name="payments")
    analytics = seed_vpc(ec2, REGION, cidr="10.1.0.0/16", name="analytics", associate_all=True,
                         s3_policy=confined_policy(org_id), with_ssm=False)
    vendor_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "OrgReadWrite", "Effect": "Allow", "Principal": "*", "Action": "dynamodb:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}},
        {"Sid": "VendorExport", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{VENDOR_ACCOUNT}:root"},
         "Action": ["dynamodb:Scan", "dynamodb:Query"], "Resource": "*"}]})
    analytics.ids["ddb_endpoint"] = ec2.create_vpc_endpoint(
        VpcId=analytics.ids["vpc"], ServiceName=f"com.amazonaws.{REGION}.dynamodb", VpcEndpointType="Gateway",
        RouteTableIds=[analytics.ids["rt1"]], PolicyDocument=vendor_policy,
    )["VpcEndpoint"]["VpcEndpointId"]
    return payments, analytics


def seed_service(org: OrgWorld) -> ServiceWorld:
    """The hub's `orders-api` endpoint service, opened to everyone and to a stranger's account, acceptance off:
    what the ModifyVpcEndpointServicePermissions event in events/ reports."""
    session = org.session(org.hub, REGION)
    return seed_endpoint_service(session.client("ec2"), session.client("elbv2"), REGION, acceptance_required=False,
                                 principals=("*", f"arn:aws:iam::{STRANGER_ACCOUNT}:root"))


def service_state(org: OrgWorld, service: ServiceWorld) -> dict[str, str]:
    """Allowed principals and acceptance of the demo's endpoint service, in a few words."""
    ec2 = org.ec2(org.hub, REGION)
    sid = service.ids["service"]
    allowed = sorted(p["Principal"] for p in ec2.describe_vpc_endpoint_service_permissions(
        ServiceId=sid)["AllowedPrincipals"])
    config = ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[sid])["ServiceConfigurations"][0]
    return {"allowed principals": ", ".join(allowed) or "(none)",
            "acceptance": "required" if config["AcceptanceRequired"] else "OFF"}


@contextmanager
def function_credentials(hub: str, function: str) -> Iterator[None]:
    """Run with the credentials of the function's execution role, as Lambda gives them to it."""
    with patched_environ(hub_function_env(hub, ROLE_OF[function])):
        yield


class Inventory:
    """Every endpoint the demo seeded, by label, read back through each account's own admin session."""

    def __init__(self, org: OrgWorld) -> None:
        self.org = org
        self.where: dict[str, tuple[str, str, str]] = {}  # endpoint id → (label, account, region)

        self.vpcs: dict[str, tuple[str, str, str]] = {}  # vpc id → (label, account, region)
        self.names: dict[str, str] = {}  # any other resource id → label

    def add(self, label: str, account: str, region: str, endpoint_id: str) -> None:
        self.where[endpoint_id] = (label, account, region)

    def add_vpc(self, label: str, account: str, region: str, vpc_id: str) -> None:
        self.vpcs[vpc_id] = (label, account, region)

    def vpc_dns(self) -> dict[str, tuple[bool, bool]]:
        """enableDnsSupport and enableDnsHostnames of every VPC (one DescribeVpcAttribute per attribute)."""
        out = {}
        for vpc, (_, account, region) in self.vpcs.items():
            ec2 = self.org.ec2(account, region)
            out[vpc] = tuple(  # type: ignore[assignment]
                ec2.describe_vpc_attribute(VpcId=vpc, Attribute=a)[key]["Value"]
                for a, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")))
        return out

    def describe(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        by_place: dict[tuple[str, str], list[str]] = {}
        for eid, (_, account, region) in self.where.items():
            by_place.setdefault((account, region), []).append(eid)
        for (account, region), ids in by_place.items():
            for e in self.org.ec2(account, region).describe_vpc_endpoints(VpcEndpointIds=ids)["VpcEndpoints"]:
                out[e["VpcEndpointId"]] = e
        return out

    def label(self, resource_id: str) -> str:
        if resource_id in self.names:
            return self.names[resource_id]
        return self.where.get(resource_id, self.vpcs.get(resource_id, (resource_id, "", "")))[0]


def run(ctx: cli.Context | None = None) -> int:
    """The demo; 0 when everything seeded was fixed as the story says, 1 otherwise."""
    started = time.monotonic()
    # Every (account, region) EC2 backend would otherwise load thousands of AMIs nobody here uses.
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    with moto_server() as url:
        os.environ.update({
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
        })
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        print(f"moto server: {url} (started by this demo, stopped at the end)")
        # Imported only now: vpce_guard's child loggers take their level from the environment at import.
        from vpce_guard.sweep import SWEEP_TRIGGER_NAME, SweepRecords

        org = seed_org(members=2, regions=REGIONS, seed_hub=False)
        payments, analytics = seed_hub(org.ec2(org.hub, REGION), org.org_id)
        template.create_tables(boto3.client("dynamodb"), template.tables_for(TABLE))
        template.create_messaging(boto3.Session(), template.messaging_for(TABLE))
        queue_url, _ = create_sweep_queues(boto3.client("sqs"))
        inv = Inventory(org)
        inv.add("hub payments/s3", org.hub, REGION, payments.ids["s3_endpoint"])
        inv.add("hub payments/ssm", org.hub, REGION, payments.ids["ssm_endpoint"])
        inv.add("hub analytics/s3", org.hub, REGION, analytics.ids["s3_endpoint"])
        inv.add("hub analytics/dynamodb", org.hub, REGION, analytics.ids["ddb_endpoint"])
        inv.add_vpc("hub payments (VPC)", org.hub, REGION, payments.ids["vpc"])
        service = seed_service(org)
        inv.names[service.ids["service"]] = "hub orders-api (service)"
        inv.add_vpc("hub analytics (VPC)", org.hub, REGION, analytics.ids["vpc"])
        for i, member in enumerate(org.members, start=1):
            for region in REGIONS:
                w = org.vpcs[(member, region)]
                inv.add(f"member{i} {region} s3", member, region, w.ids["s3_endpoint"])
                inv.add(f"member{i} {region} ssm", member, region, w.ids["ssm_endpoint"])
                inv.add_vpc(f"member{i} {region} (VPC)", member, region, w.ids["vpc"])
        print(f"organization {org.org_id}: hub {org.hub} (VPCs payments, analytics in {REGION}); members "
              f"{', '.join(org.members)} (a VPC in each of {', '.join(REGIONS)}, spoke role "
              f"{org.spoke_role_name}); {len(inv.where)} endpoints")
        # What dave's call (reported by an event below) did: DNS resolution off in the analytics VPC.
        org.ec2(org.hub, REGION).modify_vpc_attribute(VpcId=analytics.ids["vpc"], EnableDnsSupport={"Value": False})
        before = inv.describe()
        dns_before = inv.vpc_dns()
        service_before = service_state(org, service)
        since = datetime.now(UTC) - timedelta(seconds=1)
        overrides = {"OrganizationId": org.org_id, "SpokeRegions": ",".join(REGIONS)}
        # ledger, exemptions, idempotency store; the hub bus and the notification topic
        tables = template.table_env({**template.tables_for(TABLE), **template.messaging_for(TABLE)})
        env_vars = {fn: {**tables, **({"SWEEP_QUEUE_URL": queue_url} if fn == "SweepFunction" else {})}
                    for fn in ROLE_OF}

        def invoke(function: str, event: dict[str, Any]) -> Any:
            with function_credentials(org.hub, function):
                result = local.invoke(function, event, env_vars=env_vars, parameter_overrides=overrides)
            if not result.ok:
                raise RuntimeError(f"{function} failed: {result.error}")
            return result.payload

        def refused(event: dict[str, Any]) -> None:
            event["detail"].update(errorCode="AccessDenied", errorMessage="not authorized to perform this operation")

        member1 = org.members[0]
        stories: list[tuple[str, str, str, dict[str, str], dict[str, str], Callable[[dict[str, Any]], None] | None]]
        stories = [
            ("alice put AWS's default policy back on the payments S3 endpoint", "NetworkAdmin/alice",
             "modify-vpc-endpoint.json", payments.mapping(), {}, None),
            ("a pipeline created the payments SSM endpoint with the default policy", "terraform-deployer/ci",
             "create-vpc-endpoint.json",
             {**payments.mapping(), PLACEHOLDERS["s3_endpoint"]: payments.ids["ssm_endpoint"]}, {}, None),
            ("dave turned DNS resolution off in the analytics VPC; vpce-guard re-reads the whole VPC",
             "NetworkAdmin/dave", "modify-vpc-attribute.json", analytics.mapping(), {}, None),
            ("erin opened the orders-api endpoint service to everyone ('*') and a stranger's account",
             "NetworkAdmin/erin", "modify-vpc-endpoint-service-permissions.json", service.mapping(), {}, None),
            ("mallory tried to change the analytics S3 endpoint; AWS refused the call", "Developer/mallory",
             "modify-vpc-endpoint.json", analytics.mapping(), {}, refused),
            (f"carol changed the S3 endpoint in member account {member1} (eu-west-1)", "NetworkAdmin/carol",
             "modify-vpc-endpoint.json", org.vpcs[(member1, "eu-west-1")].mapping(),
             {"account": member1, "region": "eu-west-1"}, None),
        ]
        _section("CloudTrail events → the on-change function (as `sam local invoke` runs it, no container)")
        for n, (title, actor, name, mapping, where, mutate) in enumerate(stories):
            event = render_event(name, mapping, **where)
            event = json.loads(json.dumps(event).replace("NetworkAdmin/alice", actor))
            # Each story is its own CloudTrail event, so its own EventBridge id (the same id would be a
            # redelivery, answered by the handler's idempotency store without running again).
            event["id"] = f"{event['id'][:-2]}{n:02d}"
            if name == "modify-vpc-attribute.json":
                event["detail"]["requestParameters"] = {"vpcId": analytics.ids["vpc"],
                                                        "enableDnsSupport": {"value": False}}
            if mutate:
                mutate(event)
            out = invoke(FUNCTION, event)
            print(f"* {title}\n  {event['detail']['eventName']} in {event['account']}/{event['region']} → "
                  f"{out['disposition']}" + (f" ({out['reason']})" if out["reason"] else ""))
            if out["results"]:
                rows = [{"resource": inv.label(r["resource_id"]), "rule": r["rule_id"], "status": r["status"]}
                        for r in out["results"]]
                print(textwrap.indent(report.render_table(rows, ["resource", "rule", "status"]), "    "))

        _section("the daily sweep: SweepFunction queues (account, region) units, SweepWorkerFunction drains them")
        plan = invoke("SweepFunction", render_event("sweep/scheduled-sweep.json", {}))
        print(f"sweep {plan['sweep_id']}: {plan['accounts']} accounts x {len(plan['regions'])} regions = "
              f"{plan['units']} units queued")
        sqs = boto3.client("sqs")
        batch = int(template.parameter_values(template.load())["SweepBatchSize"])
        drained = drain(sqs, queue_url, lambda e: invoke("SweepWorkerFunction", e), batch_size=batch)
        table = boto3.resource("dynamodb").Table(TABLE)
        summary = SweepRecords(table, 30).get(plan["sweep_id"])
        assert summary is not None
        print(f"{drained.invocations} worker invocations, {drained.processed} units; summary: {summary.status}, "
              f"{summary.endpoints_seen} endpoints seen, statuses {summary.statuses}, "
              f"{summary.units_failed} units failed")

        after = inv.describe()
        _section("before → after, per endpoint: endpoint policy")
        rows = [{"endpoint": inv.label(eid), "before": policy_summary(before[eid].get("PolicyDocument")),
                 "after": policy_summary(after[eid].get("PolicyDocument"))} for eid in inv.where]
        print(report.render_table(rows, list(rows[0])))
        _section("before → after, per endpoint: route tables reached (gateway endpoints)")
        rows = [{"endpoint": inv.label(eid),
                 "before": _names(org.ec2(acc, reg), before[eid].get("RouteTableIds", [])),
                 "after": _names(org.ec2(acc, reg), after[eid].get("RouteTableIds", []))}
                for eid, (_, acc, reg) in inv.where.items() if before[eid]["VpcEndpointType"] == "Gateway"]
        print(report.render_table(rows, list(rows[0])))

        _section("before → after, per VPC: DNS (support, hostnames); interface endpoints with private DNS need both")
        dns_after = inv.vpc_dns()

        def onoff(v: tuple[bool, bool]) -> str:
            return f"support {'on' if v[0] else 'OFF'}, hostnames {'on' if v[1] else 'OFF'}"

        rows = [{"vpc": inv.label(v), "before": onoff(dns_before[v]), "after": onoff(dns_after[v])} for v in inv.vpcs]
        print(report.render_table(rows, list(rows[0])))

        _section("before → after, the endpoint service: who may connect, and whether a request must be accepted")
        service_after = service_state(org, service)
        print(report.render_table([{"service": inv.label(service.ids["service"]), "": k, "before": service_before[k],
                                    "after": service_after[k]} for k in service_before], ["service", "", "before",
                                                                                           "after"]))
        print("(removing the outside principals is opt-in: RemoveOutsidePrincipals=true; accepting a request is "
              "left to the service's owner)")

        ledger = Ledger(table)
        _section("ledger report: current state by account, region, rule and status (vpce-guard report)")
        state = report.findings(ledger, list(Status))
        print(report.render("findings", state, "table", summary=report.summarise(state), summary_only=True))
        _section("ledger report: remediations in this run (vpce-guard report remediations --since 1h)")
        fixed = report.activity(ledger, Status.REMEDIATED, since, datetime.now(UTC))
        print(report.render_table([{**r, "resource": inv.label(r["resource_id"])} for r in fixed],
                                  ["time", "account", "region", "resource", "rule_id", "trigger", "actor"]))
        open_now = [r for r in state if Status(r["status"]) in {Status.NON_COMPLIANT, Status.FAILED}]
        # Detect only by default: the outside principals stay until the owner (or RemoveOutsidePrincipals) acts.
        detect_only = [r for r in open_now if r["rule_id"] == "endpoint-service-allowed-principals"]
        still_open = [r for r in open_now if r not in detect_only]
        intake = ledger.intake(org.hub, REGION)
        by_sweep = sum(1 for r in fixed if r["trigger"] == SWEEP_TRIGGER_NAME)
        print(f"\n{len(fixed)} remediations ({by_sweep} by the sweep), "
              f"{len(still_open)} findings still open and {len(detect_only)} reported for a person to decide "
              f"(detect-only rules), {len(intake)} event(s) skipped before any rule ran "
              f"(failed API calls), {time.monotonic() - started:.0f} s")
        ok = (not still_open and len(detect_only) == 1 and service_after["acceptance"] == "required"
              and len(intake) == 1 and summary.status == "complete" and summary.units_failed == 0
              and all("VpceGuardDenyOutsideOrg" in (after[e].get("PolicyDocument") or "") or
                      before[e].get("PolicyDocument") == after[e].get("PolicyDocument") for e in inv.where))
    print("moto server stopped; nothing is left running.")
    print(NEXT_STEPS)
    return 0 if ok else 1


#: Printed at the end. Every line that starts with .venv/bin/vpce-guard runs as printed from the directory the
#: demo ran in (the sandbox writes the files the invoke line names); tests/e2e/test_demo.py runs each.
_TRY_INVOKE = (".venv/bin/vpce-guard invoke OnChangeFunction -e .local/sandbox/events/modify-vpc-endpoint.json "
               "--env-vars .local/sandbox/env.json")
NEXT_STEPS = f"""
Where to look next:
  .venv/bin/vpce-guard --help
      every command and its options
  .venv/bin/vpce-guard sandbox
      this world again, on a moto server that stays up until Ctrl-C; it writes .local/sandbox/env.json and
      .local/sandbox/events/ with its ids, and prints the commands to try against it, such as:
  {_TRY_INVOKE}
      (from another terminal, while the sandbox runs) the on-change function on one event, as SAM would run it
  README.md, docs/
      what each rule checks (docs/rules.md), deploying into an organization (docs/deploy.md), operating it
      (docs/operations.md), what it costs (docs/cost.md)"""


def register(commands: cli.Commands) -> None:
    """Add `demo` to a command line."""
    commands.add("demo", help="the story in a minute: seeded drift on a moto server this command starts and "
                              "stops, fixed by the real functions", description=__doc__, run=run, aws=False)


def main(argv: list[str] | None = None) -> int:
    """`python -m devkit.demo` is `vpce-guard demo`."""
    from devkit import cli as vpce_guard_cli

    return vpce_guard_cli.main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
