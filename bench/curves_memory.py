"""Where an index's bytes go: Redis's memory totals, and MEMORY USAGE samples of the evaluator's keys by kind."""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

# The kind of an evaluator key: the word after "eval:" (above, below, cross, adv, pct, own, window, defs, done).
KIND = re.compile(rb"eval:([a-z]+)")


async def used_memory(redis: Redis) -> int:
    """Redis's used_memory (bytes the allocator handed out, every key and Redis's own structures)."""
    return int((await redis.info("memory"))["used_memory"])


def process_rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (0 once it exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


async def _members(redis: Redis, key: bytes, kind: str) -> tuple[int, list[Any]]:
    """How many entries the key holds and a few of them (a sorted set's members, a hash's fields)."""
    if kind == "zset":
        return int(await redis.zcard(key)), list(await redis.zrange(key, 0, 19))
    if kind == "hash":
        return int(await redis.hlen(key)), list((await redis.hgetall(key)).values())[:20]
    return 1, []


async def breakdown(redis: Redis, *, sample: int = 40) -> dict[str, Any]:
    """Per key kind: keys, entries, MEMORY USAGE per entry and entry length (a sample of keys), their encodings;
    and Redis's own split of used_memory into dataset and overhead."""
    keys: dict[str, list[bytes]] = {}
    async for key in redis.scan_iter(match=b"*eval:*", count=1000):
        match = KIND.search(key)
        keys.setdefault(match[1].decode() if match else "other", []).append(key)
    kinds: dict[str, Any] = {}
    for kind, found in sorted(keys.items()):
        usage, entries, lengths, encodings = 0, 0, [], set()
        for key in found[:sample]:
            usage += int(await redis.memory_usage(key, samples=0) or 0)
            kind_of: Any = await redis.type(key)
            count, some = await _members(redis, key, kind_of.decode())
            entries += count
            lengths += [len(m) for m in some]
            encoding: Any = await redis.object("encoding", key)
            encodings.add(encoding.decode())
        kinds[kind] = {
            "keys": len(found),
            "sampled_keys": min(sample, len(found)),
            "entries_per_key": round(entries / max(1, min(sample, len(found))), 1),
            "bytes_per_entry": round(usage / entries, 1) if entries else None,
            "entry_length_mean": round(statistics.mean(lengths), 1) if lengths else None,
            "encodings": sorted(encodings),
            "estimated_bytes": round(usage * len(found) / max(1, min(sample, len(found)))),
        }
    stats = await redis.memory_stats()
    return {
        "kinds": kinds,
        "used_memory": await used_memory(redis),
        "dataset_bytes": stats.get("dataset.bytes"),
        "overhead_bytes": stats.get("overhead.total"),
        "keys_count": stats.get("keys.count"),
        "fragmentation": (await redis.info("memory")).get("mem_fragmentation_ratio"),
    }
