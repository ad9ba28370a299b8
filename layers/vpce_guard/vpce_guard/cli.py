"""The command-line shell of vpce-guard, shared by the `vpce-guard` command (devkit/cli.py) and
`python -m vpce_guard.admin`, so that every subcommand behaves alike:

- options that apply everywhere (`--region`, `--profile`, `--endpoint-url`, `--debug`) and the hub's tables
  (`--stack`, `--ledger-table`, `--exemptions-table`) work before or after the subcommand, mean the same thing
  in every subcommand, and a subcommand that cannot use one refuses it instead of ignoring it;
- one boto3 session per command, checked before the first AWS call: a missing region, profile or credentials,
  or an endpoint nothing listens on, is said up front in one line instead of a traceback from the first call;
- errors a person can act on: one line on stderr naming what to do, exit code 2 when the command line or a
  file it names is wrong, 1 when AWS or the environment said no; `--debug` prints the traceback first.

Why argparse rather than click or typer: this module ships in the layer, whose dependencies are what the
functions need in Lambda (a CLI framework is not); argparse's parent parsers with SUPPRESS defaults give
options before or after a subcommand, which click does not do natively either; and the existing command lines
(`invoke`'s SAM-compatible flags, the report's) were argparse already, so their flags stay as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from unittest import mock
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from pydantic import ValidationError

from .config import ConfigError

EXIT_RUNTIME = 1
EXIT_USAGE = 2
#: The hub stack `sam deploy --config-env prod` creates (samconfig.toml).
DEFAULT_STACK = "vpce-guard"
#: Placeholder credentials for a local endpoint (moto takes any); SAM CLI uses the same ones.
LOCAL_CREDENTIALS = {"aws_access_key_id": "defaultkey", "aws_secret_access_key": "defaultsecret"}

NO_REGION = ("no AWS region: pass --region (the region of the vpce-guard hub), set AWS_REGION, or give your "
             "profile a region")
NO_CREDENTIALS = ("no AWS credentials: pass --profile (or set AWS_PROFILE), set AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY, or sign in with `aws sso login`; for a local moto server pass --endpoint-url")


class CliError(Exception):
    """An error the person at the terminal can act on; the message says what to do. Exit code 1."""

    exit_code = EXIT_RUNTIME


class UsageError(CliError):
    """The command line, or a file it names, is wrong. Exit code 2."""

    exit_code = EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (argparse prints the usage block too) that points at --help."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    metavar: str | None = None
    flag: bool = False  # store_true
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flags[0].lstrip("-").replace("-", "_")


#: Where AWS calls go, and as whom. `--debug` rides along: it too applies to every subcommand.
AWS_OPTIONS = (
    Option(("--region",), "AWS region of the vpce-guard hub, where its functions and tables are "
                          "(default: AWS_REGION, then your profile's region)", "REGION"),
    Option(("--profile",), "AWS profile to use: its credentials and region (default: AWS_PROFILE, then the "
                           "default credential chain)", "PROFILE"),
    Option(("--endpoint-url",), "send every AWS call to this endpoint instead of AWS, e.g. the moto server "
                                "`vpce-guard sandbox` starts (the same as setting AWS_ENDPOINT_URL)", "URL"),
)
DEBUG_OPTION = Option(("--debug",), "on an error, print the Python traceback before the one-line message", flag=True)
#: The hub's tables: named outright, by environment variable, or read from the stack's outputs.
TABLE_OPTIONS = (
    Option(("--stack",), f"the hub's CloudFormation stack, whose outputs name the tables (default: {DEFAULT_STACK})",
           "STACK"),
    Option(("--ledger-table",), "the ledger table (default: the LedgerTableName output of --stack if given, else "
                                "LEDGER_TABLE, else that output of the stack vpce-guard)", "TABLE"),
    Option(("--exemptions-table",), "the exemptions table (default: the ExemptionsTableName output of --stack if "
                                    "given, else EXEMPTIONS_TABLE, else that output of the stack vpce-guard)",
           "TABLE"),
)
#: kind → (environment variable, stack output, option)
TABLES = {"ledger": ("LEDGER_TABLE", "LedgerTableName", "--ledger-table"),
          "exemptions": ("EXEMPTIONS_TABLE", "ExemptionsTableName", "--exemptions-table")}


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option], *, top: bool, title: str,
                default: Any = None) -> None:
    """Add options to a parser. Below the top, their default is SUPPRESS: a value given after the subcommand
    is set, and one given before it is not overwritten by the subcommand's default."""
    group = parser.add_argument_group(title)
    for o in options:
        given = (False if o.flag else default) if top else argparse.SUPPRESS
        kwargs: dict[str, Any] = {"help": o.help, "default": given}
        if o.flag:
            kwargs["action"] = "store_true"
        else:
            kwargs.update(metavar=o.metavar, choices=o.choices)
        group.add_argument(*o.flags, **kwargs)


def add_common(parser: argparse.ArgumentParser, *, top: bool, aws: bool = True, tables: bool = False) -> None:
    """The options every (sub)command of this kind takes; `aws=False` (demo, sandbox) keeps only --debug."""
    if aws:
        add_options(parser, AWS_OPTIONS, top=top, title="AWS options")
    if tables:
        add_options(parser, TABLE_OPTIONS, top=top, title="the hub's tables")
    add_options(parser, [DEBUG_OPTION], top=top, title="output")


Run = Callable[["Context"], "int | None"]


class Commands:
    """The subcommands of one parser. Each is added with the option groups it uses, and a leaf with the
    function that runs it; `default` names the subcommand run when none is given."""

    def __init__(self, parser: argparse.ArgumentParser, *, dest: str = "command", title: str = "commands",
                 default: str | None = None) -> None:
        self._sub = parser.add_subparsers(title=title, dest=dest, metavar="COMMAND", required=default is None)
        if default:
            parser.set_defaults(_default_command=(dest, default))

    def add(self, name: str, *, help: str, description: str | None = None, run: Run | None = None,
            aws: bool = True, tables: bool = False) -> Parser:
        p: Parser = self._sub.add_parser(name, help=help, description=description or help,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        add_common(p, top=False, aws=aws, tables=tables)
        p.set_defaults(_aws=aws, _tables=tables, **({"_run": run} if run else {}))
        return p


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    default = getattr(args, "_default_command", None)
    if default and getattr(args, default[0], None) is None:
        args = parser.parse_args([*argv, default[1]])
    for option in (*AWS_OPTIONS, *TABLE_OPTIONS):  # given before a subcommand that cannot use it
        uses = getattr(args, "_aws", True) if option in AWS_OPTIONS else getattr(args, "_tables", False)
        if not uses and getattr(args, option.dest, None):
            raise UsageError(f"{args.command} does not take {option.flags[0]} (see `{parser.prog} {args.command} "
                             "--help`)")
    return args


# ------------------------------------------------------------------------------------------------- context

@dataclass
class Context:
    """What a subcommand runs with: its arguments, the session they describe, the tables they name."""

    args: argparse.Namespace
    given_session: boto3.Session | None = None
    out: Any = field(default_factory=lambda: sys.stdout)
    tables: dict[str, str] = field(default_factory=dict)
    _session: boto3.Session | None = None

    def arg(self, name: str, default: Any = None) -> Any:
        return getattr(self.args, name, default)

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint every client uses: --endpoint-url or AWS_ENDPOINT_URL (what botocore itself reads)."""
        return os.environ.get("AWS_ENDPOINT_URL") or None

    @property
    def region(self) -> str | None:
        """The region of the session, once the command has opened one."""
        return self._session.region_name if self._session else None

    def session(self) -> boto3.Session:
        """The command's session, checked: a region, credentials (placeholders for a local endpoint), a
        reachable endpoint. Built once, at the first AWS call the command makes."""
        if self._session is None:
            self._session = self.given_session or open_session(self.arg("profile"), self.arg("region"),
                                                               local_endpoint=self.endpoint_url)
        return self._session

    def table(self, kind: str) -> str:
        """The name of the hub's `ledger` or `exemptions` table: the option, else --stack's output if --stack
        is given, else the environment variable, else the default stack's output."""
        variable, output, option = TABLES[kind]
        name = self.arg(f"{kind}_table") or ""
        if not name and not self.arg("stack"):
            name = os.environ.get(variable, "").strip()
        if not name:
            stack = self.arg("stack") or DEFAULT_STACK
            outputs = self._stack_outputs(stack, option, variable)
            if output not in outputs:
                raise CliError(f"stack {stack!r} has no {output} output (is it the vpce-guard hub?): pass --stack "
                               f"with the hub's stack name, or {option}")
            name = outputs[output]
        self.tables[kind] = name
        return name

    def _stack_outputs(self, stack: str, option: str, variable: str) -> dict[str, str]:
        cfn = self.session().client("cloudformation")
        try:
            found = cfn.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                raise CliError(f"no stack {stack!r} in {self.session().region_name}: pass --stack with the name "
                               f"you deployed the hub as, or name the table with {option} (or {variable})") from exc
            raise
        return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}


def open_session(profile: str | None, region: str | None, *, local_endpoint: str | None) -> boto3.Session:
    """A boto3 session for --profile/--region, or a one-line error saying what is missing."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise UsageError(f"there is no profile {exc.kwargs.get('profile', profile)!r} in your AWS configuration: "
                         "check --profile (or AWS_PROFILE); `aws configure list-profiles` lists them") from exc
    if not session.region_name:
        raise UsageError(NO_REGION)
    if local_endpoint:
        ensure_reachable(local_endpoint, "--endpoint-url / AWS_ENDPOINT_URL")
    if session.get_credentials() is None:
        if not local_endpoint:
            raise CliError(NO_CREDENTIALS)
        session = boto3.Session(region_name=session.region_name, **LOCAL_CREDENTIALS)
    return session


def ensure_reachable(url: str, source: str) -> None:
    """Fail in one line, before any work, when nothing listens at an endpoint (a stopped sandbox, a typo)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source}: {url!r} is not an http(s) URL (e.g. http://127.0.0.1:5000)")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise CliError(f"cannot reach {url} ({source}): {reason.lower()}; start the server it names (e.g. "
                       "`vpce-guard sandbox`) or correct the URL") from exc


# ------------------------------------------------------------------------------------------------- errors

_BAD_CREDENTIALS = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
                    "SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthFailure", "RequestExpired"}


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it, and so on (explicit `from` first, else the context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(exc: BaseException, *, tables: dict[str, str] | None = None, region: str | None = None) -> CliError:
    """The one line a person can act on for an error (its cause chain is searched: a library often wraps the
    AWS error, as Powertools' idempotency does)."""
    for e in causes(exc):
        found = _explain_one(e, tables or {}, region)
        if found is not None:
            return found
    return CliError(f"unexpected error: {type(exc).__name__}: {exc} (run again with --debug for the traceback, "
                    "and please report it)")


def _explain_one(e: BaseException, tables: dict[str, str], region: str | None) -> CliError | None:
    if isinstance(e, CliError):
        return e
    if isinstance(e, NoRegionError):
        return UsageError(NO_REGION)
    if isinstance(e, ProfileNotFound):
        return UsageError(f"there is no profile {e.kwargs.get('profile')!r} in your AWS configuration: check "
                          "--profile (or AWS_PROFILE)")
    if isinstance(e, NoCredentialsError | PartialCredentialsError):
        return CliError(NO_CREDENTIALS)
    if isinstance(e, SSOError | TokenRetrievalError | UnauthorizedSSOTokenError):
        return CliError(f"your AWS sign-in has expired or is missing ({e}): run `aws sso login` (with --profile)")
    if isinstance(e, EndpointConnectionError | ConnectTimeoutError):
        return CliError(f"cannot reach {e.kwargs.get('endpoint_url')}: check the network, --region and "
                        "--endpoint-url (a local server must be running)")
    if isinstance(e, ReadTimeoutError):
        return CliError(f"{e.kwargs.get('endpoint_url')} did not answer in time: try again, or check --endpoint-url")
    if isinstance(e, ClientError):
        error = e.response.get("Error", {})
        code, message, op = str(error.get("Code", "")), str(error.get("Message", "")), e.operation_name
        if code == "ResourceNotFoundException" and (tables or "table" in message.lower()):
            named = " or ".join(f"the {k} table {v!r}" for k, v in tables.items()) or "a table"
            where = f" in {region}" if region else ""
            return CliError(f"{named} does not exist{where} ({op}: {message}): check --ledger-table/"
                            "--exemptions-table or --stack, and --region (the hub's region)")
        if code in _BAD_CREDENTIALS:
            return CliError(f"AWS did not accept your credentials ({code}: {message}): sign in again "
                            "(`aws sso login`) or pick another --profile")
        if "AccessDenied" in code or code == "UnauthorizedOperation":
            return CliError(f"access denied for {op} ({message}): use a principal allowed to call it (see "
                            "docs/deploy.md for the operator's permissions)")
        return CliError(f"AWS refused {op}: {code}: {message}")
    if isinstance(e, ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
                             for err in e.errors(include_url=False))
        return UsageError(problems)
    if isinstance(e, ConfigError):
        return UsageError(str(e))
    return None


# ------------------------------------------------------------------------------------------------- running

@contextlib.contextmanager
def _endpoint(url: str | None) -> Iterator[None]:
    """--endpoint-url is AWS_ENDPOINT_URL for this command: every client botocore builds reads it, the layer's
    as well as the command's own."""
    with mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL": url} if url else {}):
        yield


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, *,
        session: boto3.Session | None = None) -> int:
    """Parse, run the chosen subcommand, and turn any error into one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    ctx: Context | None = None
    try:
        args = parse(parser, argv)
        debug = bool(getattr(args, "debug", False))
        with _endpoint(getattr(args, "endpoint_url", None)):
            ctx = Context(args, given_session=session)
            return int(args._run(ctx) or 0)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        error = explain(exc, tables=ctx.tables if ctx else None, region=ctx.region if ctx else None)
        if debug:
            traceback.print_exception(exc)
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return error.exit_code
