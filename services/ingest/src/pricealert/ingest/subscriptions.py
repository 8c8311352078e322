"""The desired symbol set, kept in Redis per shard from alert events and triggers, idempotent under redelivery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple

import structlog
from redis.exceptions import RedisError
from structlog.contextvars import bound_contextvars

from pricealert.common import names
from pricealert.common.consumer import Received
from pricealert.common.events import AlertEvent, AlertEventType, Frequency, Trigger, now_ms
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.common.scripts import lua
from pricealert.common.shards import shard_of
from pricealert.ingest.scriptcalls import ScriptCall, call_scripts

log = structlog.get_logger()

# An alert already gone (deleted, expired or fired, perhaps seen first on the triggers stream) stays gone; a paused
# one leaves no tombstone (a later version resumes it), and a change older than one applied is ignored.
_ADD_ACTIVE_ALERT = lua("pricealert.ingest", "add_active_alert")
_PAUSE_ACTIVE_ALERT = lua("pricealert.ingest", "pause_active_alert")
_REMOVE_ACTIVE_ALERT = lua("pricealert.ingest", "remove_active_alert")
FIRST_ORDER = 2  # the order of an alert's first definition (version 1, active): never recorded


def normalize(symbol: str) -> str:
    """Symbols are kept upper-case, as the exchange spells them."""
    return symbol.strip().upper()


class AlertState(StrEnum):
    """What a change makes of an alert in the registry."""

    ACTIVE = "active"  # it counts: its symbol is subscribed
    PAUSED = "paused"  # it does not count until a later version is active again
    GONE = "gone"  # it never counts again (tombstoned)


class Change(NamedTuple):
    """One alert's change; `order` ranks the changes of one alert (2 x version, + 1 for a pause of that version)."""

    state: AlertState
    alert_id: str
    symbol: str
    order: int = FIRST_ORDER


def event_change(event: AlertEvent) -> Change:
    """The change an alert event makes: created and an active update count, a paused update pauses, the rest go."""
    if event.type is AlertEventType.UPDATED and event.paused:
        return Change(AlertState.PAUSED, event.alert_id, event.symbol, 2 * event.version + 1)
    if event.type in (AlertEventType.CREATED, AlertEventType.UPDATED):
        return Change(AlertState.ACTIVE, event.alert_id, event.symbol, 2 * event.version)
    return Change(AlertState.GONE, event.alert_id, event.symbol)


def trigger_change(trigger: Trigger) -> Change | None:
    """The change a trigger makes: a once alert is gone, a recurring one stays unless this firing paused it."""
    if trigger.frequency is Frequency.ONCE:
        return Change(AlertState.GONE, trigger.alert_id, trigger.symbol)
    if trigger.paused:
        return Change(AlertState.PAUSED, trigger.alert_id, trigger.symbol, 2 * trigger.version + 1)
    return None


class SymbolRegistry:
    """Which symbols have active alerts: per shard, one Redis set of alert ids per symbol plus the set of symbols."""

    def __init__(
        self, redis: RedisClient, *, shards: int, gone_ttl_s: int, on_change: Callable[[], None] | None = None
    ) -> None:
        self.redis = redis
        self.shards = shards
        self.gone_ttl_s = gone_ttl_s
        self.on_change = on_change
        self._add = redis.register_script(_ADD_ACTIVE_ALERT)
        self._pause = redis.register_script(_PAUSE_ACTIVE_ALERT)
        self._remove = redis.register_script(_REMOVE_ACTIVE_ALERT)

    async def symbols(self, shards: Iterable[int] | None = None) -> set[str]:
        """Every symbol with at least one active alert on `shards` (all shards by default)."""
        found: set[str] = set()
        for shard in range(self.shards) if shards is None else sorted(shards):
            members = await self.redis.smembers(names.ingest_symbols_key(shard))
            found.update(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        return found

    async def apply(self, changes: Sequence[Change]) -> list[bool]:
        """Apply `changes`, each in its symbol's shard; for each, whether the symbol set changed."""
        if not changes:
            return []
        now = now_ms()
        gone_until = now + self.gone_ttl_s * 1000
        calls: list[ScriptCall] = []
        for state, alert_id, raw_symbol, order in changes:
            symbol = normalize(raw_symbol)
            shard = shard_of(symbol, self.shards)
            keys = [
                names.ingest_symbol_key(shard, symbol),
                names.ingest_symbols_key(shard),
                names.ingest_gone_key(shard),
                names.ingest_versions_key(shard),
            ]
            if state is AlertState.ACTIVE:
                record = 1 if order > FIRST_ORDER else 0
                calls.append((self._add, keys, [alert_id, symbol, now, order, record]))
            elif state is AlertState.PAUSED:
                calls.append((self._pause, keys, [alert_id, symbol, now, order]))
            else:
                calls.append((self._remove, keys, [alert_id, symbol, now, gone_until]))
        replies = await call_scripts(self.redis, calls)
        if self.on_change is not None:
            self.on_change()
        return [bool(reply) for reply in replies]

    async def handle_alert_events(self, messages: Sequence[Received[AlertEvent]]) -> None:
        """Consumer handler for the alert-events stream."""
        events = [message.event for message in messages]
        changes = [event_change(e) for e in events]
        changed = await self.apply(changes)
        debug = log.is_enabled_for(logging.DEBUG)
        for event, change, symbol_changed in zip(events, changes, changed, strict=True):
            if not (symbol_changed or debug):
                continue  # a resync replays every alert: bind and log only what someone will read
            with bound_contextvars(alert_id=event.alert_id):
                log.debug("ingest.alert_event.applied", type=event.type.value, symbol=event.symbol)
                if symbol_changed:
                    subscribed = change.state is AlertState.ACTIVE
                    log.info(
                        "ingest.symbol.subscribed" if subscribed else "ingest.symbol.unsubscribed",
                        symbol=normalize(event.symbol),
                        reason=event.type.value,
                    )

    async def handle_triggers(self, messages: Sequence[Received[Trigger]]) -> None:
        """Consumer handler for the triggers stream: a fired once alert is gone, a recurring one that paused pauses."""
        found = [(m.event, trigger_change(m.event)) for m in messages]
        triggers = [(trigger, change) for trigger, change in found if change is not None]
        changed = await self.apply([change for _, change in triggers])
        for (trigger, change), symbol_changed in zip(triggers, changed, strict=True):
            if symbol_changed:
                with bound_contextvars(alert_id=trigger.alert_id, trigger_id=trigger.trigger_id):
                    reason = "paused" if change.state is AlertState.PAUSED else "triggered"
                    log.info("ingest.symbol.unsubscribed", symbol=normalize(trigger.symbol), reason=reason)


class SymbolSync:
    """Pushes the symbols of the owned shards to the connection pool on every change and every `interval_s`."""

    def __init__(
        self,
        registry: SymbolRegistry,
        apply: Callable[[set[str]], None],
        interval_s: float,
        owned: Callable[[], Iterable[int]],
    ) -> None:
        self.registry = registry
        self.apply = apply
        self.interval_s = interval_s
        self.owned = owned
        self.changed = asyncio.Event()
        self.synced = 0

    def notify(self) -> None:
        """Ask for a sync now."""
        self.changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until `stop` is set."""
        while not stop.is_set():
            self.changed.clear()
            try:
                self.apply(await self.registry.symbols(set(self.owned())))
                self.synced += 1
            except (RedisError, *TRANSIENT_REDIS_ERRORS) as exc:
                log.warning("ingest.symbols.sync_failed", error=f"{type(exc).__name__}: {exc}")
            waits = {asyncio.ensure_future(self.changed.wait()), asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waits, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
