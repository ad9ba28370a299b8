"""`make rehearsal`: deploy the real hub and spoke templates into LocalStack, drift a member account, let the
deployed functions fix it, sweep once, tear everything down, and print what happened and what was stood in for.

Exit status: 0 when every check passed, 1 when one failed (the output says which, and which workaround if one
stopped working), 2 when the rehearsal cannot run here (no Docker engine, say), with the reason.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devkit import sam_local
from devkit.rehearsal import org_standin, scenario, stacks
from devkit.rehearsal.localstack import HOOK_WORKAROUNDS, PINNED_VERSION, LocalStack, LocalStackError
from devkit.seed import render_event, seed_vpc

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".local" / "rehearsal"
REGION = stacks.REGION
#: Waits for the deployed functions. A first invocation starts a container and unzips the layer (seconds);
#: these bound a hung step, they are not performance targets.
FIX_TIMEOUT = 240.0
SWEEP_TIMEOUT = 300.0

STOOD_IN = (
    ("AWS Organizations", "a moto server with one organization (hub = management account, one member), reached "
     "by the functions through AWS_ENDPOINT_URL_ORGANIZATIONS; the hub gets AllowedOrgIds, so only the sweep's "
     "ListAccounts goes there (LocalStack's community edition has no Organizations)"),
    ("StackSet roll-out", "templates/spoke.yaml deployed with `sam deploy` as a plain stack in the member account "
     "(LocalStack accepts the hub's AWS::CloudFormation::StackSet as a no-op)"),
    ("CloudTrail", "CloudTrail-shaped events (events/ files, the seeded ids, eventTime now) put on the member's "
     "default bus, through the spoke's forwarding rule to the hub bus, and directly on the hub bus"),
    ("Lambda runtime", "the local Debian + CPython 3.13 image (`make local-image`), LocalStack's init replaced by a "
     "stand-in that forwards to SAM CLI's stock aws-lambda-rie, layers unzipped into /opt by that stand-in"),
    ("Architecture", "x86_64 build and functions (Architecture=x86_64); the template's default, arm64, cannot run "
     "on this x86_64 host"),
    ("DynamoDB", "moto's DynamoDB server behind LocalStack's DynamoDB API (DynamoDB Local needs downloads)"),
    ("IAM", "roles and policies are created as written, but LocalStack does not enforce them (no AccessDenied, "
     "no aws:PrincipalOrgID condition checked)"),
)


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    ok: bool | None = None
    detail: str = ""


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    workarounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    fixed: list[tuple[str, str, str]] = field(default_factory=list)  # (resource, rule, ledger status)
    teardown: list[str] = field(default_factory=list)
    impossible: list[str] = field(default_factory=list)
    fix_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, ok, detail))
        print(f"  [{'ok' if ok else 'FAILED'}] {name}{': ' + detail if detail else ''}", flush=True)
        return ok

    @property
    def passed(self) -> bool:
        return (all(ok for _, ok, _ in self.checks) and all(s.ok is not False for s in self.steps)
                and all(w.get("ok") for w in self.workarounds.values()))

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        s = Step(name)
        self.steps.append(s)
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            yield s
            if s.ok is None:
                s.ok = True
        except Exception as exc:
            s.ok = False
            s.detail = s.detail or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            s.seconds = time.monotonic() - t0
            print(f"   {'done' if s.ok else 'FAILED'} in {s.seconds:.1f} s{' - ' + s.detail if s.detail else ''}",
                  flush=True)


class CannotRun(RuntimeError):
    """The rehearsal cannot run on this machine (exit 2)."""


def engine() -> tuple[str, str, bool]:
    """The Docker engine and image of `make local-image`: (DOCKER_HOST, bridge address, whether we started it)."""
    host = sam_local.docker_host()
    try:
        return host, sam_local.check_ready(host), False
    except sam_local.NotReady as first:
        if "engine" not in str(first) and "absent" not in str(first):
            raise CannotRun(str(first)) from None
    up = subprocess.run(["bash", str(sam_local.LOCAL_IMAGE_SCRIPT), "up"], capture_output=True, text=True,
                        check=False, timeout=1200)
    if up.returncode != 0:
        raise CannotRun(f"no Docker engine can start here: {(up.stderr.strip().splitlines() or ['?'])[-1]}")
    try:
        return host, sam_local.check_ready(host), True
    except sam_local.NotReady as exc:
        raise CannotRun(str(exc)) from None


def leftover_containers(host: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                         check=False, env={"DOCKER_HOST": host, "PATH": "/usr/local/bin:/usr/bin:/bin"})
    return [n for n in out.stdout.split() if n.startswith("localstack-")]


def remove_containers(host: str, names: list[str]) -> None:
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False,
                       env={"DOCKER_HOST": host, "PATH": "/usr/local/bin:/usr/bin:/bin"})


@dataclass
class Deployment:
    """What the phases after the deploy share: where LocalStack is, the organization, the hub's stack."""

    ls: LocalStack
    org: org_standin.Organization
    hub: stacks.Hub
    lam: Any = None
    ec2: Any = None  # the member account's
    ledger: Any = None  # the hub stack's ledger table

    def __post_init__(self) -> None:
        endpoint, hub_acct = self.ls.url, self.org.hub_account
        self.lam = stacks.session(hub_acct).client(
            "lambda", endpoint_url=endpoint, config=Config(read_timeout=900, retries={"max_attempts": 1}))
        self.ec2 = stacks.client(endpoint, self.org.member_account, "ec2")
        self.ledger = stacks.session(hub_acct).resource("dynamodb", endpoint_url=endpoint).Table(
            self.hub.outputs["LedgerTableName"])


def rehearse(report: Report, *, keep_engine: bool = False) -> None:
    """Every phase, in order; whatever was started is stopped on the way out, whatever happened."""
    with ExitStack() as cleanup:
        ls, org = start_services(report, cleanup, keep_engine=keep_engine)
        d = deploy(report, cleanup, ls, org)
        probe_function(report, d)
        events_phase(report, d)
        sweep_phase(report, d)


def start_services(report: Report, cleanup: ExitStack, *, keep_engine: bool) -> tuple[LocalStack, Any]:
    with report.step("preflight: Docker engine and the local Lambda image (make local-image)") as s:
        host, bridge, started_engine = engine()
        s.detail = f"{host}, bridge {bridge}{', started for this run' if started_engine else ''}"
    if started_engine and not keep_engine:
        cleanup.callback(stop_engine, report)

    with report.step("sam build (x86_64, cached when nothing changed)"):
        sam_local.build_x86_64()

    with report.step("Organizations stand-in (moto server on the bridge)") as s:
        org = cleanup.enter_context(org_standin.organization(bridge))
        cleanup.callback(report.teardown.append, "Organizations stand-in: stopped")
        s.detail = f"{org.org_id}, hub {org.hub_account}, member {org.member_account}"

    ls = LocalStack(STATE_DIR, host, bridge, lambda_env={"AWS_ENDPOINT_URL_ORGANIZATIONS": org.url})
    with report.step(f"LocalStack {PINNED_VERSION} (own virtualenv, Python 3.13) and its workarounds") as s:
        cleanup.callback(stop_localstack, report, ls)
        report.workarounds = ls.start()
        for name in HOOK_WORKAROUNDS:
            w = report.workarounds.setdefault(name, {"ok": False, "detail": "the hook did not report it"})
            report.check(f"workaround {name}", bool(w.get("ok")), str(w.get("detail")))
        broken = [n for n in HOOK_WORKAROUNDS if not report.workarounds[n].get("ok")]
        if broken:
            raise LocalStackError(f"workarounds not working: {broken} (see {ls.log_path})")
        s.detail = ls.url
    return ls, org


def stop_engine(report: Report) -> None:
    stop = subprocess.run(["bash", str(sam_local.LOCAL_IMAGE_SCRIPT), "stop"], capture_output=True, check=False,
                          timeout=120)
    report.teardown.append("Docker engine: " + ("stopped" if stop.returncode == 0 else "stop FAILED"))


def stop_localstack(report: Report, ls: LocalStack) -> None:
    ls.stop()
    left = leftover_containers(ls.docker_host)
    remove_containers(ls.docker_host, left)
    removed = f" (removed {len(left)} function containers it left)" if left else ""
    report.teardown.append(f"LocalStack: stopped{removed}")


def deploy(report: Report, cleanup: ExitStack, ls: LocalStack, org: Any) -> Deployment:
    endpoint, hub_acct, member = ls.url, org.hub_account, org.member_account
    deploy_log = STATE_DIR / "sam-deploy.log"
    with report.step("deploy the hub: sam deploy of template.yaml (built)") as s:
        secs = stacks.sam_deploy(endpoint, hub_acct, template=sam_local.BUILD_DIR / "template.yaml",
                                 stack=stacks.HUB_STACK, capabilities="CAPABILITY_IAM CAPABILITY_AUTO_EXPAND",
                                 parameters={
                                     "OrganizationId": org.org_id, "AllowedOrgIds": org.org_id,
                                     "OrgAccountIds": f"{hub_acct},{member}",
                                     "SpokeOrganizationalUnitIds": org.root_id, "SpokeRegions": REGION,
                                     "Architecture": "x86_64", "Mode": "enforce", "LogLevel": "INFO"},
                                 log=deploy_log)
        cleanup.callback(delete_stack, report, endpoint, hub_acct, stacks.HUB_STACK)
        hub = stacks.describe_hub(endpoint, hub_acct)
        s.detail = f"sam deploy {secs:.0f} s; {len(hub.functions)} functions"

    with report.step("deploy the spoke in the member account: sam deploy of templates/spoke.yaml") as s:
        secs = stacks.sam_deploy(endpoint, member, template=ROOT / "templates" / "spoke.yaml",
                                 stack=stacks.SPOKE_STACK, capabilities="CAPABILITY_NAMED_IAM",
                                 parameters={"OrganizationId": org.org_id, "HubAccountId": hub_acct,
                                             "HubEventBusArn": hub.outputs["HubEventBusArn"],
                                             "HubPrincipalArns": ",".join(hub.function_role_arns),
                                             "RoleRegion": REGION},
                                 log=deploy_log)
        cleanup.callback(delete_stack, report, endpoint, member, stacks.SPOKE_STACK)
        s.detail = f"sam deploy {secs:.0f} s"
    return Deployment(ls, org, hub)


def probe_function(report: Report, d: Deployment) -> None:
    with report.step("probe: one synchronous invocation of the deployed on-change function (cold start)") as s:
        ok, s.detail, blame = probe(d.lam, d.hub.functions["OnChangeFunction"], d.org.member_account, d.ls)
        report.workarounds["layers-into-opt"] = (
            {"ok": True, "detail": "the function imported vpce_guard, which only the layer holds"} if ok else
            {"ok": False, "detail": s.detail} if blame == "layers-into-opt" else
            {"ok": None, "detail": "not shown: the function did not get that far"})
        if blame and blame in report.workarounds:
            report.workarounds[blame] = {"ok": False, "detail": s.detail}
        report.check("the deployed function runs in its container with the built layer", ok,
                     s.detail if ok else f"{s.detail} (workaround {blame or '?'})")
        if not ok:
            raise RuntimeError(f"the deployed function does not run (workaround {blame or '?'}): {s.detail}")


def events_phase(report: Report, d: Deployment) -> None:
    org, member = d.org, d.org.member_account
    with report.step("seed drift in the member account") as s:
        world = seed_vpc(d.ec2, REGION, name="rehearsal", cidr="10.0.0.0/16", with_ssm=True)
        before = scenario.view(d.ec2, world)
        s.detail = (f"{world.ids['s3_endpoint']}: default policy (confined={before.confined_to(org.org_id)}), "
                    f"route tables {len(before.route_tables)}; {world.ids['vpc']}: DNS hostnames "
                    f"{before.dns_hostnames} under private DNS ({world.ids['ssm_endpoint']})")

    with report.step("CloudTrail-shaped events: via the spoke's forwarding rule, and on the hub bus") as s:
        member_events = stacks.client(d.ls.url, member, "events")
        sent = time.monotonic()
        via_rule = scenario.put(member_events, scenario.cloudtrail_entry(
            "modify-vpc-endpoint.json", world, account=member, bus="default"))
        direct = scenario.put(member_events, scenario.cloudtrail_entry(
            "modify-vpc-attribute.json", world, account=member, bus=d.hub.outputs["HubEventBusArn"]))
        s.detail = f"ModifyVpcEndpoint → member default bus ({via_rule}); ModifyVpcAttribute → hub bus ({direct})"

    with report.step("wait for the deployed on-change function to fix the drift") as s:
        def fixed() -> tuple[bool, str]:
            # Fixed in EC2, and the outcome recorded: a fix's `pending` intent is overwritten by its outcome once
            # the function has read the resource back.
            v = scenario.view(d.ec2, world)
            records = [ledger_record(d.ledger, member, res, rule, source="event")
                       for res, rule in expected_records(world, dns=True)]
            ok = (v.confined_to(org.org_id) and world.ids["rt2"] in v.route_tables and v.dns_hostnames
                  and all(closed and fixed for _, closed, fixed, _ in records))
            return ok, (f"policy confined={v.confined_to(org.org_id)}, route tables={len(v.route_tables)}, "
                        f"dns hostnames={v.dns_hostnames}, ledger states {[st for st, _, _, _ in records]}")

        done, seen, _ = scenario.wait_for(fixed, timeout=FIX_TIMEOUT, interval=0.5)
        report.fix_seconds = time.monotonic() - sent
        s.detail = f"all three fixed {report.fix_seconds:.1f} s after the events were put" if done else seen
        v = scenario.view(d.ec2, world)
        report.check("default endpoint policy replaced by one confined to the organization",
                     v.confined_to(org.org_id), v.policy[:200])
        report.check("gateway endpoint associated with the missing route table", world.ids["rt2"] in v.route_tables)
        report.check("VPC DNS hostnames turned on under private DNS", v.dns_hostnames)
        record_checks(report, d.ledger, member, world, source="event", dns=True)
        if not done:
            s.ok = False


def sweep_phase(report: Report, d: Deployment) -> None:
    org, member = d.org, d.org.member_account
    with report.step("scheduled sweep, run once by hand; the deployed worker drains its queue") as s:
        quiet = seed_vpc(d.ec2, REGION, name="rehearsal-sweep", cidr="10.1.0.0/16", with_ssm=False)
        out = d.lam.invoke(FunctionName=d.hub.functions["SweepFunction"], Payload=b"{}")
        payload = json.loads(out["Payload"].read() or b"{}")
        if out.get("FunctionError"):
            raise RuntimeError(f"SweepFunction failed: {payload}")
        sweep_id = payload["sweep_id"]

        def summary() -> tuple[bool, str]:
            item = d.ledger.get_item(Key={"pk": f"SWEEP#{sweep_id}", "sk": "SUMMARY"}).get("Item") or {}
            return item.get("status") == "complete", (
                f"status={item.get('status')}, units {item.get('units_done')}/{item.get('units_total')}, "
                f"failed {item.get('units_failed')}")

        done, seen, waited = scenario.wait_for(summary, timeout=SWEEP_TIMEOUT)
        s.detail = (f"sweep {sweep_id}: {payload.get('accounts')} accounts, regions {payload.get('regions')}; "
                    f"{seen} after {waited:.1f} s")
        report.check("sweep planned both accounts of the organization (ListAccounts through the stand-in)",
                     payload.get("accounts") == 2, json.dumps(payload))
        report.check("sweep complete, every unit counted by the deployed worker", done, seen)
        v = scenario.view(d.ec2, quiet)
        report.check("drift no event announced fixed by the sweep",
                     v.confined_to(org.org_id) and quiet.ids["rt2"] in v.route_tables,
                     f"{quiet.ids['s3_endpoint']}: confined={v.confined_to(org.org_id)}, "
                     f"route tables={len(v.route_tables)}")
        record_checks(report, d.ledger, member, quiet, source="sweep", dns=False)
        depth = scenario.queue_depths(stacks.client(d.ls.url, org.hub_account, "sqs"), {
            name.removesuffix("Url"): d.hub.outputs[name] for name in (
                "SweepQueueUrl", "SweepDeadLetterQueueUrl", "EventsDeadLetterQueueUrl", "AsyncFailuresQueueUrl")})
        report.check("sweep queue drained; nothing in the dead-letter and failure queues",
                     not any(depth.values()), ", ".join(f"{k}={n}" for k, n in depth.items()))


def probe(lam: Any, function: str, account: str, ls: LocalStack) -> tuple[bool, str, str | None]:
    """Invoke FUNCTION once with an event it rejects (an unknown event name: an intake record, no fix), and
    name the workaround to blame when it does not answer: (answered, what happened, workaround or None)."""
    event = render_event("invalid/unknown-event-name.json", {}, account=account, region=REGION)
    t0 = time.monotonic()
    try:
        out = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    except (ClientError, BotoCoreError) as exc:
        log = ls.tail(200)
        blame = "lambda-image-local" if ("pull" in log.lower() or "NoSuchImage" in log) else "lambda-init-standin"
        return False, f"Invoke failed: {exc}", blame
    body = out["Payload"].read().decode(errors="replace")
    seconds = time.monotonic() - t0
    if not out.get("FunctionError"):
        return True, f"answered in {seconds:.1f} s: {body[:160]}", None
    if "ImportModuleError" in body or "No module named" in body:
        return False, f"the handler cannot import its code: {body[:300]}", "layers-into-opt"
    if "InitStandIn" in body or "timed out" in body.lower():
        return False, f"the container did not run the handler: {body[:300]}", "lambda-init-standin"
    return False, f"the function failed: {body[:300]}", None


def delete_stack(report: Report, endpoint: str, account: str, stack: str) -> None:
    """Delete a deployed stack as an operator would; a refusal is a failed check (LocalStack's state goes when
    it stops either way)."""
    outcome = stacks.delete_stack(endpoint, account, stack)
    report.teardown.append(f"{stack} stack: {outcome}")
    blame = " (workaround cfn-list-parameter-on-delete)" if "Fn::Select" in outcome else ""
    report.check(f"stack {stack} deleted", outcome == "DELETE_COMPLETE", outcome + blame)


def expected_records(world: Any, *, dns: bool) -> list[tuple[str, str]]:
    """(resource, rule) pairs the seeded drift must end `remediated` for."""
    expected = [(world.ids["s3_endpoint"], "endpoint-policy-org-confined"),
                (world.ids["s3_endpoint"], "gateway-endpoint-route-tables")]
    if dns:
        expected.append((world.ids["vpc"], "private-dns-vpc-dns"))
    return expected


#: Current states that close a finding. Another event's run may re-check a fixed resource before the fixing
#: run's outcome is written, so the state of a fixed (resource, rule) can be `compliant` as well.
CLOSED = frozenset({"remediated", "compliant"})


def ledger_record(ledger: Any, account: str, resource: str, rule: str, *,
                  source: str) -> tuple[str, bool, bool, int]:
    """(current state, whether it is closed, whether a `remediated` history record was written on `source`,
    history items of the rule)."""
    status = scenario.ledger_states(ledger, account, REGION, resource).get(rule, "absent")
    history = [h for h in scenario.ledger_history(ledger, account, REGION, resource) if h.get("rule_id") == rule]
    fixed = any(h.get("status") == "remediated" and (h.get("trigger") or {}).get("source") == source
                for h in history)
    return status, status in CLOSED, fixed, len(history)


def record_checks(report: Report, ledger: Any, account: str, world: Any, *, source: str, dns: bool) -> None:
    """The ledger the stack created records each fix: a `remediated` history record written on the expected
    trigger (`event` by the on-change function, `sweep` by the worker), and a closed current state."""
    for resource, rule in expected_records(world, dns=dns):
        status, closed, fixed, n = ledger_record(ledger, account, resource, rule, source=source)
        report.fixed.append((resource, rule, status))
        report.check(f"ledger: {rule} on {resource} remediated on {source}, now {status}", closed and fixed,
                     f"{n} history items")


def print_summary(report: Report) -> None:
    total = time.monotonic() - report.started
    print()
    print(f"vpce-guard rehearsal on LocalStack {PINNED_VERSION}: {'PASSED' if report.passed else 'FAILED'} "
          f"in {total:.0f} s")
    print("  steps:")
    for s in report.steps:
        print(f"    {s.seconds:7.1f} s  {'ok    ' if s.ok else 'FAILED'}  {s.name}")
    failed = [(n, d) for n, ok, d in report.checks if not ok]
    print(f"  checks: {sum(ok for _, ok, _ in report.checks)}/{len(report.checks)} passed")
    for name, detail in failed:
        print(f"    FAILED  {name}{': ' + detail if detail else ''}")
    if report.fixed:
        print("  fixed by the deployed functions (current state in the ledger):")
        for resource, rule, status in report.fixed:
            print(f"    {resource:26} {rule:32} {status}")
    print("  stood in for:")
    for what, how in STOOD_IN:
        print(f"    - {what}: {how}")
    print(f"  workarounds (pinned to LocalStack {PINNED_VERSION}):")
    for name in (*HOOK_WORKAROUNDS, "layers-into-opt"):
        w = report.workarounds.get(name, {"ok": None, "detail": "not reached"})
        print(f"    - {name}: {'working' if w.get('ok') else 'NOT WORKING' if w.get('ok') is False else 'not reached'}"
              f" ({w.get('detail')})")
    for line in report.impossible:
        print(f"  not possible here: {line}")
    print("  teardown: " + ("; ".join(report.teardown) or "nothing was started"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--keep-engine", action="store_true",
                   help="leave the Docker engine running if this run started it (faster next time)")
    args = p.parse_args(argv)
    report = Report()
    code = 0
    try:
        rehearse(report, keep_engine=args.keep_engine)
    except CannotRun as exc:
        print(f"rehearsal cannot run here: {exc}", file=sys.stderr)
        report.impossible.append(str(exc))
        code = 2
    except Exception as exc:  # every failure ends in the summary, after the teardown ran
        report.check("rehearsal ran to the end", False, f"{type(exc).__name__}: {exc}")
    print_summary(report)
    if code:
        return code
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
