"""Evaluator benchmark: throughput, tick→trigger latency and index memory with 1 000 000 alerts on 500 symbols.

Run: `uv run python bench/evaluator_bench.py [--alerts 1000000] [--advanced 200000] [--symbols 500] [--shards 16]`
(a fresh bundled Redis each run). `--advanced` of the alerts are percent, range or recurring ones (issue 18: every
symbol then keeps its rolling windows, the slow path of the evaluation script). Ticks go to their symbol's shard
stream; throughput drains every shard's stream at once, one consumer per shard in one process (as one replica
owning every shard runs them), under leases the bench holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from alert_index_setup import (
    BASE_PRICE,
    indexed_server,
    symbol,
)
from redis.asyncio import Redis
from spread import steady
from stream_fill import xadd_all

from pricealert.common import names
from pricealert.common.collector import keep_collector_off_hot_paths
from pricealert.common.consumer import Message, StreamConsumer
from pricealert.common.events import (
    AlertEvent,
    AlertEventType,
    Condition,
    Tick,
    Trigger,
    now_ms,
    utc_now,
)
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.common.shards import shard_of
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer, temp_dir
from pricealert.evaluator.handlers import SERVICE, ticks_consumer
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Matcher
from pricealert.evaluator.settings import EvaluatorSettings


async def full_window_bytes(redis: Redis, shards: int) -> int:
    """Bytes of one symbol's window state in Redis once every window is full: a trade every 10 s for 25 hours."""
    sym = "WINDOWUSDT"
    shard = shard_of(sym, shards)
    event = AlertEvent(
        type=AlertEventType.CREATED,
        event_id="window",
        alert_id="window-alert",
        user_id="u",
        email="u@example.com",
        symbol=sym,
        condition=Condition.PCT_UP,
        percent=Decimal(1000),
        window="1m",
        occurred_at=utc_now(),
    )
    await AlertIndex(redis, shards).apply(event)
    owner_key = names.shard_owner_key(SERVICE, shard)
    await redis.set(owner_key, "bench")
    matcher = Matcher(redis, shard=shard, count=shards, owner_key=owner_key, token="bench")
    rng, start = random.Random(3), now_ms()
    for first in range(0, 9_000, 1_000):
        batch = []
        for n in range(first, first + 1_000):
            price = BASE_PRICE + Decimal(rng.randint(-1500, 1500)) / 1000
            fields = Tick(symbol=sym, price=price, trade_id=n, exchange_time=start + n * 10_000, received_at=start)
            entry_id = await redis.xadd(Tick.stream_of(shard), fields.to_fields())  # type: ignore[arg-type]  # redis-py's field mapping type is invariant in its values
            batch.append(Message(entry_id.decode(), fields.to_fields()))
        await matcher.fire(batch)
    return int(await redis.memory_usage(names.eval_window_key(shard, sym)) or 0)


def tick(sym: str, price: Decimal, n: int) -> dict[str, str]:
    return Tick(symbol=sym, price=price, trade_id=n, exchange_time=now_ms(), received_at=now_ms()).to_fields()


def template(shard: int) -> str:
    """The stream the throughput runs' ticks of `shard` are filled into once, then copied from each run."""
    return f"bench:ticks-template:{shard}"


async def fill_templates(
    redis: Redis, symbols: int, ticks: int, shards: int, stream_of: Callable[[int], str] = template
) -> None:
    """The throughput runs' ticks, filled once (building and appending 200 000 ticks from Python costs more than
    draining them) into each shard's `stream_of(shard)`; each run copies them (COPY, in Redis) into the shards'
    ticks streams."""
    rng = random.Random(2)

    def entries() -> Iterator[tuple[str, dict[str, str]]]:
        for n in range(ticks):
            price = BASE_PRICE + Decimal(rng.randint(-1500, 1500)) / 1000
            sym = symbol(rng.randrange(symbols))
            yield stream_of(shard_of(sym, shards)), tick(sym, price, n)

    await xadd_all(redis, entries())


async def throughput(redis: Redis, ticks: int, shards: int) -> float:
    """Ticks per second the evaluator's consumers (one per shard, each in its own loop, as the service runs them)
    drain from the shards' streams, each a fresh copy of its template (fill_templates) read from its start."""
    settings = EvaluatorSettings(consumer_name="bench", SHARDS=shards)
    keep_collector_off_hot_paths()  # as the evaluator's process sets it (runner.py)
    consumers, shares = [], []
    for shard in range(shards):
        owner_key = names.shard_owner_key(SERVICE, shard)
        await redis.set(owner_key, "bench")
        stream = Tick.stream_of(shard)
        await redis.delete(stream)
        if await redis.exists(template(shard)):
            await redis.copy(template(shard), stream)
            await redis.xgroup_create(stream, names.GROUP_EVALUATOR, id="0")
        consumers.append(ticks_consumer(redis, settings, shard, owner_key=owner_key, token="bench"))
        await consumers[-1].ensure_group()
        shares.append(await redis.xlen(stream))

    async def drain(consumer: StreamConsumer, share: int) -> None:
        # Each shard on its own: polled in lockstep, every round waited for the blocked read of a drained shard.
        handled = 0
        while handled < share:
            handled += await consumer.poll_once()

    started = time.perf_counter()
    await asyncio.gather(*(drain(consumer, share) for consumer, share in zip(consumers, shares, strict=True)))
    elapsed = time.perf_counter() - started
    for consumer in consumers:
        await consumer.close()
    return sum(shares) / elapsed


async def delete_streams(redis: Redis, shards: int, *kinds: str) -> None:
    """Delete the per-shard streams of `kinds` (names.TICKS_KIND, ...)."""
    await redis.delete(*(names.shard_stream(shard, kind) for shard in range(shards) for kind in kinds))


async def groups_ready(redis: Redis, streams: list[str]) -> None:
    """Wait until the evaluator's group exists on every stream (a new group starts at the end: earlier ticks wait)."""
    for stream in streams:
        while not await redis.exists(stream) or not await redis.xinfo_groups(stream):
            await asyncio.sleep(0.1)


async def latency(
    redis: Redis, redis_url: str, symbols: int, rate: int, seconds: float, shards: int, run: int = 0
) -> tuple[list[float], float]:
    """ms from tick XADD to trigger seen, at `rate` ticks/s, against the evaluator running as its own process."""
    index = AlertIndex(redis, shards)
    evaluator = ServiceProcess(
        "evaluator",
        {"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "CONSUMER_NAME": "bench-latency", "SHARDS": str(shards)},
    ).start()
    used = sorted({shard_of(symbol(n), shards) for n in range(symbols)})
    await asyncio.wait_for(groups_ready(redis, [Tick.stream_of(shard) for shard in used]), 30)
    await asyncio.sleep(1.0)  # let it drain what it took over
    total = int(rate * seconds)
    # Some ticks cross a fresh alert (one per symbol, so each such tick fires exactly one); the rest fire nothing.
    fire_every = max(1, -(-total // symbols))
    for n in range(0, total, fire_every):
        event = AlertEvent(
            type=AlertEventType.CREATED,
            event_id=f"l{run}-{n}",
            alert_id=f"lat{run}-{n}",
            user_id="u",
            email="u@example.com",
            symbol=symbol(n // fire_every),
            condition=Condition.ABOVE,
            target_price=BASE_PRICE + Decimal("0.6"),
            occurred_at=utc_now(),
        )
        await index.apply(event)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    producing = True

    async def read_triggers() -> None:
        reader = connect(redis_url)
        # One XREAD for all (one Redis). From the start, not "$": a stream still at "$" would skip what is appended
        # between two reads (the triggers streams were deleted before this run).
        last_ids: dict[str, str] = {Trigger.stream_of(shard): "0-0" for shard in used}
        deadline = float("inf")
        while len(seen) < len(sent) or producing:
            if not producing:
                deadline = min(deadline, time.perf_counter() + 10)
                if time.perf_counter() > deadline:
                    break
            reply = await reader.xread(last_ids, count=1000, block=100)  # type: ignore[arg-type]  # str ids are fine
            now = time.perf_counter()
            for stream, entries in reply or []:
                for entry_id, fields in entries:
                    last_ids[stream.decode()] = entry_id.decode()
                    seen.setdefault(fields[b"alert_id"].decode(), now)
        await reader.aclose()

    reader_task = asyncio.create_task(read_triggers())
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    for n in range(total):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        fires = n % fire_every == 0
        price = BASE_PRICE + (Decimal("0.7") if fires else Decimal("0.5"))
        sym = symbol(n // fire_every) if fires else symbol(n % symbols)
        t0 = time.perf_counter()
        await redis.xadd(Tick.stream_of(shard_of(sym, shards)), tick(sym, price, 10_000_000 + n))  # type: ignore[arg-type]  # redis-py's field mapping type is invariant in its values
        if fires:
            sent[f"lat{run}-{n}"] = t0
    producing = False
    await reader_task
    rss_mb = process_rss_mb(evaluator.process.pid) if evaluator.process else 0.0
    evaluator.stop()
    return [(seen[a] - sent[a]) * 1000 for a in sent if a in seen], rss_mb


def process_rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--advanced", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--snapshots", type=Path, help="a folder of index snapshots to start from, and to save to")
    parser.add_argument("--out", default="bench/results/evaluator.json")
    args = parser.parse_args()
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()

    empty = RedisServer(temp_dir("bench-redis-empty-")).start()
    baseline_client = connect(empty.url)
    baseline = int((await baseline_client.info("memory"))["used_memory"])
    await baseline_client.aclose()
    empty.stop()
    server, load_s = await indexed_server(
        temp_dir("bench-redis-"), args.alerts, args.symbols, args.shards, args.advanced, args.snapshots
    )
    redis = connect(server.url)
    phase("index")
    try:
        index_mb = (int((await redis.info("memory"))["used_memory"]) - baseline) / 2**20
        await fill_templates(redis, args.symbols, args.ticks, args.shards)
        phase("fill")
        rates = []
        for _ in range(args.repeats):
            rates.append(await throughput(redis, args.ticks, args.shards))
            await delete_streams(redis, args.shards, names.TICKS_KIND)
        await redis.delete(*(template(shard) for shard in range(args.shards)))
        phase("throughput")
        window_bytes = await full_window_bytes(redis, args.shards)
        phase("window_state")
        runs = []
        for run in range(args.repeats):
            await delete_streams(redis, args.shards, names.TICKS_KIND, names.TRIGGERS_KIND)
            await redis.delete(*(names.shard_owner_key(SERVICE, shard) for shard in range(args.shards)))
            lat, evaluator_rss_mb = await latency(
                redis, server.url, args.symbols, args.rate, args.seconds, args.shards, run
            )
            runs.append(
                {
                    "count": len(lat),
                    "p50": round(statistics.median(lat), 2),
                    "p95": round(percentile(lat, 0.95), 2),
                    "p99": round(percentile(lat, 0.99), 2),
                    "max": round(max(lat), 2),
                    "evaluator_rss_mb": round(evaluator_rss_mb, 1),
                    "samples": [round(v, 3) for v in lat],
                }
            )
        phase("latency")
        median_run = sorted(runs, key=lambda r: r["p99"])[len(runs) // 2]
        # Run i: the i-th throughput run and the i-th latency run (with its evaluator's memory).
        each_run = [
            {
                "throughput_ticks_per_s": round(rate),
                "latency_ms": {k: v for k, v in lat.items() if k not in ("samples", "evaluator_rss_mb")},
                "evaluator_process_rss_mb": lat["evaluator_rss_mb"],
                "index_memory_mb": round(index_mb + float(str(lat["evaluator_rss_mb"])), 1),
            }
            for rate, lat in zip(rates, runs, strict=True)
        ]
        result = {
            "alerts": args.alerts,
            "advanced_alerts": args.advanced,
            "symbols": args.symbols,
            "shards": args.shards,
            "repeats": args.repeats,
            "load_seconds": None if load_s is None else round(load_s, 1),
            "index_from_snapshot": load_s is None,
            **steady(each_run),
            "redis_index_mb": round(index_mb, 1),
            "window_state_bytes_per_symbol": round(window_bytes),
            "latency_samples_ms": median_run["samples"],
            "phase_seconds": phases,
        }
        print(json.dumps({k: v for k, v in result.items() if k not in ("latency_samples_ms", "per_run")}, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        await redis.aclose()
        server.stop()


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
