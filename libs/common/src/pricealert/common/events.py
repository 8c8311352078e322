"""The stream contracts: one event class per stream, owning its stream name, field names and encoding.

Each class names its stream (`stream`; a per-shard event its `kind`, its stream being `stream_of(shard)`), lists
its fields in order (`FIELDS`, derived from the model) and encodes / decodes itself (`to_fields` / `from_fields`);
a producer or raw fast path that bypasses pydantic (ingest's tick script, the evaluator's tick lines and trigger
script) uses `FIELDS`, and tests/contracts writes through every producer and reads back with the class. Flat,
human-readable string fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from pricealert.common import names

# Re-exported: decoding entries lives in entries.py, its names stay importable from here.
from pricealert.common.entries import MAX_ENTRY_FIELDS as MAX_ENTRY_FIELDS
from pricealert.common.entries import MAX_FIELD_BYTES as MAX_FIELD_BYTES
from pricealert.common.entries import Fields as Fields
from pricealert.common.entries import MalformedEvent as MalformedEvent
from pricealert.common.entries import RawFields as RawFields
from pricealert.common.entries import decode_entry as decode_entry
from pricealert.common.entries import decode_fields as decode_fields


class Condition(StrEnum):
    """When an alert fires: a target price, a percent move within a window, or a range (docs/conditions.md)."""

    ABOVE = "above"
    BELOW = "below"
    CROSS = "cross"
    PCT_UP = "pct_up"
    PCT_DOWN = "pct_down"
    PCT_MOVE = "pct_move"
    ENTER_RANGE = "enter_range"
    EXIT_RANGE = "exit_range"


LEVEL_CONDITIONS = frozenset({Condition.ABOVE, Condition.BELOW, Condition.CROSS})  # these take target_price
PERCENT_CONDITIONS = frozenset({Condition.PCT_UP, Condition.PCT_DOWN, Condition.PCT_MOVE})  # percent and window
RANGE_CONDITIONS = frozenset({Condition.ENTER_RANGE, Condition.EXIT_RANGE})  # low and high


DEFINITION_FIELDS = ("target_price", "low", "high", "percent", "window")


def definition_fields(condition: Condition) -> frozenset[str]:
    """The fields that define an alert of `condition`, beside its symbol and frequency."""
    if condition in PERCENT_CONDITIONS:
        return frozenset({"percent", "window"})
    if condition in RANGE_CONDITIONS:
        return frozenset({"low", "high"})
    return frozenset({"target_price"})


class Frequency(StrEnum):
    """How often an alert fires: once (then it is triggered), or at every crossing after a cooldown."""

    ONCE = "once"
    EVERY_TIME = "every_time"


# A percent alert's window: its name -> its length in seconds. The evaluator keeps each as WINDOW_BUCKETS buckets.
WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "24h": 86_400}
WINDOW_BUCKETS = 60
MIN_PERCENT, MAX_PERCENT = Decimal("0.1"), Decimal("1000")
MIN_COOLDOWN_S, MAX_COOLDOWN_S, DEFAULT_COOLDOWN_S = 1, 7 * 86_400, 300
MAX_MESSAGE_CHARS = 1_000


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def now_ms() -> int:
    """The current wall-clock time in milliseconds since the epoch."""
    return int(datetime.now(UTC).timestamp() * 1000)


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
    stream: ClassVar[str] = ""  # the stream an unsharded event travels on (a names.py constant)
    kind: ClassVar[str] = ""  # a sharded event's stream kind (names.*_KIND): it travels on stream_of(shard)
    FIELDS: ClassVar[tuple[str, ...]] = ()  # its field names, in order (set from the model)
    max_field_bytes: ClassVar[int | None] = MAX_FIELD_BYTES

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.FIELDS = tuple(cls.model_fields)

    @classmethod
    def stream_of(cls, shard: int) -> str:
        """The stream of `shard` this (sharded) event travels on, e.g. `pricealert:{s3}:ticks` for Tick."""
        if not cls.kind:
            raise TypeError(f"{cls.__name__} travels on one stream, {cls.stream}, not one per shard")
        return names.shard_stream(shard, cls.kind)

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

    kind: ClassVar[str] = names.TICKS_KIND

    symbol: str
    price: Decimal
    trade_id: int
    exchange_time: int  # trade time, ms since the epoch, the exchange's clock
    received_at: int  # when ingest read the frame, ms since the epoch


class AlertEventType(StrEnum):
    """What happened to an alert."""

    CREATED = "alert.created"
    UPDATED = "alert.updated"  # a PATCH: the whole new definition (a new version), active or paused
    DELETED = "alert.deleted"
    EXPIRED = "alert.expired"


class AlertFacts(Event):
    """What every event about one alert carries (no stream of its own): whose it is, its symbol, its definition.

    `target_price` is set for the level conditions, `percent` and `window` for the percent ones, `low` and `high`
    for the ranges (docs/conditions.md); `version` counts the alert's definitions, from 1.
    """

    alert_id: str
    user_id: str
    email: str
    symbol: str
    condition: Condition
    target_price: Decimal | None = None
    name: str | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    percent: Decimal | None = None
    window: str | None = None
    frequency: Frequency = Frequency.ONCE
    cooldown_s: int | None = None
    message: str | None = None
    version: int = 1
    # The channel ids to notify, comma-separated, in order (channels.py); none: the account's email (`email`).
    channels: str | None = None

    @model_validator(mode="after")
    def _definition_fits(self) -> Self:
        """The fields the condition needs are there and those of other conditions are not (docs/conditions.md)."""
        needs = definition_fields(self.condition)
        given = {name for name in DEFINITION_FIELDS if getattr(self, name) is not None}
        if missing := needs - given:
            raise ValueError(f"{self.condition.value} needs {', '.join(sorted(missing))}")
        if extra := given - needs:
            raise ValueError(f"{self.condition.value} takes no {', '.join(sorted(extra))}")
        if self.window is not None and self.window not in WINDOWS:
            raise ValueError(f"unknown window {self.window!r}")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self

    def is_compact(self) -> bool:
        """A v1-shaped alert (a level, once, no message, first version): the evaluator's compact index entry."""
        return (
            self.condition in LEVEL_CONDITIONS
            and self.frequency is Frequency.ONCE
            and not self.message
            and self.version == 1
            and not self.channels
        )


class AlertEvent(AlertFacts):
    """An alert's lifecycle change, with everything the evaluator and ingest need."""

    kind: ClassVar[str] = names.ALERT_EVENTS_KIND

    type: AlertEventType
    event_id: str
    expires_at: datetime | None = None
    occurred_at: datetime
    paused: bool = False  # alert.updated: the new version is paused (out of the index) rather than active
    previous_target_price: Decimal | None = None  # alert.updated: the target of the version before (to find it)


def trigger_id_for(alert_id: str, firing: int = 1, frequency: Frequency = Frequency.ONCE) -> str:
    """A firing's trigger id: a once alert's is the alert id; a recurring alert's n-th is `<alert id>:<n>`."""
    return alert_id if frequency is Frequency.ONCE else f"{alert_id}:{firing}"


class Trigger(AlertFacts):
    """An alert that fired: what the notifier and the alerts service need, no lookups required."""

    kind: ClassVar[str] = names.TRIGGERS_KIND

    trigger_id: str
    price: Decimal
    trade_id: int
    exchange_time: int
    tick_received_at: int
    fired_at: int
    firing: int = 1  # the alert's n-th firing
    reference_price: Decimal | None = None  # percent alerts: the window's low (up) or high (down) the move is from
    change_pct: str | None = None  # percent alerts: the move, in percent, rounded to 2 decimals ("5.03", "-4.12")
    paused: bool = False  # this firing reached the hourly limit: the alert is paused
    hour_firings: int | None = None  # recurring alerts: this firing's number within its hour (the limit if paused)


class DeliveryStatus(StrEnum):
    """Delivery state of a firing on one channel (and, aggregated, of the firing and its alert)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    RETRYING = "retrying"  # an attempt failed and another is scheduled (next_retry_at): a result, not an aggregate


class NotificationResult(Event):
    """Outcome of one attempt to deliver one trigger on one channel; `sent` and `failed` are final.

    `attempts` is this attempt's number (1-based; 0 for a delivery refused before any attempt). Results written
    before channels existed carry no channel: they are the account email's (`email`).
    """

    kind: ClassVar[str] = names.NOTIFICATION_RESULTS_KIND

    trigger_id: str
    alert_id: str
    status: Literal[DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.RETRYING]
    attempts: int
    error: str | None = None
    occurred_at: datetime
    user_id: str | None = None
    channel_id: str = "email"
    channel_kind: str = "email"  # channels.ChannelKind
    reply: str | None = None  # the receiver's answer, short: "HTTP 500", "250 2.0.0 Ok: queued as …"
    http_status: int | None = None
    next_retry_at: datetime | None = None  # retrying: when the next attempt is due
    channel_disabled: bool = False  # the receiver answered 410 Gone: the channel is to be disabled


class CatalogSymbol(BaseModel):
    """One TRADING symbol with its PRICE_FILTER bounds."""

    model_config = ConfigDict(frozen=True)
    symbol: str
    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal


class CatalogSnapshot(Event):
    """The exchange's tradable symbols, published whole by ingest."""

    stream: ClassVar[str] = names.SYMBOL_CATALOG

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

    stream: ClassVar[str] = names.SIGNING_KEYS

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
    # Written by the alerts service (its outbox): an email channel's address to verify; mail the link with `token`.
    CHANNEL_VERIFICATION = "account.channel_verification"


class AccountEvent(Event):
    """An account's event, with everything the notifier needs to write the mail it calls for."""

    stream: ClassVar[str] = names.ACCOUNT_EVENTS

    type: AccountEventType
    event_id: str
    user_id: str | None = None  # none for a refused registration: no account exists
    email: str
    username: str | None = None  # the username a refused registration asked for
    token: str | None = None  # the verification token (registered, verification_resent)
    expires_at: datetime | None = None  # when the token expires
    occurred_at: datetime
