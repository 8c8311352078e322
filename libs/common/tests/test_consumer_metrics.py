"""The consumer loop's counters and gauges against a real Redis; the worker metrics endpoint of run_worker_process."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from pricealert.common.consumer import ConsumerOptions, Message, PermanentError, StreamConsumer
from pricealert.common.metrics import serve_worker_metrics
from pricealert.common.settings import ServiceSettings
from pricealert.devstack.ports import free_port, wait_for_port


def options(stream: str, consumer: str, **overrides: object) -> ConsumerOptions:
    base: dict[str, object] = dict(
        stream=stream,
        group="g",
        consumer=consumer,
        service="test",
        block_ms=20,
        reclaim_idle_ms=100,
        reclaim_every_s=0.0,
        max_deliveries=2,
        levels_every_s=0.0,
    )
    base.update(overrides)
    return ConsumerOptions(**base)  # type: ignore[arg-type]


def value(name: str, stream: str) -> float:
    """One sample of the default registry for (stream, group g); 0 when it was never touched."""
    return REGISTRY.get_sample_value(name, {"stream": stream, "group": "g"}) or 0.0


async def redis_major(redis: Redis) -> int:
    return int(str((await redis.info("server"))["redis_version"]).split(".")[0])


async def test_counters_count_handled_failed_dead_lettered_and_reclaimed_entries(redis: Redis) -> None:
    stream = f"test:metrics:{uuid.uuid4().hex}"

    async def handle(messages: Sequence[Message]) -> None:
        for message in messages:
            if message.fields["n"] == "poison":
                raise PermanentError("unreadable")
            if message.fields["n"] == "flaky" and message.deliveries == 1:
                raise RuntimeError("transient")

    async def abandon(messages: Sequence[Message]) -> None:
        raise asyncio.CancelledError  # a replica that dies holding its batch

    dying = StreamConsumer(redis, options(stream, "dying", batch_size=1), abandon)
    await dying.ensure_group()
    await redis.xadd(stream, {"n": "orphan"})
    with contextlib.suppress(asyncio.CancelledError):
        await dying.poll_once()
    for n in ("1", "2", "poison", "flaky"):
        await redis.xadd(stream, {"n": n})

    consumer = StreamConsumer(redis, options(stream, "alive"), handle)
    await asyncio.sleep(0.15)  # the orphan's idle time passes the reclaim threshold
    for _ in range(10):
        await consumer.poll_once()
        await asyncio.sleep(0.03)
        if value("pricealert_stream_entries_handled_total", stream) == 4:
            break

    assert value("pricealert_stream_entries_reclaimed_total", stream) >= 1
    # orphan, 1, 2 at once; flaky on its second delivery
    assert value("pricealert_stream_entries_handled_total", stream) == 4
    # poison once (permanent), flaky once
    assert value("pricealert_stream_handler_failures_total", stream) == 2
    assert value("pricealert_stream_entries_dead_lettered_total", stream) == 1


async def test_lag_and_pending_gauges_follow_the_group(redis: Redis) -> None:
    stream = f"test:levels:{uuid.uuid4().hex}"

    async def never_acks(messages: Sequence[Message]) -> None:
        return None  # handler_acks: the entries stay pending

    consumer = StreamConsumer(redis, options(stream, "c", batch_size=2, handler_acks=True), never_acks)
    await consumer.ensure_group()
    for n in range(3):
        await redis.xadd(stream, {"n": str(n)})

    await consumer.report_levels()
    assert value("pricealert_stream_group_pending", stream) == 0
    lag = value("pricealert_stream_group_lag", stream)
    if await redis_major(redis) >= 7:
        assert lag == 3
    else:
        assert math.isnan(lag)  # Redis 6 cannot tell how far behind the group is

    await consumer.poll_once()  # reads 2 of 3, then refreshes the gauges
    assert value("pricealert_stream_group_pending", stream) == 2
    await consumer.poll_once()
    assert value("pricealert_stream_group_pending", stream) == 3
    assert value("pricealert_stream_group_lag", stream) == 0


async def test_gauges_are_not_refreshed_on_every_batch(redis: Redis) -> None:
    stream = f"test:throttle:{uuid.uuid4().hex}"

    async def never_acks(messages: Sequence[Message]) -> None:
        return None

    consumer = StreamConsumer(redis, options(stream, "c", handler_acks=True, levels_every_s=3600), never_acks)
    await consumer.ensure_group()
    await redis.xadd(stream, {"n": "1"})
    await consumer.poll_once()
    assert value("pricealert_stream_group_pending", stream) == 1
    await redis.xadd(stream, {"n": "2"})
    await consumer.poll_once()
    assert value("pricealert_stream_group_pending", stream) == 1  # still the first reading


async def test_worker_process_serves_metrics_on_metrics_port(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    script = Path(__file__).with_name("metrics_worker_process.py")
    env = {**os.environ, "REDIS_URL": redis_url, "METRICS_PORT": str(port)}
    await redis.xadd("test:worker-metrics", {"n": "1"})
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_for_port, port)
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                scrape = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                if 'pricealert_stream_entries_handled_total{group="g",stream="test:worker-metrics"} 1.0' in scrape:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the handled entry was never counted:\n{scrape}")
    finally:
        process.terminate()
        output, _ = await asyncio.to_thread(process.communicate, timeout=20)
    assert process.returncode == 0, output.decode()[-2000:]


def test_metrics_port_zero_is_off_and_a_taken_port_is_no_crash() -> None:
    assert ServiceSettings(_env_file=None).metrics_port == 0
    assert serve_worker_metrics("127.0.0.1", 0) is False
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert serve_worker_metrics("127.0.0.1", taken.getsockname()[1]) is False
