"""LocalStack for the rehearsal: its own virtualenv (Python 3.13), run on this host, stopped afterwards.

The settings and the workarounds are the measured recipe for LocalStack `PINNED_VERSION` on a machine that
reaches package registries only. Everything LocalStack writes lives under one state directory, made anew for
each run, so a rehearsal never sees the leftovers of another.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-localstack"
PYTHON = VENV / "bin" / "python"
PINNED_VERSION = "2026.3.0"
PORT = 4566
HOOK = Path(__file__).with_name("localstack_hook.py")
LAMBDA_INIT = Path(__file__).with_name("lambda_init.py")
#: SAM CLI's stock runtime interface emulator, which the init stand-in forwards invocations to.
SAM_RIE = (ROOT / ".venv-sam" / "lib" / "python3.11" / "site-packages" / "samcli" / "local" / "rapid"
           / "aws-lambda-rie-x86_64")
#: The image `make local-image` builds, used for the python3.13 runtime instead of a pulled one.
LAMBDA_IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"
#: Workarounds applied inside LocalStack by its start.d hook (localstack_hook.py), and in each function
#: container by the init stand-in (`layers-into-opt`, checked by the rehearsal through the function itself).
HOOK_WORKAROUNDS = ("dynamodb-on-moto", "cfn-getatt-sam-generated", "cfn-list-parameter-on-delete",
                    "lambda-image-local", "lambda-init-standin")


class LocalStackError(RuntimeError):
    """LocalStack could not be started as the rehearsal needs it; the message says why."""


@dataclass
class LocalStack:
    """One LocalStack process on 0.0.0.0:PORT (it binds every address whatever it is told), talked to only on
    127.0.0.1 from here and on the Docker bridge address from the function containers."""

    state_dir: Path
    docker_host: str
    bridge_ip: str
    lambda_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{PORT}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "localstack.log"

    @property
    def status_path(self) -> Path:
        return self.state_dir / "workarounds.json"

    def environment(self) -> dict[str, str]:
        """The settings of the measured recipe (see docs/rehearsal.md for why each is there)."""
        docker_flags = " ".join(f"-e {k}={v}" for k, v in sorted(self.lambda_env.items()))
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "OVERRIDE_IN_DOCKER": "0",  # this host looks like a container to LocalStack; it is not one
            "FILESYSTEM_ROOT": str(self.state_dir / "fs"),
            "GATEWAY_LISTEN": f"0.0.0.0:{PORT}",
            "DOCKER_HOST": self.docker_host,
            "HOSTNAME_FROM_LAMBDA": self.bridge_ip,
            "LAMBDA_DOCKER_NETWORK": "bridge",
            "LAMBDA_IGNORE_ARCHITECTURE": "1",
            "LAMBDA_RUNTIME_IMAGE_MAPPING": json.dumps({"python3.13": LAMBDA_IMAGE}),
            "LAMBDA_DOCKER_FLAGS": docker_flags,
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "VPCE_GUARD_WORKAROUND_STATUS": str(self.status_path),
            "VPCE_GUARD_LAMBDA_INIT": str(LAMBDA_INIT),
            "VPCE_GUARD_LAMBDA_RIE": str(SAM_RIE),
        }

    def start(self, timeout: float = 120) -> dict[str, dict[str, object]]:
        """Start it and wait until it answers and its start.d hook has run; returns the hook's report."""
        for need, how in ((PYTHON, "make rehearsal builds it (requirements/localstack.txt)"),
                          (SAM_RIE, "make sam-venv")):
            if not need.exists():
                raise LocalStackError(f"{need} is missing ({how})")
        if not port_free(PORT):
            raise LocalStackError(f"port {PORT} is already in use: another LocalStack? (stop it first)")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        start_d = self.state_dir / "fs" / "etc" / "localstack" / "init" / "start.d"
        start_d.mkdir(parents=True)
        shutil.copyfile(HOOK, start_d / "vpce_guard_workarounds.py")
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen([str(PYTHON), "-m", "localstack.runtime.main"], cwd=self.state_dir,
                                     stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalStackError(f"LocalStack exited with {self.proc.returncode}: {self.tail()}")
            health = self.health()
            if health and self.status_path.exists():
                if health.get("version") != PINNED_VERSION:
                    raise LocalStackError(f"LocalStack {health.get('version')} is not the pinned {PINNED_VERSION}")
                return json.loads(self.status_path.read_text())
            time.sleep(0.5)
        raise LocalStackError(f"LocalStack not ready after {timeout:.0f} s: {self.tail()}")

    def health(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=2) as resp:  # noqa: S310
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 90) -> None:
        """SIGTERM to LocalStack alone: it stops its function containers (`docker stop`, which a signal to its
        whole process group would interrupt) and the DynamoDB server it started, then exits. Whatever of its
        process group is still there afterwards is killed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a just-stopped server's TIME_WAIT is no user
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
