"""The evaluator service draining a backlog of ticks: the throughput row's regime, in the real service process.

Run: `uv run python bench/evaluator_drain.py [--alerts 20000] [--ticks 300000] [--shards 16]` (a fresh bundled Redis).
evaluator_bench.py measures throughput with the evaluator's consumers in its own process; this queues the ticks
first (the evaluator's groups made at the streams' start, so it reads them all), then starts `python -m
pricealert.evaluator` and times it until every tick is read and acknowledged. profiles.py records it: the service
saturated, in full batches, where the per-entry costs (reading and parsing the replies) show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from alert_index_setup import load_alerts
from evaluator_bench import fill_templates
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Tick
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import RedisServer, temp_dir


async def queue_ticks(redis: Redis, ticks: int, symbols: int, shards: int) -> None:
    """`ticks` ticks on their symbols' shard streams, each stream's evaluator group made at its start."""
    for shard in range(shards):
        await redis.xgroup_create(Tick.stream_of(shard), names.GROUP_EVALUATOR, id="0", mkstream=True)
    await fill_templates(redis, symbols, ticks, shards, stream_of=Tick.stream_of)


async def unread(redis: Redis, shards: int) -> int:
    """Ticks not yet read, or read and not yet acknowledged, over every shard."""
    left = 0
    for shard in range(shards):
        stream = Tick.stream_of(shard)
        for group in await redis.xinfo_groups(stream):
            if "lag" in group:
                left += int(group["lag"] or 0)
            else:  # Redis 6: no lag; read to the end or not
                left += group["last-delivered-id"] != (await redis.xinfo_stream(stream))["last-generated-id"]
            left += int(group["pending"])
    return left


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--ticks", type=int, default=300_000)
    parser.add_argument("--out", default="bench/results/evaluator_drain.json")
    args = parser.parse_args()
    server = RedisServer(temp_dir("bench-redis-")).start()
    redis = connect(server.url)
    evaluator = None
    try:
        await load_alerts(redis, args.alerts, args.symbols, args.shards)
        await queue_ticks(redis, args.ticks, args.symbols, args.shards)
        started = time.perf_counter()
        evaluator = ServiceProcess(
            "evaluator",
            {"REDIS_URL": server.url, "LOG_LEVEL": "WARNING", "CONSUMER_NAME": "drain", "SHARDS": str(args.shards)},
        ).start()
        while await unread(redis, args.shards):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        result = {
            "alerts": args.alerts,
            "ticks": args.ticks,
            "shards": args.shards,
            "seconds_including_start": round(elapsed, 2),
            "ticks_per_s_including_start": round(args.ticks / elapsed),
        }
        print(json.dumps(result, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if evaluator is not None:
            evaluator.stop()
        await redis.aclose()
        server.stop()


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
