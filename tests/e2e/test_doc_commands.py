"""Every command README.md and docs/ show runs as written, or says why it cannot run here.

Shell blocks are tagged (docs/development.md, "Commands in the docs"; tests/support/doc_commands.py reads them):
`local` blocks run here, in order, file by file, in a scratch copy of the checkout, with no AWS configuration
(a `make sandbox` / `vpce-guard sandbox` line starts the sandbox's moto server, as in its own terminal, and the
commands after it in the same file run against it, until the end of the file); `aws`, `docker` and `suite`
blocks are skipped with their reason. An untagged shell block fails the first test.
"""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.commands import ROOT, clean_env, long_running, run, scratch_checkout
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


@pytest.mark.parametrize("doc", sorted({b.path for b in LOCAL}), ids=lambda p: str(p.relative_to(ROOT)))
def test_local_commands_run_as_written(doc: Path, tmp_path: Path) -> None:
    cwd, env = scratch_checkout(tmp_path), clean_env(tmp_path)
    ran = 0
    with ExitStack() as servers:
        for block in [b for b in LOCAL if b.path == doc]:
            for command in block.commands:
                if _starts_a_server(command):
                    servers.close()  # one sandbox at a time, as a reader has one terminal 1
                    servers.enter_context(long_running(command, env, cwd=cwd))
                else:
                    done = run(["bash", "-o", "pipefail", "-c", command], env, cwd=cwd, timeout=600)
                    assert done.returncode == 0, (f"{block.where}: {command}\nexit {done.returncode}\n"
                                                  f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
                ran += 1
    print(f"{doc.relative_to(ROOT)}: {ran} command(s) ran")
