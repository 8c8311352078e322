"""Fixtures of the evaluator's tests: its index and matcher on the test's real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Matcher


@pytest.fixture
def index(redis: Redis) -> AlertIndex:
    return AlertIndex(redis)


@pytest.fixture
def matcher(redis: Redis) -> Matcher:
    return Matcher(redis)
