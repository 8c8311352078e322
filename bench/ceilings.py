"""The ceilings above the evaluator and the notifier (issue 21), and the composite trade → mail floor.

The read ceiling: XREADGROUP of a batch of ticks then XACK of them, with the evaluator's redis-py client (connect():
asyncio, decode_responses off), its batch size and its reply flattening (entries_of), over 16 pre-filled streams
read at once as the evaluator drains its 16 shards (overlapped reads, one reader per stream, one process): the most
entries a second a Python consumer gets through before it does anything with them. The SMTP accept ceiling: the
notifier's connection count, each connection sending mails of the notifier's size (MAIL, RCPT, DATA, as its pool
does) to the local SMTP server in its own process, with no notifier logic around them, as many as the notifier
bench sends.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiosmtplib
from floor_stats import summary
from stream_fill import xadd_all

from pricealert.common.events import Condition, Tick, Trigger, now_ms
from pricealert.common.messages import entries_of
from pricealert.common.redisconn import connect
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.servers import RedisServer, temp_dir
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.notifier.mail import RenderedMail, render
from pricealert.notifier.settings import NotifierSettings

STREAMS, GROUP = 16, "floor"  # as many streams as the evaluator's shards, each drained by its own reader
# One mail's trigger id, replaced in the rendered bytes by a distinct one of the same length per mail.
MAIL_ID = "t0000000"


def stream(n: int) -> str:
    """The n-th stream of the read ceiling."""
    return f"floor-read-{n}"


async def fill(url: str, entries: int, streams: int = STREAMS) -> None:
    """Append `entries` ticks (the evaluator's entries, field for field) over `streams` streams, in turn."""
    at = now_ms()

    def ticks() -> Iterator[tuple[str, dict[str, str]]]:
        for n in range(entries):
            price = Decimal("100") + Decimal(n % 3000 - 1500) / 1000
            tick = Tick(symbol="S0001USDT", price=price, trade_id=n, exchange_time=at, received_at=at)
            yield stream(n % streams), tick.to_fields()

    redis = connect(url)
    try:
        await xadd_all(redis, ticks())
    finally:
        await redis.aclose()


async def drain(url: str, group: str, batch: int, streams: int = STREAMS) -> tuple[int, float, list[float]]:
    """Read and ack every stream to its end under a new group, one reader per stream at once on one client (as the
    evaluator's consumers share theirs), `batch` entries a round; entries read, seconds, ms of each round."""
    redis = connect(url)
    samples: list[float] = []
    try:
        for n in range(streams):
            await redis.xgroup_create(stream(n), group, id="0", mkstream=True)

        async def one_stream(name: str) -> int:
            read = 0
            while True:
                round_started = time.perf_counter()
                entries = entries_of(await redis.xreadgroup(group, "c", {name: ">"}, count=batch))
                if not entries:
                    return read
                await redis.xack(name, group, *[entry_id for entry_id, _ in entries])
                samples.append((time.perf_counter() - round_started) * 1000)
                read += len(entries)

        started = time.perf_counter()
        read = sum(await asyncio.gather(*(one_stream(stream(n)) for n in range(streams))))
        return read, time.perf_counter() - started, samples
    finally:
        await redis.aclose()


async def read_ceiling_at(
    url: str, entries: int, batch: int | None = None, runs: int = 1, streams: int = STREAMS
) -> list[dict[str, Any]]:
    """The read ceiling against the Redis at `url`: its streams filled once, then drained `runs` times (a group
    each)."""
    batch = batch or EvaluatorSettings().tick_batch_size  # the evaluator's XREADGROUP COUNT
    redis = connect(url)
    await redis.delete(*(stream(n) for n in range(streams)))
    await redis.aclose()
    await fill(url, entries, streams)
    results = []
    for run in range(runs):
        read, seconds, samples = await drain(url, f"{GROUP}-{run}", batch, streams)
        results.append(
            {
                "entries": read,
                "streams": streams,
                "batch": batch,
                "entries_per_s": round(read / seconds),
                "batch_ms": summary(samples),
                "how": f"{streams} streams read at once, one reader each on one client: XREADGROUP COUNT batch, "
                "then XACK of its ids, in turn",
            }
        )
    return results


async def read_ceiling(entries: int, batch: int | None = None, runs: int = 1) -> list[dict[str, Any]]:
    """The read ceiling on a fresh bundled Redis, `runs` times over the same entries."""
    server = RedisServer(temp_dir("floor-read-")).start()
    try:
        return await read_ceiling_at(server.url, entries, batch, runs)
    finally:
        server.stop()


def notifier_mail() -> RenderedMail:
    """One alert mail as the notifier renders it (the SMTP ceiling sends mails of this size)."""
    at = now_ms()
    trigger = Trigger(
        trigger_id=MAIL_ID,
        alert_id="5f0c8b1e-8d1c-4c4e-9a53-3c1d2f7e9b10",
        user_id="u",
        email="trader.00001@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        name="bench",
        price=Decimal("100001"),
        trade_id=1,
        exchange_time=at,
        tick_received_at=at,
        fired_at=at,
    )
    return render(trigger, NotifierSettings())


def mails(count: int) -> list[bytes]:
    """`count` copies of the notifier's mail, each with its own trigger id (so its own Message-ID)."""
    data = notifier_mail().data
    return [data.replace(MAIL_ID.encode(), f"t{n:07d}".encode()) for n in range(count)]


async def send_all(port: int, mail: RenderedMail, bodies: list[bytes], connections: int) -> tuple[float, list[float]]:
    """Send every body over `connections` open connections at once; seconds in all and ms per mail."""
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) for _ in range(connections)]
    await asyncio.gather(*(client.connect() for client in clients))
    queue: Iterator[bytes] = iter(bodies)
    samples: list[float] = []

    async def one_connection(client: aiosmtplib.SMTP) -> None:
        for body in queue:  # shared: each connection takes the next mail when it is free
            started = time.perf_counter()
            await client.mail(mail.sender, timeout=None)
            await client.rcpt(mail.recipient, timeout=None)
            await client.data(body, timeout=None)
            samples.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one_connection(client) for client in clients))
    seconds = time.perf_counter() - started
    await asyncio.gather(*(client.quit() for client in clients))
    return seconds, samples


async def smtp_ceiling_at(port: int, count: int, connections: int) -> dict[str, Any]:
    """The SMTP accept ceiling against the server on `port`."""
    mail, bodies = notifier_mail(), mails(count)
    seconds, samples = await send_all(port, mail, bodies, connections)
    return {
        "mails": count,
        "connections": connections,
        "mail_bytes": len(mail.data),
        "mails_per_s": round(count / seconds),
        "mail_ms": summary(samples),
    }


async def smtp_ceiling(count: int, connections: int | None = None) -> dict[str, Any]:
    """The SMTP accept ceiling with the local server in its own process; checks it accepted every mail once."""
    connections = connections or NotifierSettings().concurrency  # the notifier's pool size (sender.py)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pricealert.devstack.smtp", "--port", str(port)], stdout=subprocess.PIPE
    )
    try:
        wait_for_port(port)
        result = await smtp_ceiling_at(port, count, connections)
    finally:
        server.send_signal(signal.SIGTERM)
        counts = json.loads(server.communicate(timeout=60)[0] or "{}")
    result["every_mail_accepted_once"] = counts == {"accepted": count, "distinct_message_ids": count}
    return result


def composite_floor(floors: dict[str, Any]) -> dict[str, Any] | None:
    """trade → mail's floor from this run's p99s: 2 stream hops + 1 WebSocket frame + 1 SMTP accept."""
    parts = [
        floors.get(name, {}).get("p99") for name in ("redis_stream_hop_ms", "websocket_frame_ms", "smtp_accept_ms")
    ]
    hop, frame, accept = parts
    if hop is None or frame is None or accept is None:
        return None
    return {
        "p99": round(2 * hop + frame + accept, 3),
        "sum_of": "2 * redis_stream_hop_ms.p99 + websocket_frame_ms.p99 + smtp_accept_ms.p99",
        "note": "a sum of this run's p99s, not a measured distribution",
    }
