"""Scenarios of every condition and frequency for the evaluator and its oracle (oracle.py): operations, strategies.

An operation list (creates, PATCHes, deletes, trades, flushes) becomes alert events and ticks (`Scenario`), fed in
the same order to the oracle and to a `Driver` (the Matcher, replica consumers or evaluator processes); then the
triggers the evaluator appended must be the oracle's firings, per alert and in order (`assert_same_firings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from oracle import Firing, Oracle

from pricealert.common.events import (
    LEVEL_CONDITIONS,
    RANGE_CONDITIONS,
    AlertEvent,
    AlertEventType,
    Condition,
    Frequency,
    Tick,
    Trigger,
    now_ms,
    trigger_id_for,
    utc_now,
)
from pricealert.common.redisconn import RedisClient

BASE_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the trade times are synthetic, whole days from the epoch
SYMBOLS = ("BTCUSDT", "ETHUSDT")  # on different shards
FIRINGS_PER_HOUR = 3


@dataclass(frozen=True)
class Create:
    symbol: str
    condition: Condition
    frequency: Frequency
    cooldown_s: int
    target: Decimal
    bounds: tuple[Decimal, Decimal]  # a range's low and high
    percent: Decimal
    window: str
    expires_in_s: int | None = None


@dataclass(frozen=True)
class Patch:
    alert: int  # the n-th created alert
    target: Decimal
    bounds: tuple[Decimal, Decimal]  # a range's low and high
    percent: Decimal
    window: str
    cooldown_s: int
    redefine: bool  # False: only the status (or nothing) changes
    status: str | None = None  # "paused", "active" or unchanged
    frequency: Frequency | None = None  # a new frequency (with cooldown_s), or unchanged


@dataclass(frozen=True)
class Redeliver:
    event: int  # the n-th event applied (modulo their number) reaches the evaluator again


@dataclass(frozen=True)
class Delete:
    alert: int


@dataclass(frozen=True)
class Trade:
    symbol: str
    price: Decimal
    dt: int  # ms after the previous trade (negative: out of order)


@dataclass(frozen=True)
class Flush:
    pass


Operation = Create | Patch | Delete | Redeliver | Trade | Flush


class Scenario:
    """Turns operations into the alert events and ticks the alerts service and ingest would publish."""

    def __init__(self, firings_per_hour: int = FIRINGS_PER_HOUR) -> None:
        self.oracle = Oracle(firings_per_hour)
        self.alerts: list[AlertEvent] = []  # the latest event of each created alert
        self.clock = BASE_TIME
        self.trade_id = 0
        self.events = 0
        self.log: list[str] = []  # what happened, one line each, for a failure's message
        self.applied_events: list[AlertEvent] = []

    def event(self, op: Create | Patch | Delete) -> AlertEvent | None:
        """The event `op` makes, or None when the alerts service would publish none (an alert gone, a no-op)."""
        if isinstance(op, Create):
            return self._created(op)
        if op.alert >= len(self.alerts):
            return None
        before = self.alerts[op.alert]
        status = self.oracle.status(before.alert_id)
        if status == "gone" or (before.expires_at is not None and self.clock > before.expires_at.timestamp() * 1000):
            return None
        self.events += 1
        if isinstance(op, Delete):
            fields = before.model_dump() | {"type": AlertEventType.DELETED, "occurred_at": utc_now()}
            return AlertEvent(**fields | {"event_id": f"e{self.events}"})
        if not op.redefine and op.status in (None, status) and op.frequency in (None, before.frequency):
            return None  # nothing changes: no new version
        fields = before.model_dump() | {
            "type": AlertEventType.UPDATED,
            "event_id": f"e{self.events}",
            "version": before.version + 1,
            "paused": (op.status or status) == "paused",
            "occurred_at": utc_now(),
            "previous_target_price": before.target_price,
        }
        if op.redefine:
            fields |= definition(before.condition, op.target, op.bounds, op.percent, op.window)
            if before.frequency is Frequency.EVERY_TIME:
                fields["cooldown_s"] = op.cooldown_s
        if op.frequency is not None:
            fields["frequency"] = op.frequency
            fields["cooldown_s"] = op.cooldown_s if op.frequency is Frequency.EVERY_TIME else None
        return AlertEvent(**fields)

    def _created(self, op: Create) -> AlertEvent:
        alert_id = f"a{len(self.alerts)}"
        self.events += 1
        expires = None
        if op.expires_in_s is not None:  # whole seconds: a datetime keeps them exactly
            expires = datetime.fromtimestamp(self.clock // 1000 + op.expires_in_s, UTC)
        return AlertEvent(
            type=AlertEventType.CREATED,
            event_id=f"e{self.events}",
            alert_id=alert_id,
            user_id="u1",
            email="u1@example.com",
            symbol=op.symbol,
            condition=op.condition,
            frequency=op.frequency,
            cooldown_s=op.cooldown_s if op.frequency is Frequency.EVERY_TIME else None,
            name=f"alert {alert_id}",
            expires_at=expires,
            occurred_at=utc_now(),
            **definition(op.condition, op.target, op.bounds, op.percent, op.window),
        )

    def applied(self, event: AlertEvent) -> None:
        """The evaluator applied `event`: so does the oracle."""
        self.applied_events.append(event)
        if event.type is AlertEventType.CREATED:
            self.alerts.append(event)
        else:
            self.alerts[int(event.alert_id[1:])] = event
        self.oracle.apply(event)
        shown = event.model_dump(include={*DESCRIBED, "version", "paused", "expires_at"}, exclude_none=True)
        self.log.append(f"{event.type.value} {event.alert_id} {shown}")

    def tick(self, op: Trade) -> Tick:
        """The tick of a trade `op.dt` ms after the previous one; the oracle judges it."""
        self.clock += op.dt
        self.trade_id += 1
        tick = Tick(
            symbol=op.symbol, price=op.price, trade_id=self.trade_id, exchange_time=self.clock, received_at=now_ms()
        )
        fired = self.oracle.trade(tick)
        self.log.append(f"trade {tick.symbol} {tick.price} t={tick.exchange_time - BASE_TIME} fires {fired}")
        return tick


def definition(
    condition: Condition, target: Decimal, bounds: tuple[Decimal, Decimal], percent: Decimal, window: str
) -> dict[str, object]:
    """The definition fields of `condition` (docs/conditions.md), the others None."""
    fields: dict[str, object] = dict.fromkeys(("target_price", "low", "high", "percent", "window"))
    if condition in LEVEL_CONDITIONS:
        fields["target_price"] = target
    elif condition in RANGE_CONDITIONS:
        fields["low"], fields["high"] = bounds
    else:
        fields["percent"], fields["window"] = percent, window
    return fields


class Driver(Protocol):
    """The evaluator under test: applies an event, takes a tick, judges every tick taken (flush)."""

    async def apply(self, event: AlertEvent) -> None: ...
    async def add(self, tick: Tick) -> None: ...
    async def flush(self) -> None: ...


async def run_operations(driver: Driver, ops: list[Operation], scenario: Scenario) -> None:
    """Feed `ops` to the driver and the oracle; an event waits until every earlier tick was judged."""
    for op in ops:
        if isinstance(op, Trade):
            await driver.add(scenario.tick(op))
        elif isinstance(op, Flush):
            await driver.flush()
            scenario.log.append("flush")
        elif isinstance(op, Redeliver):
            if scenario.applied_events:
                event = scenario.applied_events[op.event % len(scenario.applied_events)]
                await driver.flush()
                await driver.apply(event)
                scenario.oracle.apply(event)
                scenario.log.append(f"again {event.type.value} {event.alert_id} version {event.version}")
        elif (event := scenario.event(op)) is not None:
            await driver.flush()
            await driver.apply(event)
            scenario.applied(event)
    await driver.flush()


async def shard_triggers(redis: RedisClient, shards: int) -> list[dict[str, str]]:
    """Every trigger of every shard, as text fields; in stream order within a shard (so within an alert)."""
    found = []
    for shard in range(shards):
        for _, fields in await redis.xrange(Trigger.stream_of(shard)):
            found.append({k.decode(): v.decode() for k, v in fields.items()})
    return found


def assert_same_firings(triggers: list[dict[str, str]], scenario: Scenario) -> None:
    """The triggers are the oracle's firings: ids unique and right, per alert the same firings in the same order."""
    ids = [t["trigger_id"] for t in triggers]
    assert len(ids) == len(set(ids)), f"a trigger was appended twice: {sorted(ids)}"
    fired: dict[str, list[Firing]] = {}
    for t in triggers:
        firing = Firing(
            int(t.get("firing") or 1),
            int(t.get("version") or 1),
            Decimal(t["price"]),
            t.get("paused") == "1",
            Decimal(t["reference_price"]) if t.get("reference_price") else None,
            int(t["hour_firings"]) if t.get("hour_firings") else None,
        )
        assert t["trigger_id"] == trigger_id_for(t["alert_id"], firing.firing, Frequency(t.get("frequency") or "once"))
        fired.setdefault(t["alert_id"], []).append(firing)
    expected = scenario.oracle.firings
    for alert_id in sorted(set(fired) | set(expected)):
        assert fired.get(alert_id, []) == expected.get(alert_id, []), f"{alert_id}\n" + "\n".join(scenario.log)
    # Beyond the comparison: the reference price where the oracle knows it, the count within the hour.
    for alert_id, firings in expected.items():
        for want, got in zip(firings, fired[alert_id], strict=True):
            if want.reference_price is not None:
                assert got.reference_price == want.reference_price, f"{alert_id} {want.firing}: reference price"
            assert got.hour_firings == want.hour_firings, f"{alert_id} {want.firing}: hour_firings"


DESCRIBED = ("symbol", "condition", "frequency", "cooldown_s", "target_price", "low", "high", "percent", "window")
