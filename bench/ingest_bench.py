"""Benchmark (not a test): trades/s from the fake exchange's socket into the ticks streams, one ingest process
owning every shard (fenced, deduplicated appends: one script call per shard per batch).

Run: `uv run python bench/ingest_bench.py --rate 30000 --seconds 5 --repeats 3`.
The fake exchange runs as its own process (random walk at --rate trades/s in total over the default
symbols); ingest runs in this process; Redis is a local server. Prints one JSON line with the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.redisconn import connect
from pricealert.common.shards import shard_of
from pricealert.devstack.fakeexchange import default_symbols
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.servers import RedisServer, temp_dir
from pricealert.ingest.handlers import IngestService
from pricealert.ingest.settings import IngestSettings


async def one_run(redis_url: str, rate: int, seconds: float) -> dict[str, float]:
    """Start a fake exchange and ingest, measure the ticks stream's growth over `seconds`."""
    port = free_port()
    fake = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pricealert.devstack.fakeexchange",
        "--port",
        str(port),
        "--random-walk",
        "--rate",
        str(rate),
        "--log-level",
        "WARNING",
    )
    redis = connect(redis_url)
    try:
        await asyncio.to_thread(wait_for_port, port)
        await redis.flushall()
        settings = IngestSettings(
            binance_ws_url=f"ws://127.0.0.1:{port}",
            binance_rest_url=f"http://127.0.0.1:{port}",
            redis_url=redis_url,
            stats_interval_s=3600,
            log_level="WARNING",
        )
        for i, spec in enumerate(s for s in default_symbols() if s.trading):
            shard = shard_of(spec.symbol, settings.shards)
            await redis.sadd(names.ingest_symbol_key(shard, spec.symbol), f"bench-{i}")
            await redis.sadd(names.ingest_symbols_key(shard), spec.symbol)
        service = IngestService(settings, redis)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.sleep(2.0)  # take the shards, connect, subscribe, warm up
        start_len, start, cpu0 = await ticks_written(redis, settings.shards), time.monotonic(), _cpu()
        await asyncio.sleep(seconds)
        end_len, end, cpu1 = await ticks_written(redis, settings.shards), time.monotonic(), _cpu()
        stop.set()
        await task
        ticks, cpu = end_len - start_len, cpu1 - cpu0
        # Ticks per CPU-second of the ingest process: its capacity when the fake, not ingest, is the bottleneck.
        return {
            "ticks_per_s": ticks / (end - start),
            "ingest_cpu_cores": cpu / (end - start),
            "ticks_per_ingest_cpu_s": ticks / cpu if cpu else 0.0,
            "duplicates": service.stats.duplicates,
            "dropped": service.stats.dropped,
        }
    finally:
        fake.terminate()
        await fake.wait()
        await redis.aclose()


async def ticks_written(redis: Redis, shards: int) -> int:
    """Entries on every shard's ticks stream."""
    return sum([await redis.xlen(names.ticks_stream(shard)) for shard in range(shards)])


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    """Repeat the run and report the median."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench/results/ingest.json")
    args = parser.parse_args()
    server = RedisServer(temp_dir("bench-ingest-redis-")).start()
    try:
        runs = [await one_run(server.url, args.rate, args.seconds) for _ in range(args.repeats)]
    finally:
        server.stop()
    result = {
        "benchmark": "ingest_throughput",
        "offered_rate": args.rate,
        "runs": runs,
        "median_ticks_per_s": statistics.median(r["ticks_per_s"] for r in runs),
        "median_ticks_per_ingest_cpu_s": statistics.median(r["ticks_per_ingest_cpu_s"] for r in runs),
        # Each run's figures, in run order, behind the medians (the report's min and max).
        "per_run": {
            "median_ticks_per_s": [r["ticks_per_s"] for r in runs],
            "median_ticks_per_ingest_cpu_s": [r["ticks_per_ingest_cpu_s"] for r in runs],
        },
    }
    sys.stdout.write(json.dumps(result) + "\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
