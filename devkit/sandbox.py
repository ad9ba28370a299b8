"""`make sandbox`: the demo's world on a moto server that stays up until Ctrl-C, to invoke by hand.

    python -m devkit.sandbox [--host 127.0.0.1] [--port 5000] [--dir .local/sandbox]

It seeds the hub of `make demo` (an organization, the payments and analytics VPCs with their drift, the
ledger table, the sweep's queues), writes every events/ file with the seeded ids to DIR/events/ and an
`--env-vars` file (DIR/env.json, SAM's format) that points the functions at this server, then prints the
commands to try. `--host 172.17.0.1` (the Docker bridge) makes it reachable from `sam local invoke`
containers as well as from this machine.
Ctrl-C (or SIGTERM) stops the server; nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import boto3

from devkit import demo, template
from devkit.moto_server import moto_server
from devkit.seed import event_files, render_event
from devkit.sqs import create_sweep_queues

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devkit.sandbox", description=__doc__.split("\n", 1)[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (172.17.0.1 for sam local containers)")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.add_argument("--dir", default=str(ROOT / ".local" / "sandbox"), help="where to write events/ and env.json")
    args = p.parse_args(argv)
    out = Path(args.dir).resolve()
    (out / "events").mkdir(parents=True, exist_ok=True)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with moto_server(host=args.host, port=args.port) as url:
        os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
                           "AWS_DEFAULT_REGION": demo.REGION})
        os.environ.pop("AWS_PROFILE", None)
        org_id = boto3.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
        payments, analytics = demo.seed_hub(boto3.client("ec2"), org_id)
        template.create_tables(boto3.client("dynamodb"), template.tables_for(demo.TABLE))
        template.create_messaging(boto3.Session(), template.messaging_for(demo.TABLE))
        queue_url, _ = create_sweep_queues(boto3.client("sqs"))
        for name in event_files():
            (out / "events" / name).write_text(json.dumps(render_event(name, payments.mapping()), indent=2) + "\n")
        names = {**template.tables_for(demo.TABLE), **template.messaging_for(demo.TABLE)}
        common = {**template.table_env(names), "AWS_ENDPOINT_URL": url}
        (out / "env.json").write_text(json.dumps(
            {demo.FUNCTION: common, "SweepFunction": {**common, "SWEEP_QUEUE_URL": queue_url},
             "SweepWorkerFunction": common}, indent=2) + "\n")
        rel = os.path.relpath(out, Path.cwd())
        invoke = (f"-m devkit.local invoke {demo.FUNCTION} -e {rel}/events/modify-vpc-endpoint.json "
                  f"--env-vars {rel}/env.json")
        sweep = (f"-m devkit.local invoke SweepFunction -e events/sweep/scheduled-sweep.json --env-vars {rel}/env.json "
                 f"--parameter-overrides OrganizationId={org_id} SpokeRegions={demo.REGION}")
        findings = (f"-m devkit.report --endpoint-url {url} --region {demo.REGION} --table {demo.TABLE} "
                    "findings --status all")
        print(f"""moto server {url}: organization {org_id}, VPCs payments ({payments.ids['vpc']}) and analytics
({analytics.ids['vpc']}), ledger table {demo.TABLE}. Events for the payments VPC are in {rel}/events/.

Try, from another terminal in {ROOT}:
  .venv/bin/python {invoke}
  .venv/bin/python {sweep}
  .venv/bin/python {findings}
Ctrl-C stops the server.
ready""", flush=True)
        stop.wait()
    print("moto server stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
