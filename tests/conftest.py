"""Test-wide setup: the layer folder on sys.path, exactly as Lambda mounts it at /opt/python."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "vpce_guard"
if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))

# moto simulates endpoint services and their permissions but not their connections: add those calls, computed
# from moto's own state, to every in-process mock (devkit/moto_privatelink.py says what they do).
from devkit import moto_privatelink  # noqa: E402

moto_privatelink.install()
