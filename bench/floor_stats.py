"""The figures of a floor's samples (bench/floors.py and bench/ceilings.py)."""

from __future__ import annotations

import statistics


def summary(samples_ms: list[float]) -> dict[str, float]:
    """Count, p50, p99 and max of samples in ms."""
    ordered = sorted(samples_ms)
    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[int(len(ordered) * 0.99) - 1], 3),
        "max": round(ordered[-1], 3),
    }
