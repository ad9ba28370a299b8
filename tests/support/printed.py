"""The JSON an operator command printed, read back from pytest's captured stdout."""

from __future__ import annotations

import json
from typing import Any

import pytest


def printed_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The command's JSON: the last top-level object on stdout. (In a test process a handler invoked earlier set
    up Powertools' log handler on stdout, so the layer's log lines may come first; a `vpce-guard` process has no
    such handler.)"""
    lines = capsys.readouterr().out.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    return dict(json.loads("\n".join(lines[start:])))
