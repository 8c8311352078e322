"""Response models of the alerts API: an alert, a page of alerts, a page of firings, the error shape."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pricealert.alerts.deliveryviews import ChannelDeliveryOut
from pricealert.alerts.models import AlertStatus
from pricealert.common.channels import parse_channel_ids
from pricealert.common.events import DEFAULT_COOLDOWN_S, Condition, DeliveryStatus, Frequency
from pricealert.common.prices import Price

EXAMPLE_ID = "3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a"


class AlertView(Protocol):
    """What the API shows of an alert: an ORM row or a row read straight from the driver."""

    @property
    def id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def condition(self) -> str: ...
    @property
    def target_price(self) -> Decimal | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def triggered_at(self) -> datetime | None: ...
    @property
    def triggered_price(self) -> Decimal | None: ...
    @property
    def delivery_status(self) -> str | None: ...
    @property
    def delivery_error(self) -> str | None: ...
    @property
    def frequency(self) -> str: ...
    @property
    def cooldown_s(self) -> int | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def low(self) -> Decimal | None: ...
    @property
    def high(self) -> Decimal | None: ...
    @property
    def percent(self) -> Decimal | None: ...
    @property
    def window(self) -> str | None: ...
    @property
    def version(self) -> int: ...
    @property
    def firing_count(self) -> int: ...
    @property
    def last_fired_at(self) -> datetime | None: ...
    @property
    def paused_reason(self) -> str | None: ...
    @property
    def channel_ids(self) -> str | None: ...


class AlertOut(BaseModel):
    """An alert as the API shows it."""

    id: str = Field(description="Alert id (UUID).", examples=[EXAMPLE_ID])
    symbol: str = Field(examples=["BTCUSDT"])
    condition: Condition = Field(examples=["above"])
    target_price: Price | None = Field(
        description="Decimal string without trailing zeros (above, below, cross; null for the other conditions).",
        examples=["100000.5"],
    )
    name: str | None = Field(examples=["BTC six figures"])
    status: AlertStatus = Field(examples=["active"])
    created_at: datetime = Field(examples=["2025-01-01T12:00:00Z"])
    expires_at: datetime | None = Field(examples=["2030-01-01T00:00:00Z"])
    triggered_at: datetime | None = Field(
        description="When the evaluator fired the alert.", examples=["2025-01-02T08:30:00.123000Z"]
    )
    triggered_price: Price | None = Field(
        description="The trade price that fired it (decimal string).", examples=["100000.51"]
    )
    delivery_status: DeliveryStatus | None = Field(
        description="The email's state: null until triggered.", examples=["sent"]
    )
    delivery_error: str | None = Field(
        description="Why the email failed, when it did.", examples=["550 mailbox unavailable"]
    )
    frequency: Frequency = Field(description="once or every_time.", examples=["every_time"])
    cooldown_s: int | None = Field(
        description="every_time: the least seconds between two firings (null for once).", examples=[DEFAULT_COOLDOWN_S]
    )
    message: str | None = Field(
        description="Your words for the mail, with placeholders.", examples=["{{symbol}} is at {{price}}"]
    )
    low: Price | None = Field(description="Range conditions: the lower bound (decimal string).", examples=["60000"])
    high: Price | None = Field(description="Range conditions: the upper bound (decimal string).", examples=["70000"])
    percent: Price | None = Field(
        description="Percent conditions: the move in percent (decimal string).", examples=["5"]
    )
    window: str | None = Field(description="Percent conditions: the window of the move.", examples=["1h"])
    version: int = Field(description="The definition's version: 1, then one more per change.", examples=[2])
    firing_count: int = Field(description="How many times the alert fired.", examples=[3])
    last_fired_at: datetime | None = Field(
        description="When it fired last (the evaluator's time).", examples=["2025-01-02T08:30:00.123000Z"]
    )
    paused_reason: str | None = Field(
        description="Why the alert was paused, when it was not by you.",
        examples=["fired 60 times within an hour; resume it to go on"],
    )
    channels: list[str] = Field(
        description="The channels it notifies: channel ids, `email` for your account's address (the default).",
        examples=[["email", "9b1d7c3e-2f4a-4e8b-a6d5-0c1e2f3a4b5c"]],
    )

    @classmethod
    def of(cls, alert: AlertView) -> AlertOut:
        """The API view of an alert row."""
        return cls(
            id=alert.id,
            symbol=alert.symbol,
            condition=Condition(alert.condition),
            target_price=alert.target_price,
            name=alert.name,
            status=AlertStatus(alert.status),
            created_at=alert.created_at,
            expires_at=alert.expires_at,
            triggered_at=alert.triggered_at,
            triggered_price=alert.triggered_price,
            delivery_status=None if alert.delivery_status is None else DeliveryStatus(alert.delivery_status),
            delivery_error=alert.delivery_error,
            frequency=Frequency(alert.frequency),
            cooldown_s=alert.cooldown_s,
            message=alert.message,
            low=alert.low,
            high=alert.high,
            percent=alert.percent,
            window=alert.window,
            version=alert.version,
            firing_count=alert.firing_count,
            last_fired_at=alert.last_fired_at,
            paused_reason=alert.paused_reason,
            channels=parse_channel_ids(alert.channel_ids),
        )


class AlertPage(BaseModel):
    """One page of alerts, newest first."""

    items: list[AlertOut] = Field(description="The alerts on this page.")
    total: int = Field(description="How many alerts match the filters.", examples=[42])
    page: int = Field(examples=[1])
    page_size: int = Field(examples=[20])
    next: str | None = Field(
        description="Relative URL of the next page, or null.", examples=["/alerts?page=2&page_size=20"]
    )
    previous: str | None = Field(description="Relative URL of the previous page, or null.", examples=[None])


class FiringOut(BaseModel):
    """One firing of an alert."""

    id: str = Field(
        description="The firing's id (its trigger id: the alert id, or `<alert id>:<n>` for every_time).",
        examples=[f"{EXAMPLE_ID}:3"],
    )
    firing: int | None = Field(description="The alert's n-th firing.", examples=[3])
    fired_at: datetime = Field(description="When the evaluator fired it.", examples=["2025-01-02T08:30:00.123000Z"])
    price: Price | None = Field(description="The trade price that fired it (decimal string).", examples=["100000.51"])
    trade_id: int | None = Field(
        description="The exchange's id of that trade (null for firings from before the history).", examples=[4207]
    )
    exchange_time: datetime | None = Field(
        description="The trade's time on the exchange.", examples=["2025-01-02T08:30:00.100000Z"]
    )
    version: int | None = Field(description="The alert's version it fired on.", examples=[2])
    paused: bool = Field(description="This firing reached the hourly limit and paused the alert.", examples=[False])
    delivery_status: DeliveryStatus | None = Field(
        description="Its delivery: sent when every channel delivered, failed when one gave up and none is pending, "
        "else pending.",
        examples=["sent"],
    )
    delivery_error: str | None = Field(
        description="Which channels failed and why (the account's email alone: its error).",
        examples=["550 mailbox unavailable"],
    )
    channels: list[ChannelDeliveryOut] = Field(
        default_factory=list,
        description="Each channel's delivery (the attempts: GET /alerts/{id}/firings/{firing_id}/deliveries).",
    )


class FiringPage(BaseModel):
    """One page of an alert's firings, newest first."""

    items: list[FiringOut] = Field(description="The firings on this page.")
    total: int = Field(description="How many times the alert fired.", examples=[42])
    page: int = Field(examples=[1])
    page_size: int = Field(examples=[20])
    next: str | None = Field(
        description="Relative URL of the next page, or null.",
        examples=[f"/alerts/{EXAMPLE_ID}/firings?page=2&page_size=20"],
    )
    previous: str | None = Field(description="Relative URL of the previous page, or null.", examples=[None])


class ErrorDetail(BaseModel):
    """The inside of every error answer."""

    code: str = Field(examples=["unknown_symbol"])
    message: str = Field(examples=["Unknown symbol 'BTCUSD'."])
    details: Any = Field(default=None, examples=[{"symbol": "BTCUSD", "close_matches": ["BTCUSDT"]}])


class ErrorBody(BaseModel):
    """The stable error shape."""

    error: ErrorDetail
