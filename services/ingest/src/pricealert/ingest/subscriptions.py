"""The desired symbol set, kept in Redis from alert events and triggers, idempotent under redelivery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from structlog.contextvars import bound_contextvars

from pricealert.common import names
from pricealert.common.consumer import Received
from pricealert.common.events import AlertEvent, AlertEventType, Trigger
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS
from pricealert.common.scripts import lua

log = structlog.get_logger()

# An alert already gone (deleted, expired or fired, perhaps seen first on the triggers stream) stays gone.
_ADD_ACTIVE_ALERT = lua("pricealert.ingest", "add_active_alert")
_REMOVE_ACTIVE_ALERT = lua("pricealert.ingest", "remove_active_alert")


def normalize(symbol: str) -> str:
    """Symbols are kept upper-case, as the exchange spells them."""
    return symbol.strip().upper()


class SymbolRegistry:
    """Which symbols have active alerts: one Redis set of alert ids per symbol, plus the set of symbols."""

    def __init__(self, redis: Redis, *, gone_ttl_s: int, on_change: Callable[[], None] | None = None) -> None:
        self.redis = redis
        self.gone_ttl_s = gone_ttl_s
        self.on_change = on_change
        self._add = redis.register_script(_ADD_ACTIVE_ALERT)
        self._remove = redis.register_script(_REMOVE_ACTIVE_ALERT)

    async def symbols(self) -> set[str]:
        """Every symbol with at least one active alert."""
        members = await self.redis.smembers(names.INGEST_SYMBOLS)
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def apply(self, changes: Sequence[tuple[bool, str, str]]) -> list[bool]:
        """Apply (active?, alert id, symbol) changes in one round trip; for each, whether the symbol set changed."""
        if not changes:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for active, alert_id, raw_symbol in changes:
                symbol = normalize(raw_symbol)
                keys = [names.ingest_symbol_key(symbol), names.INGEST_SYMBOLS, names.ingest_gone_key(alert_id)]
                if active:
                    await self._add(keys=keys, args=[alert_id, symbol], client=pipe)
                else:
                    await self._remove(keys=keys, args=[alert_id, symbol, self.gone_ttl_s], client=pipe)
            replies = await pipe.execute()
        if self.on_change is not None:
            self.on_change()
        return [bool(reply) for reply in replies]

    async def handle_alert_events(self, messages: Sequence[Received[AlertEvent]]) -> None:
        """Consumer handler for the alert-events stream."""
        events = [message.event for message in messages]
        changed = await self.apply([(e.type is AlertEventType.CREATED, e.alert_id, e.symbol) for e in events])
        debug = log.is_enabled_for(logging.DEBUG)
        for event, symbol_changed in zip(events, changed, strict=True):
            if not (symbol_changed or debug):
                continue  # a resync replays every alert: bind and log only what someone will read
            with bound_contextvars(alert_id=event.alert_id):
                log.debug("ingest.alert_event.applied", type=event.type.value, symbol=event.symbol)
                if symbol_changed:
                    subscribed = event.type is AlertEventType.CREATED
                    log.info(
                        "ingest.symbol.subscribed" if subscribed else "ingest.symbol.unsubscribed",
                        symbol=normalize(event.symbol),
                        reason=event.type.value,
                    )

    async def handle_triggers(self, messages: Sequence[Received[Trigger]]) -> None:
        """Consumer handler for the triggers stream: a fired alert is no longer active."""
        triggers = [message.event for message in messages]
        changed = await self.apply([(False, t.alert_id, t.symbol) for t in triggers])
        for trigger, symbol_changed in zip(triggers, changed, strict=True):
            if symbol_changed:
                with bound_contextvars(alert_id=trigger.alert_id, trigger_id=trigger.trigger_id):
                    log.info("ingest.symbol.unsubscribed", symbol=normalize(trigger.symbol), reason="triggered")


class SymbolSync:
    """Pushes the Redis symbol set to the connection pool on every change and every `interval_s`."""

    def __init__(self, registry: SymbolRegistry, apply: Callable[[set[str]], None], interval_s: float) -> None:
        self.registry = registry
        self.apply = apply
        self.interval_s = interval_s
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
                self.apply(await self.registry.symbols())
                self.synced += 1
            except (RedisError, *TRANSIENT_REDIS_ERRORS) as exc:
                log.warning("ingest.symbols.sync_failed", error=f"{type(exc).__name__}: {exc}")
            waits = {asyncio.ensure_future(self.changed.wait()), asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waits, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
