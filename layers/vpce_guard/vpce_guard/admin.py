"""Operator commands: exemptions, clearing a flapping resource, rollback. Run with the operator's own
credentials (the functions cannot write exemptions; only principals allowed by the table's policy can):

    python -m vpce_guard.admin exemptions add --scope vpc --target vpc-0abc… --account 111122223333 \\
        --rule endpoint-policy-org-confined --reason "vendor appliance needs open S3" --owner team-net --days 30
    python -m vpce_guard.admin exemptions list [--account 111122223333] [--include-expired]
    python -m vpce_guard.admin exemptions expire --scope vpc --target vpc-0abc… --account 111122223333 \\
        --rule endpoint-policy-org-confined
    python -m vpce_guard.admin flapping clear --account … --region … --resource-id vpce-… --rule … --reason …
    python -m vpce_guard.admin rollback --account … --region … --resource-id vpce-… --record-sk 'EVAL#…'

Tables come from --exemptions-table / --ledger-table or the EXEMPTIONS_TABLE / LEDGER_TABLE environment
variables (the stack's outputs ExemptionsTableName and LedgerTableName). Output is JSON.
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
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from . import aws, flapping, rollback
from .config import ConfigError, Settings
from .exemptions import ALL_RULES, MAX_DAYS, Exemption, ExemptionRegistry, Scope
from .ledger import Ledger


def _now() -> datetime:
    return datetime.now(UTC)


def _operator(session: boto3.Session) -> str:
    return str(session.client("sts", config=aws.RETRY_CONFIG).get_caller_identity()["Arn"])


def _table(session: boto3.Session, name: str | None, env: str) -> Any:
    name = name or os.environ.get(env, "")
    if not name:
        raise SystemExit(f"no table: pass --{env.lower().replace('_', '-')} or set {env}")
    return session.resource("dynamodb", config=aws.RETRY_CONFIG).Table(name)


def _expiry(args: argparse.Namespace, now: datetime) -> int:
    if args.expires:
        when = datetime.fromisoformat(args.expires)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        when = now + timedelta(days=args.days)
    if when <= now:
        raise SystemExit("the expiry must be in the future")
    if when > now + timedelta(days=MAX_DAYS):
        raise SystemExit(f"exemptions last at most {MAX_DAYS} days; add a new one when it runs out")
    return int(when.timestamp())


def _exemptions(args: argparse.Namespace, session: boto3.Session) -> Any:
    registry = ExemptionRegistry(_table(session, args.exemptions_table, "EXEMPTIONS_TABLE"))
    now = _now()
    if args.action == "add":
        exemption = Exemption(
            scope=Scope(args.scope), target=args.target,
            account=None if args.scope in (Scope.ACCOUNT, Scope.OU) else args.account,
            rule_id=args.rule, reason=args.reason, owner=args.owner, expires_at=_expiry(args, now),
            created_at=now.isoformat(), created_by=_operator(session), tag_request=args.tag_request)
        registry.put(exemption)
        return {"added": exemption.summary()}
    if args.action == "expire":
        current = registry.get(Scope(args.scope), args.target, args.rule,
                               None if args.scope in (Scope.ACCOUNT, Scope.OU) else args.account)
        if current is None:
            raise SystemExit("no such exemption")
        return {"expired": registry.expire(current, now=now, by=_operator(session)).summary()}
    entries = registry.list(args.account)
    return {"exemptions": [dict(e.summary(), active=e.active(now)) for e in entries
                           if args.include_expired or e.active(now)]}


def _flapping(args: argparse.Namespace, session: boto3.Session) -> Any:
    ledger = Ledger(_table(session, args.ledger_table, "LEDGER_TABLE"))
    record = flapping.reset_record(account=args.account, region=args.region, resource_id=args.resource_id,
                                   rule_id=args.rule, operator=_operator(session), reason=args.reason,
                                   ttl_days=args.ttl_days, now=_now())
    ledger.write([record])
    return {"cleared": {"resource_id": args.resource_id, "rule_id": args.rule, "ledger_sk": record.sk},
            "note": "the next event or sweep fixes the resource again if it is still non-compliant"}


def _rollback(args: argparse.Namespace, session: boto3.Session) -> Any:
    from .pipeline import Runtime

    env = {**os.environ}
    if args.ledger_table:
        env["LEDGER_TABLE"] = args.ledger_table
    if args.exemptions_table:
        env["EXEMPTIONS_TABLE"] = args.exemptions_table
    rt = Runtime(Settings.from_env(env), aws.SessionFactory(base_session=session))
    request = rollback.RollbackRequest(account=args.account, region=args.region, resource_id=args.resource_id,
                                       record_sk=args.record_sk, requested_by=_operator(session), reason=args.reason)
    return rollback.run(rt, request).summary()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vpce_guard.admin", description=__doc__.split("\n\n")[0])
    p.add_argument("--exemptions-table")
    p.add_argument("--ledger-table")
    p.add_argument("--hub-region", help="AWS region of the hub tables (default: your configuration)")
    sub = p.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("exemptions", help="add, list or expire exemptions")
    ex_sub = ex.add_subparsers(dest="action", required=True)
    for name in ("add", "expire"):
        a = ex_sub.add_parser(name)
        a.add_argument("--scope", required=True, choices=[s.value for s in Scope])
        a.add_argument("--target", required=True, help="resource id, VPC id, account id or OU id")
        a.add_argument("--account", help="account of a resource or VPC")
        a.add_argument("--rule", default=ALL_RULES, help="rule id, or * for all rules (default)")
        if name == "add":
            a.add_argument("--reason", required=True)
            a.add_argument("--owner", required=True)
            when = a.add_mutually_exclusive_group(required=True)
            when.add_argument("--expires", help="ISO date or time (UTC unless it says otherwise)")
            when.add_argument("--days", type=int)
            a.add_argument("--tag-request", action="store_true",
                           help="apply only to resources whose owner set the exemption tag")
    ls = ex_sub.add_parser("list")
    ls.add_argument("--account")
    ls.add_argument("--include-expired", action="store_true")

    fl = sub.add_parser("flapping", help="clear a flapping (resource, rule)")
    fl_sub = fl.add_subparsers(dest="action", required=True)
    clear = fl_sub.add_parser("clear")
    for arg in ("--account", "--region", "--resource-id", "--rule", "--reason"):
        clear.add_argument(arg, required=True)
    clear.add_argument("--ttl-days", type=int, default=400)

    rb = sub.add_parser("rollback", help="restore the before-state of one recorded remediation")
    for arg in ("--account", "--region", "--resource-id", "--record-sk"):
        rb.add_argument(arg, required=True)
    rb.add_argument("--reason")
    return p


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> int:
    args = parser().parse_args(argv)
    session = session or boto3.Session(region_name=args.hub_region)
    handlers = {"exemptions": _exemptions, "flapping": _flapping, "rollback": _rollback}
    try:
        out = handlers[args.command](args, session)
    except (ValidationError, ConfigError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, default=str))
    return 0 if not (isinstance(out, dict) and out.get("status") in (rollback.REFUSED, rollback.FAILED)) else 3


if __name__ == "__main__":
    sys.exit(main())
