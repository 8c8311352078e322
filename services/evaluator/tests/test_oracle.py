"""Property: for random alerts and tick sequences, the fired set equals a straightforward oracle's."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from evaluator_testkit import SHARDS, TEST_TOKEN, ShardMatchers, alert_event, fired_alert_ids, hold_lease, tick_stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from pricealert.common.consumer import Message
from pricealert.common.events import AlertEventType, Tick, now_ms
from pricealert.common.redisconn import connect
from pricealert.common.shards import shard_of
from pricealert.evaluator.handlers import ticks_consumer
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.settings import EvaluatorSettings

BASE_TIME = now_ms()
TICKS = tick_stream("BTCUSDT")


@dataclass
class OracleAlert:
    condition: str
    target: Decimal
    expires_at: int | None
    side: str | None = None  # for cross: "below" or "above" the target, fixed by the first tick


def oracle_fires(alert: OracleAlert, price: Decimal, exchange_time: int) -> bool | None:
    """True: fires; False: leaves the index without firing (expired); None: stays."""
    if alert.expires_at is not None and exchange_time > alert.expires_at:
        reached = (
            (alert.condition == "above" and price >= alert.target)
            or (alert.condition == "below" and price <= alert.target)
            or alert.condition == "cross"
        )
        return False if reached else None
    if alert.condition == "above":
        return True if price >= alert.target else None
    if alert.condition == "below":
        return True if price <= alert.target else None
    if alert.side is None:
        if price == alert.target:
            return True
        alert.side = "below" if price < alert.target else "above"
        return None
    crossed = price >= alert.target if alert.side == "below" else price <= alert.target
    return True if crossed else None


prices = st.integers(min_value=95, max_value=105).map(lambda n: Decimal(n) / 1)
# Prices a few steps of 1e-18 .. 1 away from one boundary per example: doubles cannot tell many of them apart.
boundary = st.shared(st.sampled_from([1, 65_000, 2**53 + 1]), key="boundary")
near_boundary = st.builds(
    lambda base, k, step: Decimal(f"{max(1, base * 10**18 + k * step)}E-18"),
    boundary,
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([1, 10**3, 10**6, 10**7, 10**18]),
)


def operations_over(prices: st.SearchStrategy[Decimal]) -> st.SearchStrategy[list[tuple[object, ...]]]:
    """Random creates, deletes, ticks and flushes, with targets and trade prices drawn from `prices`."""
    return st.lists(
        st.one_of(
            st.tuples(
                st.just("create"),
                st.sampled_from(["above", "below", "cross"]),
                prices,
                st.one_of(st.none(), st.integers(min_value=0, max_value=40)),
            ),
            st.tuples(st.just("delete"), st.integers(min_value=0, max_value=30)),
            st.tuples(st.just("tick"), prices),
            st.tuples(
                st.just("flush"),
            ),
        ),
        min_size=1,
        max_size=60,
    )


operations = operations_over(prices)


async def drained(redis: Redis) -> bool:
    """Every tick on the stream delivered to the group and acknowledged."""
    newest = await redis.xrevrange(TICKS, count=1)
    if not newest:
        return True
    last = newest[0][0]
    group = next(g for g in await redis.xinfo_groups(TICKS) if g["name"] == b"evaluator")
    return bool(group["last-delivered-id"] == last and group["pending"] == 0)


async def run_scenario(  # noqa: C901 - one branch per kind of operation, kept together
    redis_url: str, ops: list[tuple[object, ...]], replicas: int = 0, batch_size: int = 3
) -> tuple[list[str], list[str]]:
    """Apply ops; ticks are judged by the Matcher directly (replicas=0) or by N consumers of the shard's group."""
    redis = connect(redis_url)
    await redis.flushall()
    index, matcher = AlertIndex(redis, SHARDS), ShardMatchers(redis)
    settings = [EvaluatorSettings(consumer_name=f"replica-{n}", tick_batch_size=batch_size) for n in range(replicas)]
    shard = shard_of("BTCUSDT", SHARDS)
    owner_key = await hold_lease(redis, shard)
    consumers = [ticks_consumer(redis, s, shard, owner_key=owner_key, token=TEST_TOKEN) for s in settings]
    for consumer in consumers:  # an idle replica must not hold up the drain with a long blocking read
        consumer.options = dataclasses.replace(consumer.options, block_ms=5)
    for consumer in consumers[:1]:
        await consumer.ensure_group()
    oracle: dict[str, OracleAlert] = {}
    expected: list[str] = []
    batch: list[Message] = []
    created = 0
    created_as: dict[str, tuple[str, str]] = {}
    clock = 0

    async def flush() -> None:
        if consumers:
            while not await drained(redis):
                await asyncio.gather(*(c.poll_once() for c in consumers))
        elif batch:
            await matcher.evaluate(batch)
        batch.clear()

    for op in ops:
        if op[0] == "create":
            await flush()
            _, condition, target, expiry = op
            alert_id = f"a{created}"
            created += 1
            expires = BASE_TIME + clock + int(expiry) if expiry is not None else None  # type: ignore[call-overload]
            when = datetime.fromtimestamp(expires / 1000, UTC) if expires is not None else None
            await index.apply(alert_event(alert_id, str(condition), str(target), expires_at=when))
            oracle[alert_id] = OracleAlert(str(condition), Decimal(str(target)), expires)
            created_as[alert_id] = (str(condition), str(target))
        elif op[0] == "delete":
            if int(op[1]) >= created:  # type: ignore[call-overload]
                continue  # deletes only name alerts that exist (a delete before its create is tested elsewhere)
            await flush()
            alert_id = f"a{op[1]}"
            condition, target = created_as[alert_id]
            await index.apply(alert_event(alert_id, condition, target, kind=AlertEventType.DELETED))
            oracle.pop(alert_id, None)
        elif op[0] == "tick":
            clock += 10
            price = Decimal(str(op[1]))
            tick = Tick(
                symbol="BTCUSDT", price=price, trade_id=clock, exchange_time=BASE_TIME + clock, received_at=now_ms()
            )
            entry = await redis.xadd(TICKS, tick.to_fields())  # type: ignore[arg-type]
            batch.append(Message(entry.decode(), tick.to_fields()))
            for alert_id, alert in list(oracle.items()):
                outcome = oracle_fires(alert, price, tick.exchange_time)
                if outcome is not None:
                    del oracle[alert_id]
                    if outcome:
                        expected.append(alert_id)
        else:
            await flush()
    await flush()
    fired = await fired_alert_ids(redis)
    await redis.aclose()
    return fired, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_fired_alerts_equal_the_oracle(redis_url: str, ops: list[tuple[object, ...]]) -> None:
    fired, expected = asyncio.run(run_scenario(redis_url, ops))
    assert len(fired) == len(set(fired)), "an alert fired twice"
    assert sorted(fired) == sorted(expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, batch_size=st.integers(min_value=1, max_value=4))
def test_three_replicas_fire_what_the_oracle_fires(
    redis_url: str, ops: list[tuple[object, ...]], batch_size: int
) -> None:
    fired, expected = asyncio.run(run_scenario(redis_url, ops, replicas=3, batch_size=batch_size))
    assert len(fired) == len(set(fired)), "an alert fired twice"
    assert sorted(fired) == sorted(expected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations_over(near_boundary))
def test_prices_near_a_boundary_fire_as_exact_decimals_compare(redis_url: str, ops: list[tuple[object, ...]]) -> None:
    fired, expected = asyncio.run(run_scenario(redis_url, ops))
    assert len(fired) == len(set(fired)), "an alert fired twice"
    assert sorted(fired) == sorted(expected)
