"""`make demo`: the story in under a minute, against a moto server this command starts and stops itself.

1. start moto, seed an organization and a VPC whose S3 gateway endpoint has AWS's default full-access
   policy and misses a route table;
2. send the CloudTrail events a user's change would produce through the real on-change handler, loaded
   exactly as template.yaml wires it;
3. print what was found, what changed (before → after) and the ledger records.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import boto3

from devkit import template
from devkit.caches import reset_process_caches
from devkit.lambda_context import LocalLambdaContext
from devkit.moto_server import moto_server
from devkit.seed import render_event, seed_vpc

REGION = "us-east-1"
TABLE = "vpce-guard-ledger"


def _short_policy(doc: str | None) -> str:
    if not doc:
        return "(default: full access)"
    parsed = json.loads(doc)
    stmts = parsed["Statement"] if isinstance(parsed["Statement"], list) else [parsed["Statement"]]
    return " + ".join(f"{s.get('Effect')}{'[' + s['Sid'] + ']' if s.get('Sid') else ''}" for s in stmts)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(out)


def main() -> int:
    with moto_server() as url:
        os.environ.update({
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_NAMESPACE": "VpceGuard", "POWERTOOLS_METRICS_DISABLED": "true",
        })
        os.environ.pop("AWS_PROFILE", None)
        print(f"moto server: {url}")
        org_id = boto3.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
        ec2 = boto3.client("ec2")
        world = seed_vpc(ec2, REGION, name="payments")
        template.create_table(boto3.client("dynamodb"), "LedgerTable", TABLE)
        print(f"seeded organization {org_id}; VPC {world.ids['vpc']} with S3 gateway endpoint "
              f"{world.ids['s3_endpoint']} (default policy, route table {world.ids['rt2']} and the main table "
              f"missing) and SSM interface endpoint {world.ids['ssm_endpoint']} (default policy)\n")

        def snapshot() -> dict[str, dict[str, Any]]:
            eps = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [world.ids["vpc"]]}])
            return {e["VpcEndpointId"]: e for e in eps["VpcEndpoints"]}

        before = snapshot()
        spec = template.function_spec("OnChangeFunction", resources={"LedgerTable": TABLE})
        os.environ.update(spec.environment)
        reset_process_caches()
        handler = spec.load_handler()

        for name in ("modify-vpc-endpoint.json", "create-vpc-endpoint.json", "modify-vpc-endpoint.json"):
            event = render_event(name, world.mapping())
            result = handler(event, LocalLambdaContext(function_name="OnChangeFunction"))
            print(f"event {name} ({event['detail']['eventName']} by {event['detail']['userIdentity']['arn']}):")
            rows = [[r["rule_id"], r["resource_id"], r["status"], r["reason"][:70]] for r in result["results"]]
            print(_table(rows, ["rule", "resource", "status", "reason"]) if rows else "  (nothing to evaluate)")
            print()

        after = snapshot()
        rows = []
        for eid, ep in sorted(before.items()):
            a = after[eid]
            rows.append([eid, ep["ServiceName"].rsplit(".", 1)[-1], _short_policy(ep.get("PolicyDocument")),
                         _short_policy(a.get("PolicyDocument")), ",".join(sorted(ep.get("RouteTableIds", []))) or "-",
                         ",".join(sorted(a.get("RouteTableIds", []))) or "-"])
        print("before → after, per endpoint:")
        print(_table(rows, ["endpoint", "service", "policy before", "policy after", "route tables before",
                            "route tables after"]))
        print()

        items = boto3.resource("dynamodb").Table(TABLE).scan()["Items"]
        history = sorted((i for i in items if i["sk"].startswith("EVAL#")), key=lambda i: i["sk"])
        print(f"ledger ({len(history)} evaluation records, table {TABLE}):")
        print(_table([[i["time"], i["resource_id"], i["rule_id"], i["status"],
                       i["trigger"].get("event_name", "-")] for i in history],
                     ["time", "resource", "rule", "status", "trigger"]))
        remediated = [i for i in history if i["status"] == "remediated"]
        if remediated:
            print("\nexample record with before/after:")
            print(json.dumps({k: v for k, v in remediated[0].items() if k != "actions"}, indent=2, default=str))
        print("\nnext: README.md (Reading the ledger) for the queries; `make test` for the suite.")
        ok = len(remediated) >= 2
    print("moto server stopped.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
