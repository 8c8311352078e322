"""The stream contract tests: one per stream, writing through the real producer to a real Redis."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
