"""Running the `pricealert` CLI in tests, and making real pending and dead-lettered stream entries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from typer.testing import CliRunner, Result

from pricealert.cli.main import app
from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, PermanentError, StreamConsumer
from pricealert.common.ownership import ShardOwnership
from pricealert.common.redisconn import RedisClient


async def run_cli(*args: str, env: Mapping[str, str] | None = None, input: str | None = None) -> Result:
    """Invoke the CLI in a worker thread (it runs its own event loop), stdout and stderr kept apart."""
    runner = CliRunner()
    environment = {"COLUMNS": "200", **(env or {})}
    return await asyncio.to_thread(lambda: runner.invoke(app, list(args), env=environment, input=input))


def json_of(result: Result) -> Any:
    """The JSON a --json invocation printed (failing with its output when it did not)."""
    assert result.stdout.strip(), f"no output; stderr: {result.stderr}"
    return json.loads(result.stdout)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def tick_fields(index: int) -> dict[str, str]:
    """A tick as ingest writes it."""
    return {
        "symbol": "BTCUSDT",
        "price": f"{65000 + index}.25",
        "trade_id": str(1000 + index),
        "exchange_time": "1700000000000",
        "received_at": "1700000000004",
    }


def trigger_fields(index: int) -> dict[str, str]:
    """A trigger as the evaluator writes it."""
    return {
        "trigger_id": f"trigger-{index}",
        "alert_id": f"alert-{index}",
        "user_id": "user-1",
        "email": "ada@example.com",
        "symbol": "BTCUSDT",
        "condition": "above",
        "target_price": "65000",
        "name": f"alert {index}",
        "price": "65001.5",
        "trade_id": str(2000 + index),
        "exchange_time": "1700000000000",
        "tick_received_at": "1700000000004",
        "fired_at": "1700000000009",
    }


async def leave_pending(
    redis: Redis, stream: str, group: str, consumer: str, entries: Sequence[dict[str, str]], *, read: int
) -> list[str]:
    """XADD `entries`, create `group`, and read `read` of them as `consumer` without acking them."""
    ids = [_text(await redis.xadd(stream, dict(fields))) for fields in entries]  # type: ignore[arg-type]
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    await redis.xreadgroup(group, consumer, {stream: ">"}, count=read)
    return ids


async def dead_letter_via_consumer(
    redis: Redis, stream: str, group: str, consumer: str, entries: Sequence[dict[str, str]], *, reason: str
) -> list[str]:
    """XADD `entries` and let the real consumer loop dead-letter each one (a permanent handler failure)."""
    ids = [_text(await redis.xadd(stream, dict(fields))) for fields in entries]  # type: ignore[arg-type]

    async def refuse(messages: Sequence[Message]) -> None:
        raise PermanentError(reason)

    options = ConsumerOptions(stream, group, consumer, service=group, batch_size=len(entries))
    loop = StreamConsumer(redis, options, refuse)
    await loop.ensure_group()
    await loop.poll_once()
    assert await redis.xlen(names.dead_letter_stream(stream)) >= len(entries)
    return ids


@asynccontextmanager
async def replicas(
    redis: RedisClient, service: str, consumers: Sequence[str], count: int = 4
) -> AsyncIterator[list[ShardOwnership]]:
    """Replicas of `service` holding shard leases (their work just waits) until the block ends."""
    stop = asyncio.Event()
    owners = [
        ShardOwnership(redis, service=service, consumer=c, count=count, lease_ms=1500, interval_s=0.3)
        for c in consumers
    ]

    async def idle(shard: int, shard_stop: asyncio.Event) -> None:
        await shard_stop.wait()

    tasks = [asyncio.create_task(owner.run(stop, idle)) for owner in owners]
    try:
        yield owners
    finally:
        stop.set()
        await asyncio.gather(*tasks)
