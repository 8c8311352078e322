"""The evaluator benches' alerts and index: their definitions, the loading, and the snapshots `make bench` reuses."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from index_load import Members, load_plain
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError

from pricealert.common.events import (
    WINDOWS,
    AlertEvent,
    AlertEventType,
    Condition,
    Frequency,
    utc_now,
)
from pricealert.common.redisconn import connect
from pricealert.devstack.servers import RedisServer
from pricealert.evaluator.index import AlertIndex

BASE_PRICE = Decimal("100")


def symbol(n: int) -> str:
    return f"S{n:04d}USDT"


ADVANCED_KINDS = (
    Condition.PCT_UP,
    Condition.PCT_DOWN,
    Condition.PCT_MOVE,
    Condition.ENTER_RANGE,
    Condition.EXIT_RANGE,
    Condition.ABOVE,  # every_time, as the next two
    Condition.BELOW,
    Condition.CROSS,
)


def definition(n: int, rng: random.Random, advanced: bool) -> dict[str, object]:
    """The condition fields of alert n: v1 levels, or (advanced) one of ADVANCED_KINDS, all far from firing."""
    offset = Decimal(rng.randint(2_000, 90_000)) / 1000  # 2 .. 90 away from the base price
    if not advanced:
        condition = (Condition.ABOVE, Condition.BELOW)[n % 2]
        target = BASE_PRICE + offset if condition is Condition.ABOVE else BASE_PRICE - offset
        return {"condition": condition, "target_price": target}
    condition = ADVANCED_KINDS[n // 2 % len(ADVANCED_KINDS)]
    if condition in (Condition.PCT_UP, Condition.PCT_DOWN, Condition.PCT_MOVE):
        # Ticks move at most 3 % (98.5 .. 101.5): percents of 4 .. 90 never fire.
        percent = Decimal(rng.randint(40, 900)) / 10
        return {"condition": condition, "percent": percent, "window": rng.choice(list(WINDOWS))}
    if condition is Condition.ENTER_RANGE:
        return {"condition": condition, "low": BASE_PRICE + offset, "high": BASE_PRICE + offset + 10}
    if condition is Condition.EXIT_RANGE:
        return {"condition": condition, "low": BASE_PRICE - offset, "high": BASE_PRICE + offset}
    target = BASE_PRICE + offset if condition is not Condition.BELOW else BASE_PRICE - offset
    return {"condition": condition, "target_price": target, "frequency": Frequency.EVERY_TIME, "cooldown_s": 60}


async def load_alerts(
    redis: Redis, count: int, symbols: int, shards: int, advanced: int = 0, *, first: int = 0, script: bool = False
) -> None:
    """Index alerts first .. count-1 (every count/advanced-th an advanced one), spread over symbols, rarely fired by
    ticks. The v1-shaped ones by bulk ZADDs (index_load.py: the same keys, far faster) unless `script`."""
    if not advanced and not script:
        return await load_plain(redis, first, count, [symbol(n) for n in range(symbols)], shards)
    index, plain = AlertIndex(redis, shards), Members(redis, shards)
    rng = random.Random(1 + first)
    chunk = 5_000
    every = count // advanced if advanced else 0
    executing: asyncio.Task[list[Any]] | None = None  # Redis runs one chunk's scripts while the next is built
    for start in range(first, count, chunk):
        pipe = redis.pipeline(transaction=False)
        for n in range(start, min(start + chunk, count)):
            # Realistic sizes: UUID alert and user ids, emails of about 25 characters.
            alert_id, user_id = str(uuid.UUID(int=n)), str(uuid.UUID(int=n % 50_000 + 10**12))
            email, sym = f"trader.{n % 50_000:05d}@example.com", symbol(n % symbols)
            fields: dict[str, Any] = definition(n, rng, bool(every) and n % every == every - 1)
            if not script and len(fields) == 2:  # a v1 level: condition and target_price only
                plain.add(alert_id, user_id, email, sym, fields["condition"], fields["target_price"])
                continue
            event = AlertEvent(
                type=AlertEventType.CREATED,
                event_id=f"e{n}",
                alert_id=alert_id,
                user_id=user_id,
                email=email,
                symbol=sym,
                name=None,
                expires_at=None,
                occurred_at=utc_now(),
                **fields,
            )
            await index.apply(event, client=pipe)
        if executing:
            await executing
        executing = asyncio.create_task(pipe.execute())
        await plain.send()
    if executing:
        await executing


async def load_alerts_at(url: str, count: int, symbols: int, shards: int, advanced: int = 0) -> None:
    """load_alerts into the Redis at `url` (one process: with the bulk ZADDs a second one made it slower here)."""
    redis = connect(url)
    try:
        await load_alerts(redis, count, symbols, shards, advanced)
    finally:
        await redis.aclose()


def snapshot_name(alerts: int, symbols: int, shards: int, advanced: int) -> str:
    """The file name of an index snapshot of these loads (load_alerts is deterministic: the same alerts each time)."""
    return f"index-{alerts}-{symbols}-{shards}-{advanced}.rdb"


async def loaded(url: str) -> None:
    """Until the Redis at `url` has loaded its snapshot (it answers LOADING errors until then)."""
    redis = connect(url)
    try:
        while True:
            try:
                await redis.ping()
                return
            except BusyLoadingError:
                await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


async def indexed_server(
    directory: Path, alerts: int, symbols: int, shards: int, advanced: int, snapshots: Path | None
) -> tuple[RedisServer, float | None]:
    """A bundled Redis holding the alerts' index: started on this run's snapshot of the same load when `snapshots`
    has one (`make bench` loads 1 M alerts once, not once per bench), else loaded, then saved there. Returns the
    server and the seconds the load took (None when it came from a snapshot)."""
    snapshot = snapshots / snapshot_name(alerts, symbols, shards, advanced) if snapshots else None
    if snapshot is not None and snapshot.exists():
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot, directory / "dump.rdb")
        server = RedisServer(directory).start()
        await loaded(server.url)
        (directory / "dump.rdb").unlink()  # loaded: no copy of hundreds of MB left behind in the temp folder
        return server, None
    server = RedisServer(directory).start()
    redis = connect(server.url)
    try:
        started = time.perf_counter()
        await load_alerts_at(server.url, alerts, symbols, shards, advanced)
        seconds = time.perf_counter() - started
        if snapshot is not None:
            await redis.save()
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(directory / "dump.rdb", snapshot)
    finally:
        await redis.aclose()
    return server, seconds
