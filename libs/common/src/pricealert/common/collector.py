"""How the worker processes set Python's cyclic garbage collector: out of the hot paths' way."""

from __future__ import annotations

import gc

# A stream read of 2 000 entries makes tens of thousands of short-lived containers; at CPython's default first
# threshold (700) each read set off dozens of collections that walked them all while the reply still held them
# (a third of the evaluator's busy samples in bench/profiles.py). They are freed by reference counting, not by the
# collector, so collecting less often costs no memory that a cycle would not already hold.
YOUNG_THRESHOLD = 100_000
OLDER_THRESHOLDS = (20, 20)


def keep_collector_off_hot_paths() -> None:
    """Freeze what start-up loaded and collect young objects once per ~100 000 allocations, not 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
