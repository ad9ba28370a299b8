"""Run the project's commands as a person types them: a fresh process, in the repository, with an environment
that has no AWS configuration of its own (no credentials, no region, no profile files, no instance metadata).

Used by the tests that hold what the product prints and documents to "runs as written".
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
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
