"""`make demo`: the story in under a minute, against a moto server this command starts and stops itself.

1. start moto; seed an organization and VPCs with the drift people really cause: AWS's default
   "allow everything" endpoint policy, a vendor account let in through a DynamoDB endpoint, gateway
   endpoints that never reached some of their VPC's route tables;
2. send the CloudTrail events those changes produce through the real on-change handler, run exactly as
   `sam local invoke` would run it (devkit.local: template.yaml's environment, SAM's precedence rules);
3. print, per resource, what it was before and what it is now; then the ledger report
   (`python -m devkit.report`) of what is still open and what was fixed;
4. stop the server (nothing is left running) and say where to look next.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from devkit import local, report, template
from devkit.moto_server import moto_server
from devkit.seed import PLACEHOLDERS, SpineWorld, confined_policy, render_event, seed_vpc
from vpce_guard.ledger import Ledger
from vpce_guard.models import Status

REGION = "us-east-1"
TABLE = "vpce-guard-ledger"
VENDOR_ACCOUNT = "444455556666"
FUNCTION = "OnChangeFunction"


def _principals(stmt: dict[str, Any]) -> str:
    p = stmt.get("Principal", "*")
    if p in ("*", {"AWS": "*"}):
        return "*"
    values = p.get("AWS", p.get("Service", "")) if isinstance(p, dict) else p
    values = values if isinstance(values, list) else [values]
    return ",".join(v.split(":")[4] if v.startswith("arn:") else v for v in values)


def policy_summary(doc: str | None) -> str:
    """A policy in a few words: `Allow * ` for AWS's default, the Sid of our Deny when it is there."""
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
    tables = ec2.describe_route_tables(RouteTableIds=route_table_ids)["RouteTables"]
    names = []
    for t in tables:
        tag = {x["Key"]: x["Value"] for x in t.get("Tags", [])}.get("Name", "")
        main = any(a.get("Main") for a in t.get("Associations", []))
        names.append(tag.split("-", 1)[-1] if tag else ("main" if main else t["RouteTableId"]))
    return ", ".join(sorted(names))


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 100 - len(title)))


def seed(ec2: Any, org_id: str) -> tuple[SpineWorld, SpineWorld]:
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


def main() -> int:
    started = time.monotonic()
    with moto_server() as url:
        os.environ.update({
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
        })
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        print(f"moto server: {url} (started by this demo, stopped at the end)")
        org_id = boto3.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
        ec2 = boto3.client("ec2")
        payments, analytics = seed(ec2, org_id)
        template.create_table(boto3.client("dynamodb"), "LedgerTable", TABLE)
        endpoints = {
            payments.ids["s3_endpoint"]: "payments/s3", payments.ids["ssm_endpoint"]: "payments/ssm",
            analytics.ids["s3_endpoint"]: "analytics/s3", analytics.ids["ddb_endpoint"]: "analytics/dynamodb",
        }
        print(f"organization {org_id}; hub account 123456789012; VPCs payments ({payments.ids['vpc']}) and "
              f"analytics ({analytics.ids['vpc']}) with {len(endpoints)} endpoints")

        def describe() -> dict[str, dict[str, Any]]:
            found = ec2.describe_vpc_endpoints(VpcEndpointIds=list(endpoints))["VpcEndpoints"]
            return {e["VpcEndpointId"]: e for e in found}

        before = describe()
        since = datetime.now(UTC) - timedelta(seconds=1)

        def refused(event: dict[str, Any]) -> None:
            event["detail"].update(errorCode="AccessDenied", errorMessage="not authorized to perform this operation")

        stories: list[tuple[str, str, str, dict[str, str], Callable[[dict[str, Any]], None] | None]] = [
            ("alice put AWS's default policy back on the payments S3 endpoint", "NetworkAdmin/alice",
             "modify-vpc-endpoint.json", payments.mapping(), None),
            ("a pipeline created the payments SSM endpoint with the default policy", "terraform-deployer/ci",
             "create-vpc-endpoint.json",
             {**payments.mapping(), PLACEHOLDERS["s3_endpoint"]: payments.ids["ssm_endpoint"]}, None),
            ("bob moved a subnet of analytics onto another route table", "NetworkAdmin/bob",
             "associate-route-table.json", analytics.mapping(), None),
            ("mallory tried to change the analytics S3 endpoint; AWS refused the call", "Developer/mallory",
             "modify-vpc-endpoint.json", analytics.mapping(), refused),
        ]
        _section("CloudTrail events → the on-change function (as `sam local invoke` runs it, no container)")
        for title, actor, name, mapping, mutate in stories:
            event = render_event(name, mapping)
            event = json.loads(json.dumps(event).replace("NetworkAdmin/alice", actor))
            if mutate:
                mutate(event)
            result = local.invoke(FUNCTION, event, env_vars={FUNCTION: {"LEDGER_TABLE": TABLE}})
            if not result.ok:
                print(f"  {title}: the handler failed: {result.error}")
                return 1
            out = result.payload
            print(f"* {title}\n  {event['detail']['eventName']} → {out['disposition']}"
                  + (f" ({out['reason']})" if out["reason"] else ""))
            for r in out["results"]:
                print(f"    {endpoints.get(r['resource_id'], r['resource_id']):<20} {r['rule_id']:<32} {r['status']}")

        after = describe()
        _section("before → after, per endpoint: endpoint policy")
        rows = [{"endpoint": endpoints[eid], "id": eid, "before": policy_summary(before[eid].get("PolicyDocument")),
                 "after": policy_summary(after[eid].get("PolicyDocument"))} for eid in endpoints]
        print(report.render_table(rows, list(rows[0])))
        _section("before → after, per endpoint: route tables reached (gateway endpoints)")
        rows = [{"endpoint": endpoints[eid], "before": _names(ec2, before[eid].get("RouteTableIds", [])),
                 "after": _names(ec2, after[eid].get("RouteTableIds", []))}
                for eid in endpoints if before[eid]["VpcEndpointType"] == "Gateway"]
        print(report.render_table(rows, list(rows[0])))

        ledger = Ledger(boto3.resource("dynamodb").Table(TABLE))
        _section("ledger report: current state by account, region, rule and status (python -m devkit.report)")
        state = report.findings(ledger, list(Status))
        print(report.render("findings", state, "table", summary=report.summarise(state), summary_only=True))
        _section("ledger report: remediations in this run (python -m devkit.report remediations --since 1h)")
        fixed = report.activity(ledger, Status.REMEDIATED, since, datetime.now(UTC))
        print(report.render_table(fixed, ["time", "resource_id", "rule_id", "trigger", "actor"]))
        still_open = [r for r in state if Status(r["status"]) in {Status.NON_COMPLIANT, Status.FAILED}]
        intake = ledger.intake("123456789012", REGION)
        print(f"\n{len(fixed)} remediations, {len(still_open)} findings still open, "
              f"{len(intake)} event(s) skipped before any rule ran (failed API calls), "
              f"{time.monotonic() - started:.0f} s")
        ok = len(fixed) >= 5 and not still_open and len(intake) == 1
    print("moto server stopped; nothing is left running.")
    print("""
Where to look next:
  README.md                      what each rule checks, how to deploy into an organization, operations
  python -m devkit.local invoke OnChangeFunction -e events/modify-vpc-endpoint.json --env-vars env.json
                                 the same handler against your own account (--profile, --region) or a moto server
  make report                    this report against a deployed ledger (ARGS="remediations --since 7d")
  make local-invoke              the same event through `sam local invoke` in a Lambda container
  make test                      the whole suite""")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
