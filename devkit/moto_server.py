"""Start and stop a moto server on a free loopback port (demo and end-to-end tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

#: The repository root: the server process imports devkit from there.
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(host: str = "127.0.0.1", port: int | None = None,
                env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the endpoint URL of a fresh moto server; the server is stopped on exit, whatever happens.
    `env` adds to the server's environment (e.g. MOTO_ACCOUNT_ID, the account of requests it cannot place).
    The server is moto's with what devkit/moto_extensions.py adds to it."""
    port = port or _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devkit.moto_extensions", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=ROOT,
    )
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"  # noqa: S104
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()  # noqa: S310 - loopback only
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
