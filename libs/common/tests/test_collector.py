"""The worker processes' collector setting: start-up frozen, young collections rare."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pricealert.common.collector import YOUNG_THRESHOLD, keep_collector_off_hot_paths


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
