"""The tricky cases of docs/conditions.md, one by one: what must fire, on which trade, with which firing number,
version and pause; each judged by the Matcher and by the oracle (oracle.py), both against the expected firings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conditions_testkit import FIRINGS_PER_HOUR, Create, Flush, Operation, Patch, Scenario, Trade, run_operations
from evaluator_testkit import SHARDS, MatcherDriver
from redis.asyncio import Redis

from pricealert.common.events import Condition, Frequency, Trigger, trigger_id_for

D = Decimal
BTC = "BTCUSDT"
ONCE, EVERY = Frequency.ONCE, Frequency.EVERY_TIME
Expected = dict[str, list[tuple[int, int, str, bool]]]  # alert id -> (firing, version, price, paused), in order


def alert(
    condition: str,
    *,
    target: str = "100",
    bounds: tuple[str, str] = ("100", "102"),
    percent: str = "5",
    window: str = "1m",
    every: bool = False,
    cooldown_s: int = 1,
    expires_in_s: int | None = None,
) -> Create:
    """An alert of BTCUSDT; only the fields of its condition count."""
    return Create(
        BTC, Condition(condition), EVERY if every else ONCE, cooldown_s, D(target), (D(bounds[0]), D(bounds[1])),
        D(percent), window, expires_in_s,
    )  # fmt: skip


def trades(*prices: str, gap: int = 1000) -> list[Operation]:
    """BTCUSDT trades `gap` ms apart."""
    return [Trade(BTC, D(price), gap) for price in prices]


def at(price: str, gap: int) -> Trade:
    """One BTCUSDT trade `gap` ms after the previous one."""
    return Trade(BTC, D(price), gap)


def patch(alert: int, *, target: str = "100", status: str | None = None, redefine: bool = True) -> Patch:
    """A PATCH of the n-th alert: a new target (levels) and / or a new status."""
    return Patch(alert, D(target), (D("100"), D("102")), D("5"), "1m", 1, redefine, status)


async def check(redis: Redis, ops: list[Operation], expected: Expected, limit: int = FIRINGS_PER_HOUR) -> None:
    """The Matcher's triggers and the oracle's firings are both `expected`, with the right trigger ids."""
    await redis.flushall()
    scenario = Scenario(limit)
    await run_operations(MatcherDriver(redis, limit), ops, scenario)
    fired: Expected = {}
    for shard in range(SHARDS):
        for _, fields in await redis.xrange(Trigger.stream_of(shard)):
            t = Trigger.from_fields(fields)
            assert t.trigger_id == trigger_id_for(t.alert_id, t.firing, t.frequency)
            fired.setdefault(t.alert_id, []).append((t.firing, t.version, format(t.price, "f"), t.paused))
    oracle = {
        alert_id: [(f.firing, f.version, format(f.price, "f"), f.paused) for f in firings]
        for alert_id, firings in scenario.oracle.firings.items()
    }
    assert oracle == expected, "the oracle"
    assert fired == expected, "the evaluator"


@pytest.mark.parametrize(
    ("created", "prices", "fires_at"),
    [
        (alert("above"), ["99", "100"], "100"),
        (alert("below"), ["101", "100"], "100"),
        (alert("cross"), ["100"], "100"),  # the first trade exactly at the target fires at once
        (alert("cross"), ["101", "100"], "100"),
        (alert("enter_range"), ["99", "100"], "100"),  # a bound is inside
        (alert("enter_range"), ["103", "102"], "102"),
        (alert("enter_range"), ["101", "99", "101"], "101"),  # a first trade inside waits to leave and come back
        (alert("exit_range"), ["101", "100", "102", "99"], "99"),
        (alert("exit_range"), ["99", "103", "101", "102.01"], "102.01"),  # first outside: enter, then leave
        (alert("enter_range"), ["99", "103", "98", "100"], "100"),  # a jump over the range does not enter
        (alert("pct_up"), ["100", "104.99", "105"], "105"),  # exactly 5 % up: 105·100 ≥ 100·105
        (alert("pct_down"), ["100", "95.01", "95"], "95"),
        (alert("pct_move"), ["100", "95"], "95"),
        (alert("pct_move"), ["100", "105"], "105"),
    ],
)
async def test_each_condition_fires_on_its_boundary(
    redis: Redis, created: Create, prices: list[str], fires_at: str
) -> None:
    await check(redis, [created, *trades(*prices)], {"a0": [(1, 1, fires_at, False)]})


async def test_a_range_jump_is_outside_both_times(redis: Redis) -> None:
    ops = [alert("exit_range", every=True), *trades("101", "99", "103", "101", "104")]
    await check(redis, ops, {"a0": [(1, 1, "99", False), (2, 1, "104", False)]})


async def test_a_recurring_cross_fired_exactly_at_the_target_waits_for_a_side(redis: Redis) -> None:
    # At T: no trade at T fires until a trade off T fixes the side; above T: the next trade at or below T fires.
    ops = [alert("cross", every=True), *trades("99", "100", "100", "101", "100", "100", "99", "100.5", "100")]
    expected = [(1, 1, "100", False), (2, 1, "100", False), (3, 1, "100.5", False), (4, 1, "100", False)]
    await check(redis, ops, {"a0": expected}, limit=10)


async def test_a_crossing_within_the_cooldown_is_spent(redis: Redis) -> None:
    ops = [
        alert("above", every=True, cooldown_s=10),
        at("101", 0),  # firing 1 at t0
        at("99", 1000),
        at("101", 1000),  # a crossing at t0 + 2 s: spent
        at("102", 10_000),  # after the cooldown, but no new crossing
        at("99", 1000),
        at("101", 1000),
    ]
    await check(redis, ops, {"a0": [(1, 1, "101", False), (2, 1, "101", False)]})


async def test_a_cross_spent_in_the_cooldown_goes_on_from_the_side_it_left(redis: Redis) -> None:
    # The spent crossing (99, in the cooldown) left the price below: 101 crosses again.
    ops = [alert("cross", every=True, cooldown_s=10), at("99", 0), at("101", 1000), at("99", 1000), at("101", 20_000)]
    await check(redis, ops, {"a0": [(1, 1, "101", False), (2, 1, "101", False)]})


async def test_a_recurring_percent_alert_measures_from_its_firing(redis: Redis) -> None:
    ops = [
        alert("pct_up", every=True, cooldown_s=10, window="1h"),
        at("100", 0),
        at("105", 1000),  # firing 1, 5 % over 100
        at("110.25", 1000),  # 5 % over 105, but within the cooldown
        at("106", 20_000),  # 5 % over the window's 100, not over the firing's 105
        at("110.25", 1000),  # 5 % over 105
    ]
    await check(redis, ops, {"a0": [(1, 1, "105", False), (2, 1, "110.25", False)]})


@pytest.mark.parametrize(
    ("first_gap", "gap", "fires"),
    [
        (0, 59_999, True),  # buckets b and b + 59: in the window
        (0, 60_000, False),  # b and b + 60: out
        (999, 59_001, False),  # 59.001 s apart, but 60 buckets
        (999, 59_000, True),
    ],
)
async def test_the_window_reaches_back_59_buckets(redis: Redis, first_gap: int, gap: int, fires: bool) -> None:
    # BASE_TIME is a whole day: the first trade is `first_gap` ms into a 1 s bucket of the 1m window.
    ops = [alert("pct_up", window="1m"), at("100", first_gap), at("105", gap)]
    await check(redis, ops, {"a0": [(1, 1, "105", False)]} if fires else {})


async def test_batches_within_one_bucket_keep_their_extremes(redis: Redis) -> None:
    # The first two batches stay in one bucket of every window and cannot fire: their lows and highs still count.
    batches = [at("100", 0), at("101", 10), at("102", 10), Flush(), at("100", 10), at("99.5", 10), Flush()]
    ops = [alert("pct_up"), alert("pct_down"), *batches, at("104.475", 10), Flush(), at("96.9", 10)]
    # 104.475·100 ≥ 99.5·105 and 96.9·100 ≤ 102·95, exactly
    await check(redis, ops, {"a0": [(1, 1, "104.475", False)], "a1": [(1, 1, "96.9", False)]})


async def test_an_out_of_order_trade_counts_at_the_latest_time(redis: Redis) -> None:
    # 104 at t=10 s counts at t=70 s: its window holds 99 (t=70 s), not 100 (t=0).
    ops = [alert("pct_up", percent="5"), at("100", 0), at("99", 70_000), at("104", -60_000)]
    await check(redis, ops, {"a0": [(1, 1, "104", False)]})


async def test_trades_before_the_first_percent_alert_do_not_count(redis: Redis) -> None:
    ops = [alert("above", target="200"), at("100", 0), alert("pct_down"), at("95", 1000)]
    await check(redis, ops, {})


async def test_the_window_is_kept_from_the_first_percent_alert(redis: Redis) -> None:
    # The symbol's first percent alert goes before any trade; the window is kept from its coming all the same.
    ops = [alert("pct_up"), patch(0, status="paused", redefine=False), at("100", 0), alert("pct_down"), at("95", 1000)]
    await check(redis, ops, {"a1": [(1, 1, "95", False)]})


async def test_a_patch_replaces_the_definition(redis: Redis) -> None:
    ops = [alert("above", every=True), at("99", 0), patch(0, target="110"), at("105", 1000), at("110", 1000)]
    await check(redis, ops, {"a0": [(1, 2, "110", False)]})


async def test_the_hourly_limit_pauses_and_a_resume_goes_on_numbering(redis: Redis) -> None:
    up_down = trades("101", "99", "101", "99", "101", "99", "101")
    ops = [alert("above", every=True), *up_down, patch(0, status="active", redefine=False), *up_down]
    expected = [(1, 1, "101", False), (2, 1, "101", False), (3, 1, "101", True)]  # paused: the last 99, 101 are not
    expected += [(4, 2, "101", False), (5, 2, "101", False), (6, 2, "101", True)]  # a resume starts a new hour
    await check(redis, ops, {"a0": expected})


async def test_an_hour_lasts_3_600_000_ms_from_its_first_firing(redis: Redis) -> None:
    three = [alert("above", every=True), at("101", 0), at("99", 1000), at("101", 1000), at("99", 1000)]
    await check(
        redis,
        [*three, at("101", 3_597_000)],
        {"a0": [(1, 1, "101", False), (2, 1, "101", False), (3, 1, "101", False)]},
    )
    await check(
        redis, [*three, at("101", 3_596_999)], {"a0": [(1, 1, "101", False), (2, 1, "101", False), (3, 1, "101", True)]}
    )


async def test_an_alert_fires_until_its_expiry_and_not_after(redis: Redis) -> None:
    ops = [alert("above", expires_in_s=10), at("101", 10_001)]
    await check(redis, ops, {})
    ops = [alert("above", expires_in_s=10), at("101", 10_000)]
    await check(redis, ops, {"a0": [(1, 1, "101", False)]})
