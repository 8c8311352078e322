"""Three evaluator processes, one killed with SIGKILL mid-stream: nothing missed, nothing fired twice."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path

import pytest
from evaluator_testkit import alert_event, fired_alert_ids
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Tick, now_ms
from pricealert.common.publisher import publish_many
from pricealert.devstack.processes import ServiceProcess
from pricealert.testsupport.polling import eventually

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def oracle(alerts: list[tuple[str, str, str, Decimal]], ticks: list[tuple[str, Decimal]]) -> set[str]:
    """Alerts that fire, given every alert was indexed before the first tick; the order of ticks is irrelevant."""
    fired = set()
    for alert_id, symbol, condition, target in alerts:
        prices = [p for s, p in ticks if s == symbol]
        reached_above, reached_below = any(p >= target for p in prices), any(p <= target for p in prices)
        # cross: whichever tick comes first fixes the side, the set fires iff it reaches the target both ways
        fires = {"above": reached_above, "below": reached_below, "cross": reached_above and reached_below}
        if fires[condition]:
            fired.add(alert_id)
    return fired


@pytest.mark.timeout(120)
async def test_sigkill_of_one_replica_loses_and_duplicates_nothing(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    alerts = [
        (f"a{n}", rng.choice(SYMBOLS), rng.choice(["above", "below", "cross"]), Decimal(rng.randint(900, 1100)))
        for n in range(300)
    ]
    env = {
        "REDIS_URL": redis_url,
        "EVALUATOR_RECLAIM_IDLE_MS": "1000",
        "EVALUATOR_TICK_BATCH_SIZE": "50",
        "LOG_LEVEL": "WARNING",
    }
    replicas = [
        ServiceProcess("evaluator", {**env, "CONSUMER_NAME": f"ev-{n}"}, log_path=tmp_path / f"ev-{n}.log").start()
        for n in range(3)
    ]
    try:
        await publish_many(redis, names.ALERT_EVENTS, [alert_event(a, c, str(t), symbol=s) for a, s, c, t in alerts])

        async def indexed() -> bool:
            total = 0
            for symbol in SYMBOLS:
                for key in (names.eval_above_key(symbol), names.eval_below_key(symbol), names.eval_cross_key(symbol)):
                    total += await redis.zcard(key)
            return total == len(alerts)

        await eventually(indexed, within=30)
        # A random walk per symbol, as one trade stream; the kill lands a third of the way through.
        prices = dict.fromkeys(SYMBOLS, 1000)
        ticks: list[tuple[str, Decimal]] = []
        for _ in range(6000):
            symbol = rng.choice(SYMBOLS)
            prices[symbol] += rng.choice([-3, -2, -1, 1, 2, 3])
            ticks.append((symbol, Decimal(prices[symbol])))
        for n in range(0, len(ticks), 200):
            chunk = [
                Tick(symbol=s, price=p, trade_id=n + i, exchange_time=now_ms(), received_at=now_ms())
                for i, (s, p) in enumerate(ticks[n : n + 200])
            ]
            await publish_many(redis, names.TICKS, chunk)
            if n == 2000:
                replicas[0].kill()
            await asyncio.sleep(0.01)

        async def all_acknowledged() -> bool:
            newest = await redis.xrevrange(names.TICKS, count=1)
            group = next(g for g in await redis.xinfo_groups(names.TICKS) if g["name"] == b"evaluator")
            return bool(group["last-delivered-id"] == newest[0][0] and group["pending"] == 0)

        await eventually(all_acknowledged, within=60)
        fired = await fired_alert_ids(redis)
        assert len(fired) == len(set(fired)), "an alert fired twice"
        assert set(fired) == oracle(alerts, ticks)
        assert fired, "the scenario should fire some alerts"
    finally:
        for replica in replicas:
            replica.stop()
