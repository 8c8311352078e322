"""The worker processes' collector setting: start-up frozen, young collections rare, cyclic garbage freed on a clock."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from pricealert.common import collector
from pricealert.common.collector import YOUNG_THRESHOLD, keep_collector_off_hot_paths
from pricealert.common.runner import run_until_signalled


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_is_frozen_and_young_collections_are_rare() -> None:
    keep_collector_off_hot_paths()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    collections = gc.get_stats()[0]["collections"]
    # A stream reply's worth of containers held at once: at the default threshold this set off ~30 collections.
    held = [[n] for n in range(20_000)]
    assert gc.get_stats()[0]["collections"] == collections
    assert len(held) == 20_000


class Node:
    """One end of a reference cycle, as a closed connection's protocol and transport make."""

    partner: Node | None = None


@pytest.mark.usefixtures("restored_collector")
async def test_a_quiet_worker_frees_its_cyclic_garbage_on_a_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    keep_collector_off_hot_paths()
    monkeypatch.setattr(collector, "COLLECT_EVERY_S", 0.1, raising=False)
    freed = asyncio.Event()

    async def worker(stop: asyncio.Event) -> None:
        # A worker that frees by reference counting all it allocates: no young collection is ever due by count.
        for _ in range(3):
            first, second = Node(), Node()
            first.partner, second.partner = second, first
            weakref.finalize(first, freed.set)
            del first, second
            await asyncio.sleep(0.05)
        await asyncio.wait_for(freed.wait(), 2.0)

    await run_until_signalled(worker)
    assert freed.is_set()
