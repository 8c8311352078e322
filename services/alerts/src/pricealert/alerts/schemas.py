"""Request and response models of the alerts API (every field carries an example)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from pricealert.alerts.models import AlertStatus
from pricealert.common.events import MAX_PRICE_FRACTION_DIGITS, MAX_PRICE_INTEGER_DIGITS, Condition, DeliveryStatus

MAX_INTEGER_DIGITS = MAX_PRICE_INTEGER_DIGITS
MAX_FRACTION_DIGITS = MAX_PRICE_FRACTION_DIGITS
MAX_PRICE_TEXT = 64
# Plain ASCII decimals only: Decimal() alone also takes "1_000", "NaN" and non-ASCII digits.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
EXAMPLE_ID = "3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a"


def _as_text(value: Any) -> str:
    """The decimal text of a JSON string or number; refuses booleans, non-finite floats and other types."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal string or a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):  # str, not format "f": 1E+999999999 must not become a billion digits
        return str(value) if value.is_finite() else "NaN"
    if not isinstance(value, str):
        raise ValueError("must be a decimal string or a number")
    return value


def _to_decimal(value: Any) -> Decimal:
    """Accept a decimal string or a JSON number; refuse everything else before Decimal sees it."""
    value = _as_text(value)
    text = value.strip()
    if not text or len(text) > MAX_PRICE_TEXT:
        raise ValueError(f"must be a decimal of at most {MAX_PRICE_TEXT} characters")
    if not _DECIMAL_TEXT.fullmatch(text):
        raise ValueError('must be a decimal number such as "65000.50"')
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number <= 0:
        raise ValueError("must be greater than zero")
    normal = number.normalize()
    _, digits, exponent = normal.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if len(digits) + exponent > MAX_INTEGER_DIGITS:
        raise ValueError("is absurdly large")
    if exponent < -MAX_FRACTION_DIGITS:
        raise ValueError(f"has more than {MAX_FRACTION_DIGITS} decimal places")
    own_exponent = number.as_tuple().exponent
    assert isinstance(own_exponent, int)
    # Keep the digits the client wrote ("65000.50"), unless trailing zeros push past the scale limit.
    return normal if own_exponent < -MAX_FRACTION_DIGITS else number


Price = Annotated[Decimal, BeforeValidator(_to_decimal)]


def load_json(body: bytes | str) -> Any:
    """A request body's JSON, its fractional numbers as Decimal: a float would turn 65000.00000000000001 into 65000."""
    return json.loads(body, parse_float=Decimal)


class AlertCreate(BaseModel):
    """A new alert."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTCUSDT",
                    "target_price": "100000",
                    "condition": "above",
                    "name": "BTC six figures",
                    "expires_at": "2030-01-01T00:00:00Z",
                },
            ]
        },
    )

    symbol: str = Field(
        min_length=1, max_length=40, description="A TRADING symbol, case-insensitive.", examples=["BTCUSDT"]
    )
    target_price: Price = Field(
        description="Positive decimal within the symbol's price filter.", examples=["100000.50"]
    )
    condition: Condition = Field(
        default=Condition.CROSS, description="above, below, or cross (default).", examples=["above"]
    )
    name: str | None = Field(default=None, max_length=200, description="Optional label.", examples=["BTC six figures"])
    expires_at: datetime | None = Field(
        default=None,
        description="When the alert stops; must be in the future. A time without an offset is read as UTC.",
        examples=["2030-01-01T00:00:00Z"],
    )

    @field_validator("name")
    @classmethod
    def _blank_name_is_none(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        return value or None

    @field_validator("expires_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("is out of range") from exc


class AlertView(Protocol):
    """What the API shows of an alert: an ORM row or a row read straight from the driver."""

    @property
    def id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def condition(self) -> str: ...
    @property
    def target_price(self) -> Decimal: ...
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


class AlertOut(BaseModel):
    """An alert as the API shows it."""

    id: str = Field(description="Alert id (UUID).", examples=[EXAMPLE_ID])
    symbol: str = Field(examples=["BTCUSDT"])
    condition: Condition = Field(examples=["above"])
    target_price: str = Field(description="Decimal string.", examples=["100000.50"])
    name: str | None = Field(examples=["BTC six figures"])
    status: AlertStatus = Field(examples=["active"])
    created_at: datetime = Field(examples=["2025-01-01T12:00:00Z"])
    expires_at: datetime | None = Field(examples=["2030-01-01T00:00:00Z"])
    triggered_at: datetime | None = Field(
        description="When the evaluator fired the alert.", examples=["2025-01-02T08:30:00.123000Z"]
    )
    triggered_price: str | None = Field(
        description="The trade price that fired it (decimal string).", examples=["100000.51"]
    )
    delivery_status: DeliveryStatus | None = Field(
        description="The email's state: null until triggered.", examples=["sent"]
    )
    delivery_error: str | None = Field(
        description="Why the email failed, when it did.", examples=["550 mailbox unavailable"]
    )

    @classmethod
    def of(cls, alert: AlertView) -> AlertOut:
        """The API view of an alert row."""
        return cls(
            id=alert.id,
            symbol=alert.symbol,
            condition=Condition(alert.condition),
            target_price=format(alert.target_price, "f"),
            name=alert.name,
            status=AlertStatus(alert.status),
            created_at=alert.created_at,
            expires_at=alert.expires_at,
            triggered_at=alert.triggered_at,
            triggered_price=None if alert.triggered_price is None else format(alert.triggered_price, "f"),
            delivery_status=None if alert.delivery_status is None else DeliveryStatus(alert.delivery_status),
            delivery_error=alert.delivery_error,
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


class ErrorDetail(BaseModel):
    """The inside of every error answer."""

    code: str = Field(examples=["unknown_symbol"])
    message: str = Field(examples=["Unknown symbol 'BTCUSD'."])
    details: Any = Field(default=None, examples=[{"symbol": "BTCUSD", "close_matches": ["BTCUSDT"]}])


class ErrorBody(BaseModel):
    """The stable error shape."""

    error: ErrorDetail
