"""Garbage on every consumed stream, the real workers running: each entry dead-lettered by each group, and the
workers go on: a user registers, verifies, sets an alert and gets its mail afterwards."""

from __future__ import annotations

import asyncio

import pytest
from e2e_stack import Stack, alert_mails, fire_one_alert
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pricealert.common import names
from pricealert.common.messages import id_key
from pricealert.common.shards import DEFAULT_SHARDS
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.poison import send_hostile, wait_dead_lettered
from pricealert.devstack.poison_streams import ReadStream, dangling_entries, read_streams
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

# The database plays no part in how a consumer treats garbage: one run, on SQLite.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


async def groups_ready(redis: Redis, streams: list[ReadStream]) -> bool:
    """Every group of every stream exists (a group created later would skip what was written before it)."""
    for read in streams:
        try:
            have = {g["name"].decode() for g in await redis.xinfo_groups(read.stream)}
        except ResponseError:
            return False
        if not set(read.groups) <= have:
            return False
    return True


def alive(stack: Stack) -> bool:
    """No service process ended."""
    ended = {
        name: p.process.poll() for name, p in stack.processes.items() if p.process and p.process.poll() is not None
    }
    assert not ended, f"processes ended: {ended}"
    return True


async def taken(redis: Redis, entries: list[tuple[str, str, tuple[str, ...]]]) -> bool:
    """Every group of each (stream, entry id, groups) read it and holds nothing of it pending."""
    for stream, entry_id, groups in entries:
        for group in groups:
            info = next(g for g in await redis.xinfo_groups(stream) if g["name"].decode() == group)
            if id_key(info["last-delivered-id"]) < id_key(entry_id):
                return False
            pending = await redis.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
            if pending:
                return False
    return True


async def test_garbage_on_every_stream_is_dead_lettered_and_the_pipeline_goes_on(
    stack: Stack, redis: Redis, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    streams = read_streams("ETHUSDT", DEFAULT_SHARDS)

    async def ready() -> bool:
        return await groups_ready(redis, streams)

    await eventually(ready, within=30, what="every consumer group")
    sent = [await send_hostile(redis, read.stream, read.good, misshapen=True) for read in streams]
    for read, garbage in zip(streams, sent, strict=True):
        await wait_dead_lettered(redis, garbage, list(read.groups), within=60)
        assert alive(stack)
    written, dangling = [], dangling_entries("ETHUSDT", DEFAULT_SHARDS)
    for read, fields in dangling:
        entry_id = await redis.xadd(read.stream, fields)  # type: ignore[arg-type]  # str fields
        written.append((read.stream, entry_id.decode(), read.groups))

    async def dangling_taken() -> bool:
        return await taken(redis, written)

    await eventually(dangling_taken, within=30, what="the entries about nothing taken")
    assert alive(stack)
    assert not smtp_server.mails, "garbage was mailed"
    fed = {key.decode() async for key in redis.scan_iter(match=f"{names.FEED_KEYS}*")}
    assert fed <= {names.feed_stream(fields["user_id"]) for _, fields in dangling}, f"garbage was fed: {fed}"
    alert = await fire_one_alert(
        stack.url, exchange, smtp_server, email="after@example.com", symbol="ETHUSDT", target="100", trade_price="101"
    )
    assert alert["status"] == "triggered" and len(alert_mails(smtp_server)) == 1
    await asyncio.sleep(0.5)
    assert alive(stack)
