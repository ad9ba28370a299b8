"""`vpce-guard sandbox`: the demo's world on a moto server that stays up until Ctrl-C, to invoke by hand.

    vpce-guard sandbox [--host 127.0.0.1] [--port 5000] [--dir .local/sandbox]
    (also: make sandbox, python -m devkit.sandbox)

It seeds the hub of `vpce-guard demo` (an organization, the payments and analytics VPCs with their drift, the
ledger table, the sweep's queues), writes every events/ file with the seeded ids to DIR/events/, an
`--env-vars` file (DIR/env.json, SAM's format) that points the functions at this server, and DIR/env.sh, which a
shell sources to make the sandbox its AWS (`. .local/sandbox/env.sh`: then `vpce-guard report`, `exemptions`…
need no options); then prints commands that run as printed from the directory it was started in
(tests/e2e/test_sandbox.py runs each). `--host 172.17.0.1` (the Docker bridge) makes it reachable from
`sam local invoke` containers as well as from this machine.
Ctrl-C (or SIGTERM) stops the server; nothing is left running.
"""

from __future__ import annotations

import json
import os
import shlex
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
from vpce_guard import cli

#: Relative to the directory the sandbox is started in, like the commands it prints.
DEFAULT_DIR = Path(".local") / "sandbox"
SWEEP_EVENT = "sweep/scheduled-sweep.json"
#: The sweep's queue (devkit.sqs.create_sweep_queues), which SweepWorkerFunction drains.
QUEUE = "vpce-guard-sweep"


def commands(*, rel: str, url: str) -> list[str]:
    """What the sandbox prints to try, each runnable as printed from the directory it started in: the on-change
    function on an event, the sweep (it queues one unit), the sweep worker on the queued unit, the ledger."""
    env_vars = f"--env-vars {rel}/env.json"
    return [
        f".venv/bin/vpce-guard invoke {demo.FUNCTION} -e {rel}/events/modify-vpc-endpoint.json {env_vars}",
        f".venv/bin/vpce-guard invoke SweepFunction -e {rel}/events/{SWEEP_EVENT} {env_vars}",
        f".venv/bin/vpce-guard invoke SweepWorkerFunction --from-queue {QUEUE} {env_vars}",
        f".venv/bin/vpce-guard report --endpoint-url {url} --region {demo.REGION} --ledger-table {demo.TABLE} "
        "findings --status all",
    ]


def shell_environment(url: str, tables: dict[str, str]) -> str:
    """A file to source in a shell: the sandbox as the AWS of every command run there."""
    values = {"AWS_ENDPOINT_URL": url, "AWS_REGION": demo.REGION, "AWS_DEFAULT_REGION": demo.REGION,
              "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", **tables}
    lines = ["# The vpce-guard sandbox as the AWS of this shell: `. .local/sandbox/env.sh` (written by",
             "# `vpce-guard sandbox`; a new sandbox writes a new one).", "unset AWS_PROFILE AWS_SESSION_TOKEN",
             *(f"export {name}={shlex.quote(value)}" for name, value in values.items())]
    return "\n".join(lines) + "\n"


def run(ctx: cli.Context) -> int:
    args = ctx.args
    out = Path(args.dir).resolve()
    (out / "events" / "sweep").mkdir(parents=True, exist_ok=True)

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
        names = {**template.tables_for(demo.TABLE), **template.messaging_for(demo.TABLE)}
        queue_url, _ = create_sweep_queues(boto3.client("sqs"), name=QUEUE)
        for name in [*event_files(), SWEEP_EVENT]:
            (out / "events" / name).write_text(json.dumps(render_event(name, payments.mapping()), indent=2) + "\n")
        common = {**template.table_env(names), "AWS_ENDPOINT_URL": url}
        # The sweep covers the sandbox's region (in a deployment, SWEEP_REGIONS comes from SpokeRegions).
        sweep = {**common, "SWEEP_QUEUE_URL": queue_url, "SWEEP_REGIONS": demo.REGION}
        (out / "env.json").write_text(json.dumps(
            {demo.FUNCTION: common, "SweepFunction": sweep, "SweepWorkerFunction": common,
             "RollbackFunction": common}, indent=2) + "\n")
        # For a terminal of one's own: `. .local/sandbox/env.sh`, then every vpce-guard command talks to the
        # sandbox (its endpoint, region, placeholder credentials and tables) without options.
        (out / "env.sh").write_text(shell_environment(url, template.table_env(names)))
        rel = os.path.relpath(out, Path.cwd())
        tries = "\n".join(f"  {c}" for c in commands(rel=rel, url=url))
        print(f"""moto server {url}: organization {org_id}, VPCs payments ({payments.ids['vpc']}) and analytics
({analytics.ids['vpc']}), ledger table {demo.TABLE}. Events for the payments VPC are in {rel}/events/,
the functions' --env-vars file is {rel}/env.json.

Try, from another terminal in {Path.cwd()}:
{tries}
Ctrl-C stops the server.
ready""", flush=True)
        stop.wait()
    print("moto server stopped.", flush=True)
    return 0


def register(commands: cli.Commands) -> None:
    """Add `sandbox` to a command line."""
    s = commands.add("sandbox", help="the demo's world on a moto server that stays up (Ctrl-C stops it), with "
                                     "the files and commands to invoke the functions by hand",
                     description=__doc__, run=run, aws=False)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (172.17.0.1 for sam local containers)")
    s.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    s.add_argument("--dir", default=str(DEFAULT_DIR), help=f"where to write events/ and env.json (default: "
                                                           f"{DEFAULT_DIR}, under the current directory)")


def main(argv: list[str] | None = None) -> int:
    """`python -m devkit.sandbox` is `vpce-guard sandbox`."""
    from devkit import cli as vpce_guard_cli

    return vpce_guard_cli.main(["sandbox", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
