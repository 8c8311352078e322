"""Fixtures of the evaluator's tests: its index and per-shard matchers on the test's real Redis."""

from __future__ import annotations

import pytest
from evaluator_testkit import SHARDS, ShardMatchers
from redis.asyncio import Redis

from pricealert.evaluator.index import AlertIndex


@pytest.fixture
def index(redis: Redis) -> AlertIndex:
    return AlertIndex(redis, SHARDS)


@pytest.fixture
def matcher(redis: Redis) -> ShardMatchers:
    return ShardMatchers(redis)
