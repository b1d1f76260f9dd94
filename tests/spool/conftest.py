from __future__ import annotations

import sys
from pathlib import Path

# Make ``tests.servers``, ``tests.delivery.factories`` and ``tests.spool.*`` helpers importable
# under pytest's default import mode.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
