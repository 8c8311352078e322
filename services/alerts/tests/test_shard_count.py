"""Every alerts process agrees with Redis on the shard count, or changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from alerts_testkit import running, worker_running
from redis.asyncio import Redis

from pricealert.alerts.maintenance import resync
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.shardgate import ShardGate
from pricealert.common import names
from pricealert.common.errors import ServiceUnavailable
from pricealert.common.shards import ShardCountMismatch


async def test_the_api_and_the_worker_record_the_count(settings: AlertsSettings, redis: Redis) -> None:
    async with running(settings):
        assert await redis.get(names.SHARD_COUNT_KEY) == str(settings.shards).encode()


async def test_the_api_the_worker_and_resync_refuse_another_count(settings: AlertsSettings, redis: Redis) -> None:
    await redis.set(names.SHARD_COUNT_KEY, str(settings.shards + 1))
    with pytest.raises(ShardCountMismatch):
        async with worker_running(settings):
            pass
    with pytest.raises(ShardCountMismatch):
        async with running(settings.model_copy(update={"relay_enabled": False})):
            pass
    with pytest.raises(ShardCountMismatch):
        await resync(settings)


async def test_a_late_check_that_finds_another_count_refuses_changes(settings: AlertsSettings, redis: Redis) -> None:
    await redis.set(names.SHARD_COUNT_KEY, "3")
    gate = ShardGate(redis, 16)
    gate.check()  # not checked yet: no mismatch known
    await asyncio.wait_for(gate.run(asyncio.Event()), 10)
    assert not gate.agreed and gate.mismatch is not None
    with pytest.raises(ServiceUnavailable) as refused:
        gate.check()
    assert refused.value.code == "shard_count_mismatch"
