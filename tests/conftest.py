"""Test-wide setup: the layer folder on sys.path, exactly as Lambda mounts it at /opt/python."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "vpce_guard"
if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))

# What the project adds to moto (devkit/moto_extensions.py): the endpoint-service connection calls, computed from
# moto's own state, and a TransactWriteItems that backs each table up once, for every in-process mock.
from devkit import moto_extensions  # noqa: E402

moto_extensions.install()
