"""Run the project's commands as a person types them: a fresh process, in the repository, with an environment
that has no AWS configuration of its own (no credentials, no region, no profile files, no instance metadata).

Used by the tests that hold what the product prints and documents to "runs as written".
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The console script `make venv` installs.
VPCE_GUARD = ROOT / ".venv" / "bin" / "vpce-guard"


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without AWS_*/POWERTOOLS_* and with a HOME holding no ~/.aws.

    Instance metadata is off so that a missing credential is reported at once (and nothing leaves the
    machine looking for one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update({"HOME": str(home), "AWS_CONFIG_FILE": str(home / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"), "AWS_EC2_METADATA_DISABLED": "true",
                # Keep the CA bundle of the machine, if it sets one (it points at no account).
                **({"AWS_CA_BUNDLE": os.environ["AWS_CA_BUNDLE"]} if "AWS_CA_BUNDLE" in os.environ else {})})
    env.update(extra or {})
    return env


def run(command: str | Sequence[str], env: Mapping[str, str], *, cwd: Path = ROOT,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run a command line (a string is split as a POSIX shell would, without a shell)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout,
                          check=False)


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def workdir(tmp_path: Path) -> Path:
    """A directory to run printed commands in as a user would in their checkout: `.venv` is the project's, and
    whatever the commands write (.local/sandbox/...) lands here, not in the repository."""
    where = tmp_path / "work"
    where.mkdir(exist_ok=True)
    link = where / ".venv"
    if not link.exists():
        link.symlink_to(ROOT / ".venv", target_is_directory=True)
    return where


def printed_commands(text: str) -> list[str]:
    """The command lines a program printed for the user to run: lines that start with `.venv/bin/vpce-guard`."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith(".venv/bin/vpce-guard")]


@contextmanager
def long_running(command: str, env: Mapping[str, str], *, cwd: Path, ready: str = "ready",
                 timeout: float = 120) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Start a command that runs until stopped (the sandbox, or `make sandbox`), wait for its `ready` line,
    and on the way out press Ctrl-C as a terminal does (SIGINT to its process group), then check that it
    stopped cleanly. Yields the process and the lines it printed so far."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip() == ready:
                break
        timer.cancel()
        assert lines and lines[-1] == ready, "\n".join(lines)
        yield proc, lines
    finally:
        timer.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            rest = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest = proc.communicate()[0]
        lines.extend(rest.splitlines())
    # make reports the Ctrl-C it passed on (its exit code says "interrupted"); what it ran must have stopped.
    assert any(line.strip() == "moto server stopped." for line in lines), "\n".join(lines[-30:])
    assert proc.returncode == 0 or command.startswith("make "), (proc.returncode, "\n".join(lines[-30:]))


def scratch_checkout(tmp_path: Path) -> Path:
    """A directory that looks like the checkout (every top-level entry a link to the real one, the venv
    included) but writes its own `.local/`: documented commands run here as written, and what they write
    stays out of the repository and away from a sandbox a developer may be running."""
    where = tmp_path / "checkout"
    where.mkdir(exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name in (".local", ".git", ".pytest_cache", ".hypothesis", "__pycache__", ".ruff_cache"):
            continue
        link = where / entry.name
        if not link.exists():
            link.symlink_to(entry, target_is_directory=entry.is_dir())
    return where


class Terminal:
    """One interactive bash, as a reader has a terminal open: commands run one after the other in the same
    shell, so what one exports or `cd`s the next one sees. Each command's stdin is /dev/null (a command that
    waits for input fails instead of hanging) unless it has its own (a pipe, a heredoc)."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        self._proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=cwd, env=dict(env), text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self._send("set -o pipefail")

    def _send(self, text: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(text + "\n")
        self._proc.stdin.flush()

    def run(self, command: str, *, timeout: float = 600) -> tuple[int, str]:
        """Run a command; its exit code and everything it printed (stdout and stderr, interleaved)."""
        marker = f"__done_{uuid.uuid4().hex}__"
        self._send(f"{{ {command}\n}} < /dev/null\nprintf '\\n{marker} %s\\n' \"$?\"")
        timer = threading.Timer(timeout, lambda: os.killpg(self._proc.pid, signal.SIGKILL))
        timer.start()
        out: list[str] = []
        try:
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                if line.startswith(marker):
                    return int(line.split()[1]), "".join(out).rstrip("\n")
                out.append(line)
        finally:
            timer.cancel()
        raise AssertionError(f"the shell ended while running {command!r} (timeout {timeout} s?):\n{''.join(out)}")

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._send("exit")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
