"""Event schemas carried on the streams: flat, human-readable string fields (see README "Streams")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator

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


# Limits of one stream entry: far above anything a service writes, far below what would hurt a reader.
MAX_ENTRY_FIELDS = 256
MAX_FIELD_BYTES = 65_536


def decode_fields(raw: RawFields) -> Fields:
    """Turn a redis-py entry (bytes or str keys and values) into a str dict; MalformedEvent if not UTF-8."""
    try:
        return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]  # hot path: bytes
    except AttributeError:
        pass
    except UnicodeDecodeError:
        raise MalformedEvent(_undecodable(raw)) from None
    try:
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in raw.items()
        }
    except UnicodeDecodeError:
        raise MalformedEvent(_undecodable(raw)) from None


def decode_entry(raw: RawFields, max_field_bytes: int | None = MAX_FIELD_BYTES) -> Fields:
    """decode_fields, after checking the entry's size: MalformedEvent for too many fields or too long a value."""
    if len(raw) > MAX_ENTRY_FIELDS:
        raise MalformedEvent(f"the entry has {len(raw)} fields, at most {MAX_ENTRY_FIELDS} are accepted")
    if max_field_bytes is not None:
        for name, value in raw.items():
            longest = max(_size(name), _size(value))
            if longest > max_field_bytes:
                what = "a field name" if _size(name) > max_field_bytes else f"field {_preview(name)}"
                raise MalformedEvent(f"{what} is {longest} bytes long, at most {max_field_bytes} are accepted")
    return decode_fields(raw)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, bytes | str) else len(str(value))


def _preview(value: Any, limit: int = 40) -> str:
    """A short, escaped rendering of a field name or value, for error messages."""
    shown = value if isinstance(value, bytes) and not _is_utf8(value) else _text(value)
    return repr(shown[:limit]) + ("..." if len(shown) > limit else "")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _undecodable(raw: RawFields) -> str:
    """Which field of `raw` is not UTF-8, said readably."""
    for name, value in raw.items():
        if not _is_utf8(name):
            return f"field name {_preview(name)} is not UTF-8"
        if not _is_utf8(value):
            return f"the value of field {_preview(name)} is not UTF-8: {_preview(value)}"
    return "the entry is not UTF-8"


def _is_utf8(value: Any) -> bool:
    if not isinstance(value, bytes):
        return True
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


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
    max_field_bytes: ClassVar[int | None] = MAX_FIELD_BYTES

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
            return cls.model_validate(decode_entry(raw, cls.max_field_bytes))
        except ValidationError as exc:
            raise MalformedEvent(f"{cls.__name__}: {exc.errors(include_url=False)}") from exc


# The digits a price may have anywhere in the system (an alert's target, a trade's price): far beyond any real price
# filter, small enough that no decimal arithmetic or column overflows; the evaluator compares them exactly.
MAX_PRICE_INTEGER_DIGITS = 20
MAX_PRICE_FRACTION_DIGITS = 18


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


def trigger_id_for(alert_id: str) -> str:
    """An alert's trigger id: the alert's own id, since an alert fires at most once (the notifier dedupes by it)."""
    return alert_id


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

    max_field_bytes: ClassVar[int | None] = None  # the whole exchange's symbols in one field
    fetched_at: datetime
    count: int
    symbols: str  # JSON array of [symbol, min_price, max_price, tick_size]

    @classmethod
    def build(cls, symbols: list[CatalogSymbol], fetched_at: datetime) -> CatalogSnapshot:
        """Pack a symbol list into one snapshot entry."""
        rows = [
            [s.symbol, _field_text(s.min_price), _field_text(s.max_price), _field_text(s.tick_size)] for s in symbols
        ]
        return cls(fetched_at=fetched_at, count=len(rows), symbols=json.dumps(rows, separators=(",", ":")))

    def entries(self) -> dict[str, CatalogSymbol]:
        """The snapshot's symbols, by name."""
        rows = json.loads(self.symbols)
        return {
            r[0]: CatalogSymbol(symbol=r[0], min_price=Decimal(r[1]), max_price=Decimal(r[2]), tick_size=Decimal(r[3]))
            for r in rows
        }


class SigningKey(Event):
    """A public key the auth service signs tokens with, vouched for by the root key until `valid_until`.

    Verifiers accept it only with a valid `signature` (see pricealert.common.keytrust); auth re-publishes
    each of its keys every few seconds with a new `valid_until`, so a key it drops soon stops verifying.
    """

    kid: str
    algorithm: str
    public_key: str  # PEM
    issued_at: AwareDatetime
    valid_until: AwareDatetime
    signature: str  # base64url Ed25519 signature of the root key over keytrust.statement_bytes


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
