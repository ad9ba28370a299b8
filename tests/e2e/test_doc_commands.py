"""Every command README.md and docs/ show runs as written, or says why it cannot run here.

Shell blocks are tagged (docs/development.md, "Commands in the docs"; tests/support/doc_commands.py reads them):
`local` blocks run here, document by document, in a scratch copy of the checkout with no AWS configuration of
its own, as a reader runs them: in order, in one terminal (what a command exports, the next one sees), with a
`make sandbox` / `vpce-guard sandbox` line started in a second terminal and left running (the commands after
it run against its moto server) until the end of the document. `aws`, `docker` and `tooling` blocks are
skipped with their reason. An untagged shell block fails the first test.
"""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.commands import ROOT, Terminal, clean_env, long_running, scratch_checkout
from tests.support.doc_commands import SHELLS, TAGS, Block, blocks

pytestmark = pytest.mark.e2e

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = [b for doc in DOCS for b in blocks(doc) if b.language in SHELLS]
LOCAL = [b for b in SHELL_BLOCKS if b.tags == ("local",)]
NOT_HERE = [b for b in SHELL_BLOCKS if len(b.tags) == 1 and b.tags[0] in TAGS and b.tags[0] != "local"]


def _starts_a_server(command: str) -> bool:
    argv = shlex.split(command.split("\n", 1)[0], comments=True)
    return argv[:2] == ["make", "sandbox"] or (argv[:1] == [".venv/bin/vpce-guard"] and "sandbox" in argv[1:2])


def test_every_shell_block_says_where_its_commands_run() -> None:
    untagged = [f"{b.where} ```{b.language} {' '.join(b.tags)}" for b in SHELL_BLOCKS
                if len(b.tags) != 1 or b.tags[0] not in TAGS]
    assert not untagged, f"shell blocks need one tag of {sorted(TAGS)} (docs/development.md): {untagged}"
    assert LOCAL, "no locally runnable command in the docs"


@pytest.mark.parametrize("block", NOT_HERE, ids=[f"{b.where}-{b.tags[0]}" for b in NOT_HERE])
def test_commands_that_need_more_than_this_machine_are_skipped_with_the_reason(block: Block) -> None:
    assert block.commands, f"{block.where}: an empty block"
    pytest.skip(f"{block.where}: {len(block.commands)} command(s) not run: {TAGS[block.tags[0]]}")


def test_local_commands_run_as_written(tmp_path: Path) -> None:
    """One test for every document, one after the other: the documents' sandboxes may share a port."""
    ran: dict[str, int] = {}
    for doc in sorted({b.path for b in LOCAL}, key=DOCS.index):
        where = tmp_path / doc.stem
        where.mkdir()
        cwd, env = scratch_checkout(where), clean_env(where)
        terminal, server = Terminal(cwd, env), ExitStack()  # server: the second terminal, one sandbox at a time
        try:
            for block in [b for b in LOCAL if b.path == doc]:
                for command in block.commands:
                    if _starts_a_server(command):
                        server.close()
                        server = ExitStack()
                        server.enter_context(long_running(command, env, cwd=cwd))
                    else:
                        code, output = terminal.run(command)
                        assert code == 0, f"{block.where}: {command}\nexit {code}\n{output[-4000:]}"
                    ran[str(doc.relative_to(ROOT))] = ran.get(str(doc.relative_to(ROOT)), 0) + 1
        finally:
            server.close()
            terminal.close()
    print(f"documented commands run: {sum(ran.values())} ({ran})")
    assert ran
