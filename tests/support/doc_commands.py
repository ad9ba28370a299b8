"""The shell commands README.md and docs/ show, read the way docs/development.md ("Commands in the docs") says
they are marked: every `sh` block carries one tag after the language, naming where its commands run.

    ```sh local     runs on a developer's machine as written (no AWS account, no Docker): tested
    ```sh aws       needs an AWS account (deploying, a real hub): not run; the reason is reported
    ```sh docker    needs a container engine and the Lambda image (`make local-image`): not run
    ```sh tooling   builds, lints, tests or measures the project (make test, make bench, SAM CLI): what CI
                    and `make test` run, not re-run from inside the test suite

A command is a line, with backslash continuations joined, a quoted string kept whole across lines and a
heredoc kept with its body; `#` comments and blank lines are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TAGS = {
    "local": "",
    "aws": "needs an AWS account",
    "docker": "needs a container engine and the Lambda base image (make local-image)",
    "tooling": "builds, lints, tests or measures the project: CI and `make test` run it, not a test inside them",
}
SHELLS = ("sh", "bash", "shell", "console")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
_HEREDOC = re.compile(r"<<-?\s*'?\"?(?P<word>[A-Za-z_]+)'?\"?")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    tags: tuple[str, ...]
    commands: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its language, tags and (for shell blocks) commands."""
    text = path.read_text()
    out = []
    for m in _FENCE.finditer(text):
        info = m.group("info").split()
        language, tags = (info[0], tuple(info[1:])) if info else ("", ())
        body = "\n".join(line.removeprefix(m.group("indent")) for line in m.group("body").splitlines())
        line = text.count("\n", 0, m.start()) + 1
        out.append(Block(path, line, language, tags, tuple(commands(body)) if language in SHELLS else ()))
    return out


def commands(body: str) -> list[str]:
    """The commands of a shell block, one string each, comments removed (quotes respected)."""
    out: list[str] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        current = lines[i]
        i += 1
        while i < len(lines) and (current.rstrip().endswith("\\") or _open_quote(current)):
            if current.rstrip().endswith("\\"):
                current = current.rstrip()[:-1] + " " + lines[i].strip()
            else:
                current = current + "\n" + lines[i]
            i += 1
        heredoc = _HEREDOC.search(current)
        if heredoc:
            body_lines = []
            while i < len(lines) and lines[i].strip() != heredoc.group("word"):
                body_lines.append(lines[i])
                i += 1
            i += 1
            out.append("\n".join([_strip_comment(current), *body_lines, heredoc.group("word")]))
            continue
        stripped = _strip_comment(current)
        if stripped:
            out.append(stripped)
    return out


def _scan(line: str) -> tuple[int, str]:
    """Read a line as the shell does: where its comment starts (`#` at the start of a word, outside quotes;
    the line's length when there is none) and which quote is still open at that point ("" for none)."""
    quote, escaped = "", False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return i, ""
    return len(line), quote


def _open_quote(text: str) -> bool:
    """Whether a quote opened in the text is still open at its end (the command goes on on the next line)."""
    return bool(_scan(text)[1])


def _strip_comment(line: str) -> str:
    """The line without its trailing comment."""
    return line[:_scan(line)[0]].strip()
