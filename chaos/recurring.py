"""The recurring workload: every_time alerts the market crosses back and forth at the end of a scenario.

Their levels lie between market levels -44 and -41 (below every once alert's target, docs of chaos/workload.py), so
the swings at the end change nothing for the once alerts: every one of those is past or out of reach there.
The down ramp crosses them once; then `SWINGS` round trips -44 -> -41 -> -44 cross them again, each crossing at
least `HOLD_S + 2 * STEP_S` after the previous one of the same alert (more than the cooldown), so the number of
firings of each alert is known (docs/conditions.md): `expected_firings`.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from chaos.workload import CENT, LEVELS, STEP, SYMBOLS, Market, PlannedAlert, plan_alerts

TARGET_LEVEL = Decimal("-42.5")  # above, below, cross: between market levels -43 and -42
RANGE_LEVELS = (Decimal("-43.5"), Decimal("-41.5"))  # enter_range, exit_range: levels -43 and -42 inside
SWING = (-43, -42, -41, -42, -43, -44)  # one round trip from -LEVELS and back
SWINGS = 3
STEP_S = 0.3
HOLD_S = 0.7  # at either end of a swing
FIRST_HOLD_S = 1.0  # at -LEVELS before the first swing: the down ramp's firings are a cooldown back
COOLDOWN_S = 1
CONDITIONS = ("above", "below", "cross", "enter_range", "exit_range")


def price_at(symbol: str, level: Decimal) -> Decimal:
    """The price of `symbol` at a (possibly fractional) market level, as Market.price."""
    return (SYMBOLS[symbol] * (1 + level * STEP / 2)).quantize(CENT)


def expected_firings(condition: str, swings: int = SWINGS) -> int:
    """Firings of an alert of `condition` created at level 0, after the down ramp and `swings` round trips.

    above: its first trade (level 0) fires it, then once per swing up; below: the down ramp, then once per swing
    down; cross, enter_range, exit_range: the down ramp, then twice per swing.
    """
    return 1 + (swings if condition in ("above", "below") else 2 * swings)


def plan_recurring(users: int) -> list[PlannedAlert]:
    """Per symbol one every_time alert of each level and range condition, `COOLDOWN_S` cooldown."""
    plan = []
    for symbol in SYMBOLS:
        low, high = (price_at(symbol, level) for level in RANGE_LEVELS)
        for condition in CONDITIONS:
            ranged = condition.endswith("_range")
            plan.append(
                PlannedAlert(
                    f"{symbol}-recur-{condition}",
                    0,
                    symbol,
                    condition,
                    None if ranged else price_at(symbol, TARGET_LEVEL),
                    "recur",
                    frequency="every_time",
                    cooldown_s=COOLDOWN_S,
                    low=low if ranged else None,
                    high=high if ranged else None,
                )
            )
    return [
        PlannedAlert(
            a.name, i % users, a.symbol, a.condition, a.target, a.phase, a.frequency, a.cooldown_s, a.low, a.high
        )
        for i, a in enumerate(plan)
    ]


def plan_workload(users: int) -> list[PlannedAlert]:
    """The once alerts of plan_alerts and the recurring ones, mixed (any slice of the plan holds both)."""
    plan = plan_alerts(users) + plan_recurring(users)
    random.Random(20261206).shuffle(plan)
    return plan


async def swing(market: Market, swings: int = SWINGS) -> None:
    """From -LEVELS, `swings` round trips through the recurring alerts' levels, level by level."""
    assert market.level == -LEVELS, "the swings start where the down ramp ends"
    await asyncio.sleep(FIRST_HOLD_S)
    for _ in range(swings):
        for level in SWING:
            market.set_level(level)
            await asyncio.sleep(HOLD_S if level in (-41, -LEVELS) else STEP_S)


def valid_price(alert: PlannedAlert, price: Decimal, firing: int) -> bool:
    """Whether `price` may fire the `firing`-th firing of `alert` (cross: sides alternate, the first going down)."""
    if alert.condition == "above" and alert.target is not None:
        return price >= alert.target
    if alert.condition == "below" and alert.target is not None:
        return price <= alert.target
    if alert.condition == "cross" and alert.target is not None:
        return price < alert.target if firing % 2 else price > alert.target
    if alert.low is None or alert.high is None:
        return False
    inside = alert.low <= price <= alert.high
    return inside if alert.condition == "enter_range" else not inside
