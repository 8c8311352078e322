"""ORM models: the alerts table, their firings and the transactional outbox of alert events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from pricealert.common.db import UtcDateTime


class AlertStatus(StrEnum):
    """Lifecycle of an alert: active until it fires (once), expires or is deleted; paused while out of the index."""

    ACTIVE = "active"
    PAUSED = "paused"  # by its owner, or by the evaluator's hourly limit of firings (paused_reason says)
    TRIGGERED = "triggered"
    EXPIRED = "expired"
    DELETED = "deleted"


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as its plain text, identical on every backend (SQLite has no decimal)."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


class Base(DeclarativeBase):
    """Declarative base of the alerts service's tables."""


class Alert(Base):
    """One user's price alert."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_user_created_id", "user_id", "created_at", "id"),
        Index("ix_alerts_user_status_created", "user_id", "status", "created_at", "id"),
        Index("ix_alerts_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    symbol: Mapped[str] = mapped_column(String(32))
    condition: Mapped[str] = mapped_column(String(16))
    target_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    triggered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    triggered_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    triggered_exchange_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    trigger_id: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivery_attempts: Mapped[int | None] = mapped_column(Integer)
    low: Mapped[Decimal | None] = mapped_column(DecimalText())
    high: Mapped[Decimal | None] = mapped_column(DecimalText())
    percent: Mapped[Decimal | None] = mapped_column(DecimalText())
    window: Mapped[str | None] = mapped_column(String(8))
    frequency: Mapped[str] = mapped_column(String(16), default="once", server_default="once")
    cooldown_s: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    firing_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paused_reason: Mapped[str | None] = mapped_column(Text)
    channel_ids: Mapped[str | None] = mapped_column(Text)  # comma-separated; None: the account's email


class Firing(Base):
    """One firing of an alert (its trigger), with its email's outcome.

    A notification result may come before its trigger: its row then holds only the outcome (fired_at null)
    until the trigger fills in the firing.
    """

    __tablename__ = "firings"
    __table_args__ = (Index("ix_firings_alert_firing", "alert_id", "firing", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    trigger_id: Mapped[str] = mapped_column(String(80), unique=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    firing: Mapped[int | None] = mapped_column(Integer)
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    price: Mapped[Decimal | None] = mapped_column(DecimalText())
    trade_id: Mapped[int | None] = mapped_column(BigInteger)
    exchange_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int | None] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivery_attempts: Mapped[int | None] = mapped_column(Integer)
    channel_ids: Mapped[str | None] = mapped_column(Text)  # the trigger's channels; None: the account's email


class Channel(Base):
    """One user's place to be notified: another email address, a webhook or an Apprise URL."""

    __tablename__ = "channels"
    __table_args__ = (
        Index("ix_channels_user_created", "user_id", "created_at", "id"),
        Index("ix_channels_verify_token", "verify_token_hash"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # channels.ChannelKind
    name: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(Text)  # address or URL, secrets included: never returned whole
    status: Mapped[str] = mapped_column(String(16))  # channels.ChannelStatus
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    verify_token_hash: Mapped[str | None] = mapped_column(String(64))
    verify_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Delivery(Base):
    """One attempt to deliver one firing on one channel (the delivery log)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("trigger_id", "channel_id", "attempt", name="uq_deliveries_attempt"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    trigger_id: Mapped[str] = mapped_column(String(80))
    alert_id: Mapped[str] = mapped_column(String(36))
    channel_id: Mapped[str] = mapped_column(String(36))
    channel_kind: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # sent, failed, retrying
    error: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    next_retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboxEntry(Base):
    """An event committed with its alert change, waiting for the relay to XADD it."""

    __tablename__ = "alerts_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(200))
    fields: Mapped[str] = mapped_column(Text)  # JSON object of the event's flat string fields
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


@dataclass(slots=True)
class NewAlert:
    """A just-created alert as plain attributes: the asyncpg path stores it without the ORM's bookkeeping."""

    id: str
    user_id: str
    email: str
    symbol: str
    condition: str
    target_price: Decimal | None
    name: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    triggered_at: datetime | None = None
    triggered_price: Decimal | None = None
    delivery_status: str | None = None
    delivery_error: str | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    percent: Decimal | None = None
    window: str | None = None
    frequency: str = "once"
    cooldown_s: int | None = None
    message: str | None = None
    version: int = 1
    firing_count: int = 0
    last_fired_at: datetime | None = None
    paused_reason: str | None = None
    channel_ids: str | None = None
