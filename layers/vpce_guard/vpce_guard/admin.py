"""Operator commands: exemptions, clearing a flapping resource, rollback, upgrading the ledger. They run with
the operator's own credentials (the functions cannot write exemptions; only principals allowed by the table's
policy can), print JSON, and are subcommands of `vpce-guard` (devkit/cli.py), or, where only the layer is installed:

    python -m vpce_guard.admin [--region R] [--profile P] [--stack S | --ledger-table T --exemptions-table T] \\
        exemptions add --scope vpc --target vpc-0abc… --account 111122223333 \\
        --rule endpoint-policy-org-confined --reason "vendor appliance needs open S3" --owner team-net --days 30
    python -m vpce_guard.admin exemptions list [--account 111122223333] [--include-expired]
    python -m vpce_guard.admin exemptions expire --scope vpc --target vpc-0abc… --account 111122223333 \\
        --rule endpoint-policy-org-confined
    python -m vpce_guard.admin flapping clear --account … --resource-region … --resource-id vpce-… --rule … --reason …
    python -m vpce_guard.admin rollback --account … --resource-region … --resource-id vpce-… --record-sk 'EVAL#…'
    python -m vpce_guard.admin ledger upgrade

`--region` is the hub's region (where the tables are); `--resource-region` the resource's (default: --region).
Tables: --ledger-table / --exemptions-table, else the stack's outputs (--stack), else LEDGER_TABLE /
EXEMPTIONS_TABLE, else the outputs of the stack "vpce-guard". Exit code 3: a rollback ran and was refused or
failed (its JSON says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from . import aws, cli, flapping, rollback
from .config import Settings
from .exemptions import ALL_RULES, MAX_DAYS, Exemption, ExemptionRegistry, Scope
from .ledger import Ledger

#: A rollback ran and was refused, or failed: its JSON says why.
EXIT_ROLLBACK_NOT_DONE = 3


def _now() -> datetime:
    return datetime.now(UTC)


def _operator(session: boto3.Session) -> str:
    return str(session.client("sts", config=aws.RETRY_CONFIG).get_caller_identity()["Arn"])


def _table(ctx: cli.Context, kind: str) -> Any:
    return ctx.session().resource("dynamodb", config=aws.RETRY_CONFIG).Table(ctx.table(kind))


def _print(ctx: cli.Context, out: Any) -> None:
    print(json.dumps(out, indent=2, default=str), file=ctx.out)


def _expiry(args: Any, now: datetime) -> int:
    if args.expires:
        try:
            when = datetime.fromisoformat(args.expires)
        except ValueError:
            raise cli.UsageError(f"--expires {args.expires!r}: not an ISO date or time (e.g. 2026-06-30)") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        when = now + timedelta(days=args.days)
    if when <= now:
        raise cli.UsageError("the expiry must be in the future (--days or --expires)")
    if when > now + timedelta(days=MAX_DAYS):
        raise cli.UsageError(f"exemptions last at most {MAX_DAYS} days; add a new one when it runs out")
    return int(when.timestamp())


def _scoped_account(args: Any) -> str | None:
    return None if args.scope in (Scope.ACCOUNT, Scope.OU) else args.account


def _exemptions_add(ctx: cli.Context) -> None:
    args, now = ctx.args, _now()
    expires_at = _expiry(args, now)
    registry = ExemptionRegistry(_table(ctx, "exemptions"))
    exemption = Exemption(
        scope=Scope(args.scope), target=args.target, account=_scoped_account(args), rule_id=args.rule,
        reason=args.reason, owner=args.owner, expires_at=expires_at, created_at=now.isoformat(),
        created_by=_operator(ctx.session()), tag_request=args.tag_request)
    registry.put(exemption)
    _print(ctx, {"added": exemption.summary()})


def _exemptions_expire(ctx: cli.Context) -> None:
    args = ctx.args
    registry = ExemptionRegistry(_table(ctx, "exemptions"))
    current = registry.get(Scope(args.scope), args.target, args.rule, _scoped_account(args))
    if current is None:
        raise cli.CliError(f"no {args.scope} exemption for {args.target} and rule {args.rule!r}: "
                           "`exemptions list --include-expired` shows what there is")
    _print(ctx, {"expired": registry.expire(current, now=_now(), by=_operator(ctx.session())).summary()})


def _exemptions_list(ctx: cli.Context) -> None:
    args, now = ctx.args, _now()
    entries = ExemptionRegistry(_table(ctx, "exemptions")).list(args.account)
    _print(ctx, {"exemptions": [dict(e.summary(), active=e.active(now)) for e in entries
                                if args.include_expired or e.active(now)]})


def _resource_region(ctx: cli.Context) -> str:
    return str(ctx.args.resource_region or ctx.session().region_name)


def _flapping_clear(ctx: cli.Context) -> None:
    args = ctx.args
    ledger = Ledger(_table(ctx, "ledger"))
    record = flapping.reset_record(account=args.account, region=_resource_region(ctx), resource_id=args.resource_id,
                                   rule_id=args.rule, operator=_operator(ctx.session()), reason=args.reason,
                                   ttl_days=args.ttl_days, now=_now())
    ledger.write([record])
    _print(ctx, {"cleared": {"resource_id": args.resource_id, "rule_id": args.rule, "ledger_sk": record.sk},
                 "note": "the next event or sweep fixes the resource again if it is still non-compliant"})


def _rollback(ctx: cli.Context) -> int:
    from .pipeline import Runtime

    args, session = ctx.args, ctx.session()
    env = {**os.environ, "LEDGER_TABLE": ctx.table("ledger")}
    try:
        env["EXEMPTIONS_TABLE"] = ctx.table("exemptions")
    except cli.CliError:
        env.pop("EXEMPTIONS_TABLE", None)  # a rollback does not need the registry; its warning then says less
    rt = Runtime(Settings.from_env(env), aws.SessionFactory(base_session=session))
    request = rollback.RollbackRequest(account=args.account, region=_resource_region(ctx),
                                       resource_id=args.resource_id, record_sk=args.record_sk,
                                       requested_by=_operator(session), reason=args.reason)
    out = rollback.run(rt, request).summary()
    _print(ctx, out)
    return EXIT_ROLLBACK_NOT_DONE if out.get("status") in (rollback.REFUSED, rollback.FAILED) else 0


def _ledger_upgrade(ctx: cli.Context) -> None:
    counts = Ledger(_table(ctx, "ledger")).index_open_states()
    _print(ctx, {**counts, "note": "open findings written by vpce-guard 0.1.0 are now in the open-by-place index, "
                                   "so sweeps close those they no longer see; running this again changes nothing"})


def register(commands: cli.Commands) -> None:
    """Add `exemptions`, `flapping`, `rollback` and `ledger` to a command line."""
    ex = commands.add("exemptions", help="add, list or expire exemptions (the registry in the hub)", tables=True)
    actions = cli.Commands(ex, dest="action", title="actions")
    for name, run, what in (("add", _exemptions_add, "add (or renew) an exemption: matching resources are "
                                                      "recorded `exempt` instead of fixed, until it expires"),
                            ("expire", _exemptions_expire, "end an exemption now (it stays listed as expired)")):
        a = actions.add(name, help=what, run=run, tables=True)
        a.add_argument("--scope", required=True, choices=[s.value for s in Scope],
                       help="what the exemption covers: one resource, a VPC, an account or an OU")
        a.add_argument("--target", required=True, help="the resource id, VPC id, account id or OU id")
        a.add_argument("--account", help="the account of a resource or VPC (scopes resource and vpc)")
        a.add_argument("--rule", default=ALL_RULES, help="rule id, or * for every rule (default: *)")
        if name == "add":
            a.add_argument("--reason", required=True, help="why, for whoever reads the ledger later "
                                                           "(a change or ticket number helps)")
            a.add_argument("--owner", required=True, help="who answers for the exemption (a team or a person)")
            when = a.add_mutually_exclusive_group(required=True)
            when.add_argument("--expires", help="when it ends: ISO date or time (UTC unless it says otherwise)")
            when.add_argument("--days", type=int, help=f"how many days it lasts (at most {MAX_DAYS})")
            a.add_argument("--tag-request", action="store_true",
                           help="apply only to resources whose owner set the exemption tag (vpce-guard:exempt)")
    ls = actions.add("list", help="the exemptions in force (JSON)", run=_exemptions_list, tables=True)
    ls.add_argument("--account", help="only this account's exemptions")
    ls.add_argument("--include-expired", action="store_true", help="list expired ones too")

    fl = commands.add("flapping", help="clear a flapping (resource, rule), so the next event or sweep fixes it",
                      tables=True)
    clear = cli.Commands(fl, dest="action", title="actions").add(
        "clear", help="record that an operator cleared the flapping state", run=_flapping_clear, tables=True)
    clear.add_argument("--account", required=True, help="the resource's account")
    clear.add_argument("--resource-region", help="the resource's region (default: --region)")
    clear.add_argument("--resource-id", required=True, help="the flapping resource (vpce-…, rtb-…, vpc-…)")
    clear.add_argument("--rule", required=True, help="the rule it flaps on, e.g. endpoint-policy-org-confined")
    clear.add_argument("--reason", required=True, help="why fixing may resume (recorded in the ledger)")
    clear.add_argument("--ttl-days", type=int, default=400, help="days the record stays in the ledger (400)")

    rb = commands.add("rollback", help="restore the before-state of one recorded remediation", tables=True,
                      run=_rollback, description="Restore the before-state of one recorded remediation. Refuses "
                      "(exit code 3) when the resource changed since, the record is not a remediation, or the "
                      "resource is gone; the JSON says why.")
    rb.add_argument("--account", required=True, help="the resource's account")
    rb.add_argument("--resource-region", help="the resource's region (default: --region)")
    rb.add_argument("--resource-id", required=True, help="the resource to restore (vpce-…)")
    rb.add_argument("--record-sk", required=True, help="the sk of the remediation's ledger record ('EVAL#…'; "
                                                       "`vpce-guard report history` shows it)")
    rb.add_argument("--reason", help="why, recorded with the rollback")

    lg = commands.add("ledger", help="maintain the ledger table (once after an upgrade)", tables=True)
    cli.Commands(lg, dest="action", title="actions").add(
        "upgrade", help="bring a ledger written by an earlier version up to this one (safe to run again)",
        run=_ledger_upgrade, tables=True,
        description="Bring a ledger written by an earlier version up to this one: open findings recorded by "
                    "vpce-guard 0.1.0 join the open-by-place index, so sweeps close those they no longer see. Reads "
                    "only the open findings (by-status index), never scans; safe to run again; prints JSON counts.")


def parser(prog: str = "python -m vpce_guard.admin") -> cli.Parser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n\n")[0],
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(p, top=True, tables=True)
    register(cli.Commands(p))
    return p


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> int:
    return cli.run(parser(), argv, session=session)


if __name__ == "__main__":
    sys.exit(main())
