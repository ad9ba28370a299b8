"""The `vpce-guard` command line: every subcommand is there, every option says what it does, global options
work before or after the subcommand and mean the same everywhere, and a command refuses options it cannot use."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from devkit import cli as vpce_guard_cli
from vpce_guard import admin, cli


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def _leaf_argv(parser: argparse.ArgumentParser) -> Iterator[list[str]]:
    """A minimal valid argv for every leaf subcommand."""
    required = {"invoke": ["OnChangeFunction"],
                "exemptions add": ["--scope", "account", "--target", "111122223333", "--reason", "r", "--owner", "o",
                                   "--days", "1"],
                "exemptions expire": ["--scope", "account", "--target", "111122223333"],
                "flapping clear": ["--account", "111122223333", "--resource-id", "vpce-0123456789abcdef0", "--rule",
                                   "r", "--reason", "x"],
                "rollback": ["--account", "111122223333", "--resource-id", "vpce-0123456789abcdef0", "--record-sk",
                             "EVAL#x"],
                "report history": ["vpce-0123456789abcdef0"]}
    for p in _parsers(parser):
        if p.get_default("_run") is None:
            continue
        path = p.prog.split()[1:]
        yield [*path, *required.get(" ".join(path), [])]


def test_help_lists_every_subcommand() -> None:
    text = vpce_guard_cli.build_parser().format_help()
    for name in ("invoke", "report", "exemptions", "flapping", "rollback", "sandbox", "demo"):
        assert f"    {name} " in text, name


@pytest.mark.parametrize("build", [vpce_guard_cli.build_parser, admin.parser], ids=["vpce-guard", "admin"])
def test_every_option_of_every_subcommand_has_help_text(build: object) -> None:
    for p in _parsers(build()):  # type: ignore[operator]
        for action in p._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{p.prog}: {action.option_strings or action.dest} has no help text"


@pytest.mark.parametrize("argv", list(_leaf_argv(vpce_guard_cli.build_parser())), ids=" ".join)
def test_global_options_work_before_or_after_the_subcommand(argv: list[str]) -> None:
    parser = vpce_guard_cli.build_parser()
    takes_aws = argv[0] not in ("demo", "sandbox")
    options = ["--region", "eu-west-1", "--profile", "ops", "--endpoint-url", "http://127.0.0.1:5000", "--debug"]
    if not takes_aws:
        options = ["--debug"]
    before = cli.parse(parser, [*options, *argv])
    after = cli.parse(parser, [*argv, *options])
    assert vars(before) == vars(after)
    assert before.debug is True
    if takes_aws:
        assert (before.region, before.profile, before.endpoint_url) == ("eu-west-1", "ops", "http://127.0.0.1:5000")


def test_a_subcommand_refuses_a_global_option_it_cannot_use() -> None:
    parser = vpce_guard_cli.build_parser()
    for argv, option in ((["--region", "eu-west-1", "demo"], "--region"), (["--ledger-table", "t", "invoke", "F"],
                                                                          "--ledger-table"),
                         (["--endpoint-url", "http://x", "sandbox"], "--endpoint-url")):
        with pytest.raises(cli.UsageError, match=f"does not take {option}"):
            cli.parse(parser, argv)
    with pytest.raises(cli.UsageError, match="unrecognized arguments: --region"):
        cli.parse(parser, ["demo", "--region", "eu-west-1"])


def test_report_runs_findings_when_no_report_is_named() -> None:
    parser = vpce_guard_cli.build_parser()
    for argv in (["report"], ["report", "--region", "eu-west-1"], ["--region", "eu-west-1", "report"]):
        args = cli.parse(parser, argv)
        assert args.report_command == "findings" and args.status == "open", argv
    assert cli.parse(parser, ["report", "--format", "json", "history", "vpce-1"]).format == "json"
    assert cli.parse(parser, ["report", "history", "vpce-1", "--format", "csv"]).format == "csv"
    assert cli.parse(parser, ["report", "--table", "t"]).ledger_table == "t", "the report's old --table still works"


def test_usage_errors_are_one_line_that_points_at_help() -> None:
    parser = vpce_guard_cli.build_parser()
    with pytest.raises(cli.UsageError) as raised:
        cli.parse(parser, ["report", "remediations", "--status", "bogus"])
    assert "\n" not in str(raised.value) and "see `vpce-guard report remediations --help`" in str(raised.value)
    with pytest.raises(cli.UsageError, match="argument --format: invalid choice: 'xml'"):
        cli.parse(parser, ["report", "--format", "xml"])
    with pytest.raises(cli.UsageError, match="invalid choice: 'frobnicate'"):
        cli.parse(parser, ["frobnicate"])
