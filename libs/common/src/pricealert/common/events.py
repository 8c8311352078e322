"""Event schemas carried on the streams: flat, human-readable string fields (see README "Streams")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

Fields = dict[str, str]
RawFields = dict[bytes, bytes] | dict[str, str] | dict[Any, Any]


class MalformedEvent(ValueError):
    """A stream entry that does not match the schema of its stream."""


class Condition(StrEnum):
    """When an alert fires relative to its target price."""

    ABOVE = "above"
    BELOW = "below"
    CROSS = "cross"


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def now_ms() -> int:
    """The current wall-clock time in milliseconds since the epoch."""
    return int(datetime.now(UTC).timestamp() * 1000)


def decode_fields(raw: RawFields) -> Fields:
    """Turn a redis-py entry (bytes or str keys and values) into a str dict."""
    try:
        return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]  # hot path: bytes
    except AttributeError:
        pass
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
        for k, v in raw.items()
    }


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class Event(BaseModel):
    """Base of every stream event: flat fields, serialised as plain strings."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    stream_type: ClassVar[str] = ""

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def to_fields(self) -> Fields:
        """The event as the flat str -> str mapping written with XADD."""
        return {name: _field_text(value) for name, value in self.model_dump().items()}

    @classmethod
    def from_fields(cls, raw: RawFields) -> Self:
        """Parse a stream entry; raises MalformedEvent when it does not fit the schema."""
        try:
            return cls.model_validate(decode_fields(raw))
        except ValidationError as exc:
            raise MalformedEvent(f"{cls.__name__}: {exc.errors(include_url=False)}") from exc


class Tick(Event):
    """One trade on the exchange, as published by ingest."""

    symbol: str
    price: Decimal
    trade_id: int
    exchange_time: int  # trade time, ms since the epoch, the exchange's clock
    received_at: int  # when ingest read the frame, ms since the epoch


class AlertEventType(StrEnum):
    """What happened to an alert."""

    CREATED = "alert.created"
    DELETED = "alert.deleted"
    EXPIRED = "alert.expired"


class AlertEvent(Event):
    """An alert's lifecycle change, with everything the evaluator and ingest need."""

    type: AlertEventType
    event_id: str
    alert_id: str
    user_id: str
    email: str
    symbol: str
    condition: Condition
    target_price: Decimal
    name: str | None = None
    expires_at: datetime | None = None
    occurred_at: datetime


class Trigger(Event):
    """An alert that fired: what the notifier and the alerts service need, no lookups required."""

    trigger_id: str
    alert_id: str
    user_id: str
    email: str
    symbol: str
    condition: Condition
    target_price: Decimal
    name: str | None = None
    price: Decimal
    trade_id: int
    exchange_time: int
    tick_received_at: int
    fired_at: int


class DeliveryStatus(StrEnum):
    """Delivery state of an alert's email."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class NotificationResult(Event):
    """Outcome of sending one trigger's email."""

    trigger_id: str
    alert_id: str
    status: Literal[DeliveryStatus.SENT, DeliveryStatus.FAILED]
    attempts: int
    error: str | None = None
    occurred_at: datetime


class CatalogSymbol(BaseModel):
    """One TRADING symbol with its PRICE_FILTER bounds."""

    model_config = ConfigDict(frozen=True)
    symbol: str
    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal


class CatalogSnapshot(Event):
    """The exchange's tradable symbols, published whole by ingest."""

    fetched_at: datetime
    count: int
    symbols: str  # JSON array of [symbol, min_price, max_price, tick_size]

    @classmethod
    def build(cls, symbols: list[CatalogSymbol], fetched_at: datetime) -> CatalogSnapshot:
        """Pack a symbol list into one snapshot entry."""
        rows = [[s.symbol, _field_text(s.min_price), _field_text(s.max_price), _field_text(s.tick_size)]
                for s in symbols]
        return cls(fetched_at=fetched_at, count=len(rows), symbols=json.dumps(rows, separators=(",", ":")))

    def entries(self) -> dict[str, CatalogSymbol]:
        """The snapshot's symbols, by name."""
        rows = json.loads(self.symbols)
        return {
            r[0]: CatalogSymbol(symbol=r[0], min_price=Decimal(r[1]), max_price=Decimal(r[2]),
                                tick_size=Decimal(r[3]))
            for r in rows
        }


class SigningKey(Event):
    """A public key the auth service signs tokens with; verifiers learn keys from here."""

    kid: str
    algorithm: str
    public_key: str  # PEM
    created_at: datetime


class AccountEventType(StrEnum):
    """What happened to an account (or to an attempt to create one)."""

    REGISTERED = "account.registered"  # a new, unverified account: mail the verification link
    VERIFICATION_RESENT = "account.verification_resent"  # the owner asked for a new link: mail it
    REGISTRATION_REPEATED = "account.registration_repeated"  # someone registered a taken address: tell its owner
    REGISTRATION_REFUSED = "account.registration_refused"  # a new address asked for a taken username: tell it
    VERIFIED = "account.verified"  # the address is verified (no mail)


class AccountEvent(Event):
    """An account's event, with everything the notifier needs to write the mail it calls for."""

    type: AccountEventType
    event_id: str
    user_id: str | None = None  # none for a refused registration: no account exists
    email: str
    username: str | None = None  # the username a refused registration asked for
    token: str | None = None  # the verification token (registered, verification_resent)
    expires_at: datetime | None = None  # when the token expires
    occurred_at: datetime
