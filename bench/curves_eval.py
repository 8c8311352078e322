"""The evaluator's cost curves on one Redis: throughput, tick → trigger and memory as alerts grow; then latency as
the tick rate grows. Built from evaluator_bench.py's pieces (load_alerts, throughput, latency), loads added in turn."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from alert_index_setup import load_alerts
from curves_memory import breakdown, used_memory
from evaluator_bench import delete_streams, fill_templates, latency, percentile, template, throughput
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.evaluator.handlers import SERVICE


def figures(samples: list[float]) -> dict[str, float] | None:
    """p50 / p99 / max of latencies in ms (None for none)."""
    if not samples:
        return None
    return {
        "p50": round(statistics.median(samples), 2),
        "p99": round(percentile(samples, 0.99), 2),
        "max": round(max(samples), 2),
    }


def growth(samples: list[float]) -> float | None:
    """Median latency of the last tenth of a run over that of the first tenth (samples in send order): far above 1
    when a backlog builds through the run."""
    tenth = len(samples) // 10
    if tenth < 3:
        return None
    first, last = statistics.median(samples[:tenth]), statistics.median(samples[-tenth:])
    return round(last / first, 2) if first > 0 else None


class TimedXadd:
    """Wraps a client's xadd to note when the first and the last tick went in (the rate actually offered)."""

    def __init__(self, redis: Redis) -> None:
        self.first = self.last = 0.0
        self.count = 0
        self._xadd: Callable[..., Awaitable[Any]] = redis.xadd
        redis.xadd = self  # type: ignore[method-assign]  # instance attribute: this client only

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply = await self._xadd(*args, **kwargs)
        self.last = time.perf_counter()
        self.first = self.first or self.last
        self.count += 1
        return reply

    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first) if self.count > 1 and self.last > self.first else 0.0


async def _fresh(redis: Redis, shards: int) -> None:
    """No ticks, triggers or shard leases left from the run before."""
    await delete_streams(redis, shards, names.TICKS_KIND, names.TRIGGERS_KIND)
    await redis.delete(*(names.shard_owner_key(SERVICE, shard) for shard in range(shards)))


async def latency_point(redis: Redis, url: str, args: Any, rate: int, run: int) -> dict[str, Any]:
    """tick → trigger at `rate` ticks/s for args.seconds, with the rate actually offered and the triggers missing."""
    await _fresh(redis, args.shards)
    timer = TimedXadd(redis)
    try:
        samples, rss_mb = await latency(redis, url, args.symbols, rate, args.seconds, args.shards, run)
    finally:
        redis.xadd = timer._xadd  # type: ignore[method-assign]  # the client's own xadd put back
    total = int(rate * args.seconds)
    expected = len(range(0, total, max(1, -(-total // args.symbols))))
    return {
        "offered_rate": rate,
        "achieved_rate": round(timer.rate()),
        "triggers_expected": expected,
        "triggers_seen": len(samples),
        "latency_ms": figures(samples),
        "growth": growth(samples),
        "evaluator_rss_mb": round(rss_mb, 1),
    }


async def alerts_curve(
    redis: Redis, url: str, args: Any, counts: list[int], log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """For each count (ascending, the alerts added to those before): load time, throughput, tick → trigger at
    args.rate, Redis memory over the empty server plus the evaluator's RSS, bytes per alert."""
    baseline, loaded, points = await used_memory(redis), 0, []
    for run, count in enumerate(counts):
        started = time.perf_counter()
        await load_alerts(redis, count, args.symbols, args.shards, first=loaded)
        load_s, loaded = time.perf_counter() - started, count
        redis_bytes = await used_memory(redis) - baseline
        log(f"{count} alerts loaded in {load_s:.1f} s; Redis +{redis_bytes / 2**20:.1f} MiB")
        await fill_templates(redis, args.symbols, args.ticks, args.shards)
        ticks = await throughput(redis, args.ticks, args.shards)
        await delete_streams(redis, args.shards, names.TICKS_KIND)
        await redis.delete(*(template(shard) for shard in range(args.shards)))  # out of the next count's memory
        point = await latency_point(redis, url, args, args.rate, 100 + run)
        process_bytes = int(point.pop("evaluator_rss_mb") * 2**20)
        points.append(
            {
                "alerts": count,
                "load_seconds_added": round(load_s, 1),
                "throughput_ticks_per_s": round(ticks),
                **point,
                "redis_bytes": redis_bytes,
                "process_bytes": process_bytes,
                "bytes_per_alert": round((redis_bytes + process_bytes) / count, 1),
                "redis_bytes_per_alert": round(redis_bytes / count, 1),
            }
        )
        if count in args.breakdown_at:
            points[-1]["memory_breakdown"] = await breakdown(redis)
        log(f"  {points[-1]['throughput_ticks_per_s']} ticks/s, p99 {(point['latency_ms'] or {}).get('p99')} ms")
        if count == args.rate_alerts:
            args.rates_curve = await rates_curve(redis, url, args, log)
    return points


def saturation(point: dict[str, Any], capacity: float | None) -> str | None:
    """Why a rate point is saturated, or None: the offered rate not reached, triggers missing, latency growing."""
    offered, achieved = point["offered_rate"], point["achieved_rate"]
    if achieved < 0.9 * offered:
        return f"the load generator (one awaited XADD a tick) reached {achieved} of {offered} ticks/s"
    if point["triggers_seen"] < point["triggers_expected"]:
        return f"{point['triggers_expected'] - point['triggers_seen']} triggers not seen within 10 s of the last tick"
    if (point["growth"] or 0) > 3:
        why = f" (throughput measured {capacity:.0f} ticks/s)" if capacity else ""
        growth = point["growth"]
        return f"latency grows through the run ({growth} times from the first tenth to the last): a backlog{why}"
    return None


async def rates_curve(redis: Redis, url: str, args: Any, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """tick → trigger at each of args.rates (ascending) until the evaluator saturates (a load generator short of the
    rate is recorded, and the next rate still tried: it says nothing of the evaluator)."""
    points: list[dict[str, Any]] = []
    for n, rate in enumerate(args.rates):
        point = await latency_point(redis, url, args, rate, 200 + n)
        point["saturated"] = saturation(point, None)
        points.append(point)
        log(f"  {rate} ticks/s: p99 {(point['latency_ms'] or {}).get('p99')} ms, saturated: {point['saturated']}")
        if point["saturated"] and point["achieved_rate"] >= 0.9 * rate:
            break
    return points
