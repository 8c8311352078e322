"""Business rules of alerts: validation, ownership, limits, lifecycle; raises domain errors."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from pricealert.alerts import editing, rules
from pricealert.alerts.auth import User
from pricealert.alerts.catalog import SymbolCatalog
from pricealert.alerts.deliverylog import delivery_record
from pricealert.alerts.deliverystate import ChannelTally
from pricealert.alerts.metrics import ALERT_CHANGES, DELIVERIES
from pricealert.alerts.models import Alert, AlertStatus, Channel, Firing, NewAlert
from pricealert.alerts.schemas import AlertCreate, AlertPatch
from pricealert.alerts.shardgate import ShardGate
from pricealert.alerts.store import ActiveLimitReached, AlertStore, TriggerRecord
from pricealert.alerts.views import AlertView
from pricealert.common.channels import join_channel_ids, parse_channel_ids
from pricealert.common.errors import Conflict, InvalidInput, NotFound
from pricealert.common.events import (
    DEFAULT_COOLDOWN_S,
    Condition,
    Frequency,
    NotificationResult,
    Trigger,
    utc_now,
)

log = structlog.get_logger()

ChannelCheck = Callable[[User, list[str]], Awaitable[None]]  # ChannelService.check_ids: raises to refuse the ids


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    items: Sequence[AlertView]
    total: int


@dataclass(frozen=True)
class FiringsPage:
    """One page of an alert's firings."""

    items: Sequence[Firing]
    total: int
    channels: Mapping[str, list[ChannelTally]] = field(default_factory=dict)  # by trigger id


def _not_found(alert_id: str) -> NotFound:
    return NotFound(f"Alert {alert_id} does not exist.", code="alert_not_found", details={"id": alert_id})


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


class AlertService:
    """Alert operations on a store; each runs in its own transaction."""

    def __init__(
        self,
        store: AlertStore,
        catalog: SymbolCatalog,
        *,
        max_active_per_user: int,
        gate: ShardGate | None = None,
        channels: ChannelCheck | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.max_active_per_user = max_active_per_user
        self.gate = gate  # set: creates and deletes are refused (503) once the shard count disagrees with Redis
        self.channels = channels

    def _limit_reached(self, active: int) -> Conflict:
        return Conflict(
            f"You already hold {active} active alerts, the most allowed.",
            code="alert_limit_reached",
            details={"limit": self.max_active_per_user},
        )

    async def create(self, user: User, data: AlertCreate) -> NewAlert:
        """Validate against the rules, the catalog and the user's limit, then store the alert and its event."""
        if self.gate is not None:
            self.gate.check()
        every_time = data.frequency is Frequency.EVERY_TIME
        spec = rules.Spec(
            condition=data.condition,
            frequency=data.frequency,
            target_price=data.target_price,
            low=data.low,
            high=data.high,
            percent=data.percent,
            window=data.window,
            cooldown_s=DEFAULT_COOLDOWN_S if every_time and data.cooldown_s is None else data.cooldown_s,
            message=data.message,
        )
        rules.check(spec)
        entry = await self.catalog.lookup(data.symbol)
        rules.check_prices(spec, entry)
        if data.channels is not None and self.channels is not None:
            await self.channels(user, data.channels)
        now = utc_now()
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidInput(
                "expires_at must be in the future.",
                code="expires_at_in_past",
                details={"expires_at": data.expires_at.isoformat()},
            )
        alert = NewAlert(
            id=str(uuid.uuid4()),
            user_id=user.id,
            email=user.email,
            symbol=entry.symbol.upper(),
            condition=data.condition.value,
            target_price=spec.target_price,
            name=data.name,
            status=AlertStatus.ACTIVE.value,
            created_at=now,
            updated_at=now,
            expires_at=data.expires_at,
            low=spec.low,
            high=spec.high,
            percent=spec.percent,
            window=spec.window,
            frequency=spec.frequency.value,
            cooldown_s=spec.cooldown_s,
            message=spec.message,
            channel_ids=join_channel_ids(data.channels),
        )
        active = await self.store.create(alert, limit=self.max_active_per_user)
        if active is not None:
            raise self._limit_reached(active)
        ALERT_CHANGES.labels("created").inc()
        # structlog builds the whole event before the stdlib logger drops it: ask first on this hot path.
        if log.is_enabled_for(logging.INFO):
            log.info("alert.created", alert_id=alert.id, user_id=user.id, symbol=alert.symbol)
        return alert

    async def update(self, user: User, alert_id: str, patch: AlertPatch) -> AlertView:
        """Change one of the user's alerts (a new version, announced by alert.updated); answers the alert."""
        if self.gate is not None:
            self.gate.check()
        if patch.not_patchable:
            raise editing.not_patchable(patch.not_patchable)
        current = await self.store.get(alert_id, user.id)
        if current is None:
            raise _not_found(alert_id)
        if "channels" in patch.given() and patch.channels is not None and self.channels is not None:
            await self.channels(user, patch.channels)
        prices = any(getattr(patch, name) is not None for name in rules.PRICE_FIELDS)
        entry = await self.catalog.lookup(current.symbol) if prices else None
        now = utc_now()
        changed: list[editing.Edit] = []

        def plan(alert: Alert) -> editing.Edit | None:
            edit = editing.plan_edit(alert, patch, entry, now)
            changed[:] = [] if edit is None else [edit]
            return edit

        try:
            alert = await self.store.update(alert_id, user.id, plan, limit=self.max_active_per_user)
        except ActiveLimitReached as exc:
            raise self._limit_reached(exc.active) from exc
        if alert is None:
            raise _not_found(alert_id)
        if changed:
            ALERT_CHANGES.labels("updated").inc()
            log.info(
                "alert.updated",
                alert_id=alert_id,
                user_id=user.id,
                version=alert.version,
                fields=sorted(set(changed[0].values) - {"version", "updated_at"}),
            )
        return alert

    async def firings(self, user: User, alert_id: str, *, page: int, page_size: int) -> FiringsPage:
        """One page of the firings of one of the user's alerts, newest first."""
        if await self.store.get(alert_id, user.id) is None:
            raise _not_found(alert_id)
        items, total = await self.store.firings(alert_id, offset=(page - 1) * page_size, limit=page_size)
        return FiringsPage(items, total, await self.store.firing_channels(items))

    async def get(self, user: User, alert_id: str) -> AlertView:
        """One of the user's alerts; another user's alert does not exist for them."""
        alert = await self.store.get(alert_id, user.id)
        if alert is None:
            raise _not_found(alert_id)
        return alert

    async def list(
        self,
        user: User,
        *,
        status: AlertStatus | None,
        symbol: str | None,
        page: int,
        page_size: int,
        condition: Condition | None = None,
    ) -> Page:
        """The user's alerts, newest first, filtered and paginated."""
        status_value = None if status is None else status.value
        symbol_value = None if symbol is None else symbol.strip().upper()
        offset = (page - 1) * page_size
        items, total = await self.store.list_alerts(
            user.id,
            status=status_value,
            symbol=symbol_value,
            offset=offset,
            limit=page_size,
            condition=None if condition is None else condition.value,
        )
        return Page(items, total)

    async def delete(self, user: User, alert_id: str) -> None:
        """Soft-delete one of the user's alerts; deleting it again changes nothing."""
        if self.gate is not None:
            self.gate.check()
        deleted = await self.store.delete(alert_id, user.id)
        if deleted is None:
            raise _not_found(alert_id)
        if deleted:
            ALERT_CHANGES.labels("deleted").inc()
            log.info("alert.deleted", alert_id=alert_id, user_id=user.id)

    async def expire_due(self, *, limit: int = 500) -> int:
        """Expire active alerts whose time passed and stage alert.expired for each; returns how many."""
        expired = await self.store.expire_due(utc_now(), limit)
        if expired:
            ALERT_CHANGES.labels("expired").inc(len(expired))
            for alert in expired:
                log.info("alert.expired", alert_id=alert.id, user_id=alert.user_id)
        return len(expired)

    async def record_triggers(self, triggers: Sequence[Trigger]) -> None:
        """Store each firing and count it on its alert (idempotent per trigger id): a once alert becomes triggered,
        an every_time alert stays active unless the firing paused it (deleted or expired alerts keep their status)."""
        # In user order: each status change locks its user's count rows, which every writer takes in that order.
        ordered = sorted(triggers, key=lambda t: (t.user_id, t.alert_id))
        records = [
            TriggerRecord(
                alert_id=t.alert_id,
                trigger_id=t.trigger_id,
                fired_at=ms_to_datetime(t.fired_at),
                price=t.price,
                exchange_time=ms_to_datetime(t.exchange_time),
                firing=t.firing,
                trade_id=t.trade_id,
                version=t.version,
                once=t.frequency is Frequency.ONCE,
                paused=t.paused,
                hour_firings=t.hour_firings,
                channel_ids=join_channel_ids(parse_channel_ids(t.channels)),
            )
            for t in ordered
        ]
        for trigger, changed in zip(ordered, await self.store.record_triggers(records), strict=True):
            if changed:
                ALERT_CHANGES.labels("triggered").inc()
            log.info(
                "alert.triggered" if changed else "alert.trigger.ignored",
                alert_id=trigger.alert_id,
                trigger_id=trigger.trigger_id,
                firing=trigger.firing,
                paused=trigger.paused,
            )

    async def record_results(self, results: Sequence[NotificationResult]) -> Sequence[Channel]:
        """Log each delivery attempt once and update its firing's and alert's delivery (a success is never undone);
        answers the channels a 410 disabled, for the caller to publish (the transaction is committed)."""
        # Rows locked in id order, like every batch; one channel's attempts in order.
        ordered = sorted(results, key=lambda r: (r.alert_id, r.trigger_id, r.channel_id, r.attempts))
        recorded = await self.store.record_deliveries([delivery_record(r) for r in ordered])
        for result, changed in zip(ordered, recorded.changed, strict=True):
            if changed:
                DELIVERIES.labels(result.status.value).inc()
            log.info(
                "alert.delivery.recorded",
                alert_id=result.alert_id,
                trigger_id=result.trigger_id,
                channel_id=result.channel_id,
                attempt=result.attempts,
                status=result.status.value,
                changed=changed,
            )
        for channel in recorded.disabled:
            log.warning("channel.disabled", channel_id=channel.id, user_id=channel.user_id, reason="410 Gone")
        return recorded.disabled

    async def resync(self, *, batch_size: int = 1000) -> int:
        """Stage alert.created again for every active alert (rebuilds downstream indexes)."""
        after, total = "", 0
        while batch := await self.store.stage_active_after(after, batch_size):
            total += len(batch)
            after = batch[-1]
        return total
