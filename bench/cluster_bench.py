"""Evaluator throughput on a Redis Cluster of 3 masters, with 1 and then 2 evaluator processes sharing the shards.

The alerts are indexed once by bulk ZADDs to the masters serving their shards (index_load.py: the members the
index script writes), and the ticks filled once into a template stream beside each shard's ticks stream (same slot).
Each run: N evaluator processes on the cluster (REDIS_CLUSTER_URL, SHARDS) take the shards by leases; they stop, the
benchmark holds every shard's lease itself while it copies each template into its shard's ticks stream (COPY, in
Redis), starts N evaluators again and lets the leases go.
The clock runs while the evaluators drain the ticks: the rate between 10 % and 90 % of the ticks delivered (the
lease hand-out at the start and the last batches left out), with the CPU seconds each evaluator process and the
Redis masters spent. On a 2-core machine the processes and the masters share the cores: read the per-process
and per-CPU-second figures, not only the total.
Each process count copies and drains the ticks --repeats times (medians, with each repeat's figures under per_run).
Run: `uv run python bench/cluster_bench.py [--alerts 200000] [--ticks 200000] [--repeats 5] [--processes 1,2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import shutil
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from index_load import load_plain
from spread import steady

from pricealert.common import names
from pricealert.common.events import Tick
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.processes import ServiceProcess
from pricealert.devstack.servers import temp_dir
from pricealert.testsupport.cluster import RedisClusterNodes

BASE_PRICE = Decimal("100.00")
HOLD = "bench:hold"  # the benchmark's own lease token while it fills the ticks streams
CHUNK = 5_000
TickIds = dict[int, list[tuple[int, int]]]  # each shard's tick entry ids, in order


def symbol(n: int) -> str:
    return f"B{n:04d}USDT"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as (ms, sequence), which orders ids as Redis does."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def template(shard: int) -> str:
    """The stream the ticks of `shard` are filled into once, copied into its ticks stream each run (its slot)."""
    return f"{names.shard_prefix(shard)}bench-ticks-template"


async def fill_ticks(redis: RedisClient, count: int, symbols: int, shards: int) -> TickIds:
    """`count` ticks near the price, round-robin over the symbols, into the shards' templates; each shard's entry
    ids in order (a copy keeps them)."""
    ids: TickIds = defaultdict(list)
    now = int(time.time() * 1000)
    for start in range(0, count, CHUNK):
        order = []
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + CHUNK, count)):
                sym = symbol(n % symbols)
                shard = shard_of(sym, shards)
                price = BASE_PRICE + Decimal(n % 100 - 50) / 100
                tick = Tick(symbol=sym, price=price, trade_id=n, exchange_time=now, received_at=now)
                pipe.xadd(template(shard), tick.to_fields())  # type: ignore[arg-type]  # redis-py's field mapping type is invariant in its values
                order.append(shard)
            replies = await pipe.execute()
        for shard, entry_id in zip(order, replies, strict=True):
            ids[shard].append(entry_key(text(entry_id)))
    return ids


async def delivered(redis: RedisClient, ids: TickIds) -> int:
    """How many of the filled ticks the evaluator group has been handed so far, over every shard."""
    total = 0
    for shard, entries in ids.items():
        for group in await redis.xinfo_groups(names.ticks_stream(shard)):
            if text(group["name"]) == names.GROUP_EVALUATOR:
                total += bisect.bisect_right(entries, entry_key(text(group["last-delivered-id"])))
    return total


class Evaluators:
    """N evaluator processes on the cluster."""

    def __init__(self, count: int, env: dict[str, str], work: Path) -> None:
        self.env = env
        self.processes = [
            ServiceProcess(
                "evaluator", {**env, "CONSUMER_NAME": f"evaluator-{n}"}, log_path=work / f"evaluator-{n}.log"
            )
            for n in range(1, count + 1)
        ]

    def start(self) -> Evaluators:
        for process in self.processes:
            process.start()
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def cpu(self) -> list[float]:
        return [cpu_seconds(p.process.pid) for p in self.processes if p.process is not None]


async def wait_until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {within} s")
        await asyncio.sleep(0.1)


async def owned(redis: RedisClient, shards: int, by: set[str]) -> bool:
    """Every shard's evaluator lease is held by one of `by` (consumer names), and each of them holds one."""
    holders = set()
    for shard in range(shards):
        token = await redis.get(names.shard_owner_key(names.GROUP_EVALUATOR, shard))
        if token is None or text(token).rsplit(":", 1)[0] not in by:
            return False
        holders.add(text(token).rsplit(":", 1)[0])
    return holders == by


async def drained(redis: RedisClient, kind: str, shards: int) -> bool:
    """The evaluator group has been handed every entry of every shard's `kind` stream and acknowledged them all."""
    for shard in range(shards):
        stream = names.shard_stream(shard, kind)
        last = await redis.xrevrange(stream, count=1)
        if not last:
            continue
        groups = {text(g["name"]): g for g in await redis.xinfo_groups(stream)}
        group = groups.get(names.GROUP_EVALUATOR)
        if group is None or text(group["last-delivered-id"]) != text(last[0][0]) or int(group["pending"]):
            return False
    return True


async def copy_ticks(redis: RedisClient, shards: int) -> None:
    """Each shard's ticks stream a fresh copy of its template, the evaluator group at its start."""
    for shard in range(shards):
        stream = names.ticks_stream(shard)
        await redis.delete(stream)
        if await redis.exists(template(shard)):
            await redis.copy(template(shard), stream)
            await redis.xgroup_create(stream, names.GROUP_EVALUATOR, id="0")


async def drain_once(
    redis: RedisClient,
    evaluators: Evaluators,
    args: argparse.Namespace,
    ids: TickIds,
    masters: list[Any],
    work: Path,
) -> tuple[Evaluators, dict[str, Any]]:
    """Stop the evaluators, copy the ticks in holding their leases, start them again and time them draining the
    ticks; the evaluators now running and the run's figures."""
    count = len(evaluators.processes)
    env = evaluators.env
    evaluators.stop()
    for shard in range(args.shards):  # the leases were given back at the stop; hold them while copying
        await redis.set(names.shard_owner_key(names.GROUP_EVALUATOR, shard), HOLD, px=600_000)
    await copy_ticks(redis, args.shards)
    evaluators = Evaluators(count, env, work).start()
    members = names.members_key(names.GROUP_EVALUATOR)
    await wait_until(lambda: _members(redis, members, count), 60, "every evaluator beating")
    redis_cpu0 = sum(cpu_seconds(node.process.pid) for node in masters if node.process is not None)
    cpu0 = evaluators.cpu()
    for shard in range(args.shards):
        await redis.delete(names.shard_owner_key(names.GROUP_EVALUATOR, shard))
    t0 = time.monotonic()
    marks: dict[str, float] = {}
    while not await drained(redis, names.TICKS_KIND, args.shards):
        done = await delivered(redis, ids)
        for name, share in (("t10", 0.1), ("t90", 0.9)):
            if name not in marks and done >= share * args.ticks:
                marks[name] = time.monotonic()
        if time.monotonic() - t0 > 600:
            raise TimeoutError("the ticks were not drained within 600 s")
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - t0
    cpu = [after - before for before, after in zip(cpu0, evaluators.cpu(), strict=True)]
    redis_cpu = sum(cpu_seconds(node.process.pid) for node in masters if node.process is not None) - redis_cpu0
    window = marks.get("t90", t0 + elapsed) - marks.get("t10", t0)
    rate = 0.8 * args.ticks / window if window > 0 else args.ticks / elapsed
    return evaluators, {
        "drain_seconds": round(elapsed, 2),
        "ticks_per_s": round(rate),
        "ticks_per_s_whole_drain": round(args.ticks / elapsed),
        "per_process_ticks_per_s": round(rate / count),
        "evaluator_cpu_s": round(sum(cpu), 2),
        "ticks_per_evaluator_cpu_s": round(args.ticks / sum(cpu)) if sum(cpu) else 0,
        "redis_cpu_s": round(redis_cpu, 2),
    }


async def one_run(
    cluster: RedisClusterNodes, count: int, args: argparse.Namespace, ids: TickIds, work: Path
) -> dict[str, Any]:
    """With `count` evaluators on the indexed alerts: `args.repeats` times copy the ticks in and time the evaluators
    draining them; medians and each repeat's figures."""
    env = {
        "REDIS_CLUSTER_URL": cluster.seeds,
        "REDIS_URL": f"redis://127.0.0.1:{cluster.nodes[0].port}/0",
        "SHARDS": str(args.shards),
        "LOG_LEVEL": "WARNING",
        # Short renewal steps: every process takes its shards within a quarter second of the benchmark's release.
        "EVALUATOR_SHARD_INTERVAL_S": "0.25",
        "EVALUATOR_SHARD_LEASE_MS": "5000",
    }
    consumers = {f"evaluator-{n}" for n in range(1, count + 1)}
    redis = connect_cluster(cluster.seeds)
    evaluators = Evaluators(count, env, work).start()
    try:
        await wait_until(lambda: owned(redis, args.shards, consumers), 60, "the evaluators owning every shard")
        masters = [node for node in cluster.running() if node.process is not None]
        repeats = []
        for _ in range(args.repeats):
            evaluators, figures = await drain_once(redis, evaluators, args, ids, masters, work)
            repeats.append(figures)
    finally:
        evaluators.stop()
        await redis.aclose()
    return {"processes": count, "ticks": args.ticks, **steady(repeats)}


async def prepare(cluster: RedisClusterNodes, args: argparse.Namespace) -> tuple[float, TickIds]:
    """Index the alerts and fill the ticks' templates; the seconds indexing took and each shard's tick ids."""
    redis = connect_cluster(cluster.seeds)
    try:
        started = time.monotonic()
        await load_plain(redis, 0, args.alerts, [symbol(n) for n in range(args.symbols)], args.shards)
        index_s = time.monotonic() - started
        return index_s, await fill_ticks(redis, args.ticks, args.symbols, args.shards)
    finally:
        await redis.aclose()


async def _members(redis: RedisClient, key: str, count: int) -> bool:
    return int(await redis.zcard(key)) >= count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks of each repeat")
    parser.add_argument("--repeats", type=int, default=5, help="fills and drains with each process count")
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS)
    parser.add_argument("--processes", default="1,2", help="comma-separated evaluator process counts, one run each")
    parser.add_argument("--out", default="bench/results/cluster.json")
    args = parser.parse_args()
    work = temp_dir("bench-cluster-")
    cluster = RedisClusterNodes(work / "cluster", masters=3).start()
    try:
        index_s, ids = await prepare(cluster, args)
        runs = [await one_run(cluster, int(n), args, ids, work) for n in args.processes.split(",")]
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)  # the masters' AOF files: hundreds of MB
    result = {
        "masters": 3,
        "shards": args.shards,
        "alerts": args.alerts,
        "symbols": args.symbols,
        "cores": os.cpu_count(),
        "index_seconds": round(index_s, 1),
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    configure_logging(service="bench", level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(main())
