"""`vpce-guard`: the one command for what operators and developers do with vpce-guard.

    vpce-guard [--region R] [--profile P] [--endpoint-url URL] [--debug] COMMAND ...

Global options work before or after the command and mean the same in every command (`--region` is always
the hub's region; a resource's own region is `--resource-region`). The commands:

    invoke      run a function of template.yaml on an event, as `sam local invoke` does (devkit/local.py)
    report      read the ledger: open findings, a resource's history, remediations (devkit/report.py)
    exemptions  add, list or expire exemptions (vpce_guard/admin.py)
    flapping    clear a flapping resource (vpce_guard/admin.py)
    rollback    restore the before-state of one remediation (vpce_guard/admin.py)
    ledger      bring a ledger written by an earlier version up to this one (vpce_guard/admin.py)
    sandbox     the demo's world on a moto server that stays up (devkit/sandbox.py)
    demo        the story in a minute against a moto server it starts and stops (devkit/demo.py)

`make venv` installs it as .venv/bin/vpce-guard (pyproject.toml, [project.scripts]); `python -m devkit.cli`
is the same command, and `python -m devkit.local|report|sandbox|demo` and `python -m vpce_guard.admin` run
their part of it. The shared machinery (options, sessions, one-line errors, exit codes, and why argparse)
is vpce_guard/cli.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import devkit  # noqa: F401 - puts the layer on sys.path when run from a checkout without the install
from devkit import demo, local, report, sandbox
from vpce_guard import admin, cli

PROG = "vpce-guard"
DESCRIPTION = """vpce-guard finds and fixes drift on AWS VPC endpoints across an AWS Organization and keeps a ledger of
every check and fix. This command runs its functions locally, reads the ledger, and manages exemptions,
flapping resources, rollbacks and ledger upgrades. Global options work before or after the command."""
EPILOG = """exit codes: 0 done; 1 AWS or the environment refused (the message says what to do); 2 the command line,
or a file it names, is wrong; 3 a rollback ran and was refused or failed (its JSON says why).
Run `vpce-guard COMMAND --help` for a command's options."""


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog=PROG, description=DESCRIPTION,
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(parser, top=True, tables=True)
    commands = cli.Commands(parser)
    local.register(commands)
    report.register(commands)
    admin.register(commands)
    sandbox.register(commands)
    demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
