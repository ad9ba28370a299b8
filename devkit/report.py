"""Read the ledger back: what is wrong now, what happened to one resource, what was fixed when.

    vpce-guard report [--format table|json|csv|asff|ocsf] [REPORT] (also: python -m devkit.report …)
      findings      [--status open|all|STATUS,...] [--account A] [--resource-region R] [--rule RULE] [--summary]
      history       RESOURCE_ID [--account A] [--resource-region R] [--limit N]
      remediations  [--since 24h|7d|2025-03-01[T..]] [--until now|...] [--status remediated|dry_run|failed]
      checks        [--account A] [--resource-region R] [--resource RESOURCE_ID] [--limit N]

`--format asff` prints the findings as AWS Security Finding Format findings (what Security Hub imports) and
`--format ocsf` as OCSF Compliance Finding events (class 2003), for a SIEM or a data lake (docs/findings.md);
both apply to `findings`, and read each finding's last history item too (BatchGetItem, 100 keys per call).

Every read is a Query (the by-status index for findings and time windows, the resource's partition for its
history), never a Scan: the cost grows with what is printed, not with the size of the table. Reads that span
several pages report progress on stderr, so stdout stays clean for --format json/csv.

The ledger table: --ledger-table, else the LedgerTableName output of --stack when given, else $LEDGER_TABLE,
else the output of the stack "vpce-guard" (the one `sam deploy --config-env prod` creates). --region is the
hub's region, where the table is.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from tabulate import tabulate

import devkit  # noqa: F401 - puts the layer on sys.path
from vpce_guard import asff, cli, ocsf
from vpce_guard.finding_view import FindingView
from vpce_guard.ledger import ACTIVITY_STATUSES, GET_BATCH_SIZE, Ledger
from vpce_guard.models import OPEN_STATUSES, Status

FINDING_COLUMNS = ["account", "region", "rule_id", "status", "resource_id", "vpc_id", "time", "reason"]
SUMMARY_COLUMNS = ["account", "region", "rule_id", "status", "count"]
HISTORY_COLUMNS = ["time", "rule_id", "status", "trigger", "actor", "reason", "change"]
ACTIVITY_COLUMNS = ["time", "account", "region", "rule_id", "resource_id", "status", "trigger", "actor", "reason"]
CHECKS_COLUMNS = ["time", "checked", "statuses", "resource"]
#: Table cells longer than this are cut (JSON and CSV keep everything).
CELL_WIDTH = 72
#: Formats that export findings in a security standard rather than as a report.
EXPORT_FORMATS = ("asff", "ocsf")


class ReportError(cli.UsageError, ValueError):
    """A bad argument; the message says which."""


class Progress:
    """Counts items as pages arrive and says so on stderr once a read spans more than one page."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.pages = 0
        self.shown = False

    def __call__(self, items_so_far: int) -> None:
        self.pages += 1
        if self.pages >= 2:
            end = "\r" if self.stream.isatty() else "\n"
            self.stream.write(f"reading {self.label}: {items_so_far} items, {self.pages} pages{end}")
            self.stream.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown and self.stream.isatty():
            self.stream.write("\n")


# ---------------------------------------------------------------- time ----

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")


def parse_time(value: str, *, now: datetime) -> datetime:
    """`now`, `90m`, `24h`, `7d`, `2w` (before now), or ISO 8601 (UTC unless it says otherwise)."""
    value = value.strip()
    if value == "now":
        return now
    m = _RELATIVE.match(value)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"not a time: {value!r} (use now, 90m, 24h, 7d, 2w or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- queries ----

def statuses_from(arg: str) -> list[Status]:
    if arg == "open":
        return sorted(OPEN_STATUSES, key=lambda s: s.value)
    if arg == "all":
        return list(Status)
    try:
        return [Status(s.strip()) for s in arg.split(",") if s.strip()]
    except ValueError as exc:
        raise ReportError(f"--status: {exc}; known: open, all, {', '.join(s.value for s in Status)}") from None


def state_items(ledger: Ledger, statuses: Iterable[Status], *, account: str | None = None, region: str | None = None,
                rule: str | None = None, progress: Callable[[str], Progress] = Progress) -> list[dict[str, Any]]:
    """Current state items (one per resource and rule) with these statuses, narrowed server-side."""
    # The index's sort key is <account>#<region>#<rule>#<resource>: the leading filters given narrow the
    # Query itself; any others (a rule without an account, say) are applied to what it returns.
    leading: list[str] = []
    for value in (account, region, rule):
        if not value:
            break
        leading.append(value)
    prefix = "#".join(leading) + "#" if leading else None
    items: list[dict[str, Any]] = []
    for status in statuses:
        p = progress(f"current {status.value}")
        for item in ledger.current(status, prefix=prefix, on_page=p):
            if (account and item.get("account") != account) or (region and item.get("region") != region) \
                    or (rule and item.get("rule_id") != rule):
                continue
            items.append(item)
        p.done()
    return sorted(items, key=lambda i: (i["account"], i["region"], i["rule_id"], i["status"], i["resource_id"]))


def findings(ledger: Ledger, statuses: Iterable[Status], *, account: str | None = None, region: str | None = None,
             rule: str | None = None, progress: Callable[[str], Progress] = Progress) -> list[dict[str, Any]]:
    """Current findings as report rows."""
    return [{c: item.get(c) for c in FINDING_COLUMNS}
            for item in state_items(ledger, statuses, account=account, region=region, rule=rule, progress=progress)]


def last_evaluations(ledger: Ledger, states: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The history item each state item names (`last_evaluation`), by key: BatchGetItem, 100 keys per call, and
    again for keys DynamoDB leaves unprocessed."""
    keys = sorted({(str(s["pk"]), str(s["last_evaluation"])) for s in states if s.get("last_evaluation")})
    client, name = ledger.table.meta.client, ledger.table.name
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), GET_BATCH_SIZE):
        chunk = keys[start:start + GET_BATCH_SIZE]
        request: dict[str, Any] = {name: {"Keys": [{"pk": pk, "sk": sk} for pk, sk in chunk]}}
        while request:
            resp = client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(name, []):
                found[(item["pk"], item["sk"])] = item
            request = resp.get("UnprocessedKeys") or {}
    return found


def export(ledger: Ledger, states: Sequence[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """The findings as ASFF findings or OCSF Compliance Finding events (docs/findings.md)."""
    history = last_evaluations(ledger, states)
    views = [FindingView.from_state(s, history.get((s["pk"], s.get("last_evaluation", "")))) for s in states]
    return [asff.to_asff(v) if fmt == "asff" else ocsf.to_ocsf(v) for v in views]


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = Counter((r["account"], r["region"], r["rule_id"], r["status"]) for r in rows)
    return [dict(zip(SUMMARY_COLUMNS, (*k, n), strict=True)) for k, n in sorted(counts.items())]


#: Keys that name what a record is about rather than what changed (one principal removed, one request rejected).
_SUBJECT_KEYS = ("principal", "endpoint_id")


def _change(item: dict[str, Any]) -> str:
    """One line for what a record changed (or would have): the keys of `after` that differ from `before`, after
    what they are about when the record names it (`principal *: allowed, allowed_principals`)."""
    before, after = item.get("before") or {}, item.get("after") or {}
    keys = [k for k in after if before.get(k) != after.get(k)]
    subject = next((f"{k} {before[k]}" for k in _SUBJECT_KEYS if k in before and before.get(k) == after.get(k)), "")
    changed = ", ".join(keys)
    return f"{subject}: {changed}" if subject and changed else changed


def _trigger(item: dict[str, Any]) -> tuple[str, str]:
    trig = item.get("trigger") or {}
    return str(trig.get("event_name") or trig.get("source") or ""), str(trig.get("actor_arn") or "")


def history(ledger: Ledger, account: str, region: str, resource_id: str, *, limit: int | None) -> list[dict[str, Any]]:
    rows = []
    for item in ledger.history(account, region, resource_id, limit=limit):
        trigger, actor = _trigger(item)
        rows.append({"time": item.get("time"), "rule_id": item.get("rule_id"), "status": item.get("status"),
                     "trigger": trigger, "actor": actor, "reason": item.get("reason"), "change": _change(item),
                     "before": item.get("before"), "after": item.get("after"), "sk": item.get("sk")})
    return rows


def activity(ledger: Ledger, status: Status, since: datetime, until: datetime,
             *, progress: Callable[[str], Progress] = Progress) -> list[dict[str, Any]]:
    p = progress(f"{status.value} since {since:%Y-%m-%d %H:%M}")
    rows = []
    for item in ledger.activity(status, since, until, on_page=p):
        trigger, actor = _trigger(item)
        rows.append({"time": item.get("time"), "account": item.get("account"), "region": item.get("region"),
                     "rule_id": item.get("rule_id"), "resource_id": item.get("resource_id"),
                     "status": item.get("status"), "trigger": trigger, "actor": actor, "reason": item.get("reason"),
                     "before": item.get("before"), "after": item.get("after"), "sk": item.get("sk")})
    p.done()
    return rows


def checks(ledger: Ledger, account: str, region: str, *, resource_id: str | None = None,
           limit: int = 10) -> list[dict[str, Any]]:
    """What sweeps of an account-region re-checked and found unchanged, newest first (their history has only
    changes); with `resource_id`, only the checks that list it, and its rules and statuses there."""
    rows = []
    for item in ledger.checks(account, region):
        listed = item.get("checked") or {}
        found = [f"{rule} {status}" for status, rules in listed.items() for rule, ids in rules.items()
                 if resource_id in ids] if resource_id else []
        if resource_id and not found:
            continue
        counts = Counter({status: sum(len(ids) for ids in rules.values()) for status, rules in listed.items()})
        rows.append({"time": item.get("time"), "checked": item.get("count"),
                     "statuses": ", ".join(f"{s} {n}" for s, n in counts.most_common()),
                     "resource": "; ".join(found), "sk": item.get("sk")})
        if len(rows) >= limit:
            break
    return rows


# ---------------------------------------------------------------- output ----

def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (every table vpce-guard prints on a terminal: the report's, the demo's)."""
    if not rows:
        return "(none)"
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    return "\n".join(line.rstrip() for line in tabulate(cells, headers=list(columns), tablefmt="simple",
                                                          disable_numparse=True).splitlines())


def render_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    return buf.getvalue().rstrip("\n")


def _plain(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal; JSON wants int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=_plain)


def render(kind: str, rows: Sequence[dict[str, Any]], fmt: str, *, summary: Sequence[dict[str, Any]] | None = None,
           summary_only: bool = False) -> str:
    """One report in one format. Findings come as a per-account/region/rule/status count and the rows."""
    columns = {"findings": FINDING_COLUMNS, "history": HISTORY_COLUMNS, "activity": ACTIVITY_COLUMNS,
               "checks": CHECKS_COLUMNS}[kind]
    if fmt == "json":
        if kind == "findings":
            return _json({"summary": summary or [], **({} if summary_only else {"findings": list(rows)})})
        return _json(list(rows))
    if fmt == "csv":
        return render_csv(summary or [], SUMMARY_COLUMNS) if summary_only else render_csv(rows, columns)
    if kind == "findings":
        out = [render_table(summary or [], SUMMARY_COLUMNS)]
        if not summary_only and rows:
            out += ["", render_table(rows, [c for c in columns if c not in {"vpc_id"}])]
        return "\n".join(out)
    return render_table(rows, columns)


# ---------------------------------------------------------------- command line ----

#: Options of `report` that work before or after its subcommand.
REPORT_OPTIONS = (cli.Option(("--format",), "table (default), json or csv; json and csv print everything, a "
                                            "table cuts long cells; asff (Security Hub) and ocsf (OCSF Compliance "
                                            "Finding) export `findings`", "FORMAT",
                              choices=("table", "json", "csv", *EXPORT_FORMATS)),)


def _ledger(ctx: cli.Context) -> Ledger:
    table = ctx.session().resource("dynamodb").Table(ctx.table("ledger"))
    return Ledger(table, page_size=ctx.arg("page_size"))


def _format(ctx: cli.Context, report: str = "findings") -> str:
    fmt = str(ctx.arg("format") or "table")
    if fmt in EXPORT_FORMATS and report != "findings":
        raise ReportError(f"--format {fmt} exports findings, not {report}")
    return fmt


def _print(ctx: cli.Context, text: str) -> None:
    print(text, file=ctx.out)


def _run_findings(ctx: cli.Context) -> None:
    a = ctx.args
    fmt = _format(ctx)
    if fmt in EXPORT_FORMATS:
        if a.summary:
            raise ReportError(f"--format {fmt} exports the findings themselves, not --summary")
        ledger = _ledger(ctx)
        states = state_items(ledger, statuses_from(a.status), account=a.account, region=a.resource_region,
                             rule=a.rule)
        _print(ctx, _json(export(ledger, states, fmt)))
        return
    rows = findings(_ledger(ctx), statuses_from(a.status), account=a.account, region=a.resource_region, rule=a.rule)
    _print(ctx, render("findings", rows, fmt, summary=summarise(rows), summary_only=a.summary))


def _account_and_region(ctx: cli.Context) -> tuple[str, str]:
    session = ctx.session()
    account = ctx.args.account or session.client("sts").get_caller_identity()["Account"]
    return str(account), str(ctx.args.resource_region or session.region_name)


def _run_history(ctx: cli.Context) -> None:
    fmt = _format(ctx, "history")
    account, region = _account_and_region(ctx)
    _print(ctx, render("history", history(_ledger(ctx), account, region, ctx.args.resource_id,
                                          limit=ctx.args.limit), fmt))


def _run_checks(ctx: cli.Context) -> None:
    fmt = _format(ctx, "checks")
    account, region = _account_and_region(ctx)
    rows = checks(_ledger(ctx), account, region, resource_id=ctx.args.resource, limit=ctx.args.limit)
    _print(ctx, render("checks", rows, fmt))


def _run_remediations(ctx: cli.Context, now: datetime | None = None) -> None:
    a = ctx.args
    fmt = _format(ctx, "remediations")
    moment = now or datetime.now(UTC)
    since, until = parse_time(a.since, now=moment), parse_time(a.until, now=moment)
    if since > until:
        raise ReportError(f"--since {a.since} is after --until {a.until}")
    _print(ctx, render("activity", activity(_ledger(ctx), Status(a.status), since, until), fmt))


def register(commands: cli.Commands) -> None:
    """Add `report` and its subcommands (findings by default) to a command line."""
    r = commands.add("report", help="read the ledger back: open findings, a resource's history, remediations, "
                                    "what sweeps checked", description=__doc__, tables=True)
    cli.add_options(r, REPORT_OPTIONS, top=True, title="report options", default="table")
    r.add_argument("--table", dest="ledger_table", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    r.add_argument("--page-size", type=int, help=argparse.SUPPRESS)
    sub = cli.Commands(r, dest="report_command", title="reports", default="findings")

    def add(name: str, help: str, run: cli.Run) -> argparse.ArgumentParser:
        p = sub.add(name, help=help, run=run, tables=True)
        cli.add_options(p, REPORT_OPTIONS, top=False, title="report options")
        return p

    f = add("findings", "current state by account, region, rule and status (the default report)", _run_findings)
    f.add_argument("--status", default="open", help="open (default), all, or a comma-separated list of statuses")
    f.add_argument("--account", help="only this account's resources")
    f.add_argument("--resource-region", help="only resources in this region")
    f.add_argument("--rule", help="only this rule, e.g. endpoint-policy-org-confined")
    f.add_argument("--summary", action="store_true", help="counts only")
    h = add("history", "every evaluation and change of one resource, newest first", _run_history)
    h.add_argument("resource_id", help="the resource (vpce-…, rtb-…, vpc-…)")
    h.add_argument("--account", help="the resource's account (default: the caller's)")
    h.add_argument("--resource-region", help="the resource's region (default: --region)")
    h.add_argument("--limit", type=int, default=50, help="at most this many records (50)")
    rem = add("remediations", "what was changed (or would have been, or failed) in a time window",
              _run_remediations)
    rem.add_argument("--since", default="24h", help="start: 90m, 24h, 7d, 2w ago, or an ISO date or time (24h)")
    rem.add_argument("--until", default="now", help="end: now (default), or as --since")
    rem.add_argument("--status", default="remediated", choices=sorted(s.value for s in ACTIVITY_STATUSES),
                     help="which records: remediated (default), dry_run or failed")
    c = add("checks", "what sweeps re-checked and found unchanged (not in history), newest first", _run_checks)
    c.add_argument("--account", help="the account swept (default: the caller's)")
    c.add_argument("--resource-region", help="the region swept (default: --region)")
    c.add_argument("--resource", help="only checks that list this resource id")
    c.add_argument("--limit", type=int, default=10, help="at most this many checks (10)")


def main(argv: list[str] | None = None) -> int:
    """`python -m devkit.report …` is `vpce-guard report …`."""
    from devkit import cli as vpce_guard_cli

    return vpce_guard_cli.main(["report", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
