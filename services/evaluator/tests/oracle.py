"""A plain model of docs/conditions.md: fed the evaluator's alert events and trades, it lists each alert's firings.

Written to be read against the page, not to be fast: every rule is one obvious statement here. The alert events it
takes are those the evaluator takes, applied in the same order relative to the trades (the caller makes sure the
evaluator judged every earlier trade before it applies an event, and applied the event before later trades).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pricealert.common.events import (
    PERCENT_CONDITIONS,
    WINDOW_BUCKETS,
    WINDOWS,
    AlertEvent,
    AlertEventType,
    Condition,
    Frequency,
    Tick,
)

HOUR_MS = 3_600_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Firing:
    """One firing of an alert, as its trigger records it."""

    firing: int
    version: int
    price: Decimal
    paused: bool
    # percent alerts: the low (up) or high (down) the move is from; None when not percent or pct_move met both ways
    reference_price: Decimal | None = field(default=None, compare=False)
    hour_firings: int | None = field(default=None, compare=False)  # every_time: its number within its hour


@dataclass
class Trade:
    """A trade of a symbol as its window keeps it: the price and the time the window files it under."""

    price: Decimal
    window_time: int


@dataclass
class AlertState:
    """An alert as the oracle knows it: its definition (the latest event), whether it is in the index, its memory."""

    event: AlertEvent
    in_index: bool
    gone: bool = False  # deleted, expired, or a once alert that fired: it never comes back
    firings: int = 0
    hour_start: int | None = None  # trade time of the first firing of the current hour
    hour_firings: int = 0
    # What a version remembers (forgotten by an update):
    where: str | None = None  # levels and ranges: where the last trade left the price ("above", "inside", ...)
    exact_fires: bool = True  # cross: a trade exactly at T fires at once (until the version's first firing)
    fired_at: int | None = None  # trade time t_f of the version's last firing (the cooldown runs from it)
    fired_trade: int | None = None  # percent: index of the firing trade in the symbol's window trades


def bucket_ms(window: str) -> int:
    """The length of one of a window's buckets, W/60, in ms."""
    return WINDOWS[window] * 1000 // WINDOW_BUCKETS


def extremes(trades: list[Trade], first: int, window: str) -> tuple[Decimal, Decimal]:
    """Lowest and highest price of trades[first:] whose bucket lies in the last trade's b(t) - 59 .. b(t)."""
    size = bucket_ms(window)
    newest = trades[-1].window_time // size
    prices = [
        trade.price for trade in trades[first:] if newest - (WINDOW_BUCKETS - 1) <= trade.window_time // size <= newest
    ]
    return min(prices), max(prices)


def moved_up(price: Decimal, low: Decimal, percent: Decimal) -> bool:
    """`p·100 ≥ low_W·(100 + P)`, in double precision."""
    return float(price) * 100 >= float(low) * (100 + float(percent))


def moved_down(price: Decimal, high: Decimal, percent: Decimal) -> bool:
    """`p·100 ≤ high_W·(100 - P)`, in double precision."""
    return float(price) * 100 <= float(high) * (100 - float(percent))


def level_or_range_crossing(alert: AlertState, price: Decimal) -> bool:
    """Whether this trade is a crossing of a level or range alert; moves `where` to where the trade left the price."""
    e = alert.event
    if e.condition in (Condition.ABOVE, Condition.BELOW):
        assert e.target_price is not None
        reached = price >= e.target_price if e.condition is Condition.ABOVE else price <= e.target_price
        crossing = reached and alert.where != "reached"
        alert.where = "reached" if reached else "not reached"
        return crossing
    if e.condition is Condition.CROSS:
        assert e.target_price is not None
        target = e.target_price
        if alert.where is None:
            if price == target:  # stays unfixed: the next trade not at T fixes the side
                crossing, alert.exact_fires = alert.exact_fires, False
                return crossing
            alert.where = "below" if price < target else "above"
            return False
        crossing = price >= target if alert.where == "below" else price <= target
        if crossing:  # the crossing trade fixes the side it left the price on
            alert.where = None if price == target else ("below" if price < target else "above")
            alert.exact_fires = False
        return crossing
    assert e.low is not None and e.high is not None
    inside = e.low <= price <= e.high
    if e.condition is Condition.ENTER_RANGE:
        crossing = inside and alert.where == "outside"
    else:
        crossing = not inside and alert.where == "inside"
    alert.where = "inside" if inside else "outside"
    return crossing


class Oracle:
    """Feed it events and trades in the order the evaluator sees them; `firings` lists what must have fired."""

    def __init__(self, firings_per_hour: int) -> None:
        self.firings_per_hour = firings_per_hour
        self.alerts: dict[str, AlertState] = {}
        self.windows: dict[str, list[Trade]] = {}  # symbols whose window is kept: their trades since then
        self.firings: dict[str, list[Firing]] = {}

    def status(self, alert_id: str) -> str:
        """What the alert is now: active, paused, or gone (deleted, expired, triggered), or unknown."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            return "unknown"
        return "gone" if alert.gone else ("active" if alert.in_index else "paused")

    def apply(self, event: AlertEvent) -> None:
        """An alert event: created, updated (a new version, active or paused), deleted or expired."""
        alert = self.alerts.get(event.alert_id)
        if event.type is AlertEventType.CREATED:
            if alert is None:
                self.alerts[event.alert_id] = alert = AlertState(event, in_index=True)
                self._keep_window(alert)
            return
        if alert is None or alert.gone:
            return
        if event.type is AlertEventType.UPDATED:
            if event.version <= alert.event.version:
                return  # a redelivery or an older version
            if not alert.in_index and not event.paused:
                alert.hour_start, alert.hour_firings = None, 0  # a resumed alert starts a new hour
            alert.event = event
            alert.in_index = not event.paused
            alert.where, alert.exact_fires, alert.fired_at, alert.fired_trade = None, True, None, None
            self._keep_window(alert)
            return
        alert.gone, alert.in_index = True, False

    def _keep_window(self, alert: AlertState) -> None:
        symbol = alert.event.symbol.upper()
        if alert.in_index and alert.event.condition in PERCENT_CONDITIONS and symbol not in self.windows:
            self.windows[symbol] = []

    def trade(self, tick: Tick) -> list[tuple[str, Firing]]:
        """Judge one trade (the next of the stream) against every alert in the index; returns what it fired."""
        symbol = tick.symbol.upper()
        trades = self.windows.get(symbol)
        if trades is not None:
            latest = trades[-1].window_time if trades else tick.exchange_time
            trades.append(Trade(tick.price, max(tick.exchange_time, latest)))
        fired = []
        for alert_id, alert in self.alerts.items():
            if alert.in_index and alert.event.symbol.upper() == symbol:
                firing = self._judge(alert, tick, trades)
                if firing is not None:
                    self.firings.setdefault(alert_id, []).append(firing)
                    fired.append((alert_id, firing))
        return fired

    def _judge(self, alert: AlertState, tick: Tick, trades: list[Trade] | None) -> Firing | None:
        e, price, t = alert.event, tick.price, tick.exchange_time
        reference = None
        if e.condition in PERCENT_CONDITIONS:
            assert trades is not None and e.window is not None and e.percent is not None
            first = 0
            if alert.fired_trade is not None:
                size = bucket_ms(e.window)
                firing_bucket = trades[alert.fired_trade].window_time // size
                if firing_bucket >= trades[-1].window_time // size - (WINDOW_BUCKETS - 1):
                    first = alert.fired_trade  # the window has not slid past the firing's bucket
            low, high = extremes(trades, first, e.window)
            up = e.condition is not Condition.PCT_DOWN and moved_up(price, low, e.percent)
            down = e.condition is not Condition.PCT_UP and moved_down(price, high, e.percent)
            crossing = up or down
            reference = low if up and not down else (high if down and not up else None)
        else:
            crossing = level_or_range_crossing(alert, price)
        if not crossing:
            return None
        if e.expires_at is not None and t > (e.expires_at - EPOCH) // timedelta(milliseconds=1):
            alert.gone, alert.in_index = True, False  # reached after its expiry: leaves without firing
            return None
        every_time = e.frequency is Frequency.EVERY_TIME
        if every_time and alert.fired_at is not None:
            assert e.cooldown_s is not None
            if t < alert.fired_at + e.cooldown_s * 1000:
                return None  # spent (levels, ranges: `where` moved on already; percent: keeps its reference)
        alert.firings += 1
        alert.fired_at = t
        if trades is not None and e.condition in PERCENT_CONDITIONS:
            alert.fired_trade = len(trades) - 1
        paused = False
        if every_time:
            if alert.hour_start is None or t - alert.hour_start >= HOUR_MS:
                alert.hour_start, alert.hour_firings = t, 0
            alert.hour_firings += 1
            paused = alert.hour_firings >= self.firings_per_hour
            alert.in_index = not paused
        else:
            alert.gone, alert.in_index = True, False
        hour_firings = alert.hour_firings if every_time else None
        return Firing(alert.firings, e.version, price, paused, reference, hour_firings)
