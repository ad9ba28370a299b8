"""Development harness: everything that runs vpce-guard outside Lambda (tests, demo, local runner).

Importing it puts the layer folder on sys.path, as Lambda mounts the layer at /opt/python.
"""

from __future__ import annotations

import sys
from pathlib import Path

LAYER_DIR = Path(__file__).resolve().parents[1] / "layers" / "vpce_guard"
if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))
