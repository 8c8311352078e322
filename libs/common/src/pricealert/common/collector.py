"""How the worker processes set Python's cyclic garbage collector: out of the hot paths' way."""

from __future__ import annotations

import asyncio
import gc

# A stream read of 2 000 entries makes tens of thousands of short-lived containers; at CPython's default first
# threshold (700) each read set off dozens of collections that walked them all while the reply still held them
# (a third of the evaluator's busy samples in bench/profiles.py). They are freed by reference counting, not by the
# collector, so collecting less often costs no memory that a cycle would not already hold.
YOUNG_THRESHOLD = 100_000
OLDER_THRESHOLDS = (20, 20)
# That threshold counts allocations net of frees, so a worker whose steady state frees what it allocates goes an
# hour between collections while its cyclic garbage piles up (ingest: each ticker poll's closed HTTP connection,
# ~0.3 MiB a minute in the soak). A clock bounds that garbage by time instead: the young generations every
# COLLECT_EVERY_S (a few ms: they hold what was made since), everything every FULL_EVERY of them.
COLLECT_EVERY_S = 30.0
FULL_EVERY = 20


def keep_collector_off_hot_paths() -> None:
    """Freeze what start-up loaded and collect young objects once per ~100 000 allocations, not 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


async def collect_on_a_clock() -> None:
    """Collect the young generations every COLLECT_EVERY_S and all of them every FULL_EVERY times, until cancelled."""
    ticks = 0
    while True:
        await asyncio.sleep(COLLECT_EVERY_S)
        ticks += 1
        gc.collect(2 if ticks % FULL_EVERY == 0 else 1)
