"""Request models of the alerts API and the parsing of their decimals (every field carries an example)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from pricealert.common.alertmessage import PLACEHOLDERS
from pricealert.common.channels import ACCOUNT_EMAIL, MAX_CHANNELS_PER_ALERT
from pricealert.common.events import (
    DEFAULT_COOLDOWN_S,
    MAX_PRICE_FRACTION_DIGITS,
    MAX_PRICE_INTEGER_DIGITS,
    WINDOWS,
    Condition,
    Frequency,
)

MAX_INTEGER_DIGITS = MAX_PRICE_INTEGER_DIGITS
MAX_FRACTION_DIGITS = MAX_PRICE_FRACTION_DIGITS
MAX_PRICE_TEXT = 64
# Plain ASCII decimals only: Decimal() alone also takes "1_000", "NaN" and non-ASCII digits.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)


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


def _decimal(value: Any) -> Decimal:
    """A finite decimal from a decimal string or a JSON number; everything else is refused before Decimal sees it."""
    text = _as_text(value).strip()
    if not text or len(text) > MAX_PRICE_TEXT:
        raise ValueError(f"must be a decimal of at most {MAX_PRICE_TEXT} characters")
    if not _DECIMAL_TEXT.fullmatch(text):
        raise ValueError('must be a decimal number such as "65000.50"')
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def _to_percent(value: Any) -> Decimal:
    """A percent as the client wrote it (its range is the service's check, with its own error code)."""
    number = _decimal(value)
    exponent = number.normalize().as_tuple().exponent
    own_exponent = number.as_tuple().exponent
    assert isinstance(exponent, int) and isinstance(own_exponent, int)  # finite, checked above
    if exponent < -MAX_FRACTION_DIGITS:
        raise ValueError(f"has more than {MAX_FRACTION_DIGITS} decimal places")
    return number.normalize() if own_exponent < -MAX_FRACTION_DIGITS else number


def _to_decimal(value: Any) -> Decimal:
    """Accept a decimal string or a JSON number; refuse everything else before Decimal sees it."""
    number = _decimal(value)
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
Percent = Annotated[Decimal, BeforeValidator(_to_percent)]


def load_json(body: bytes | str) -> Any:
    """A request body's JSON, its fractional numbers as Decimal: a float would turn 65000.00000000000001 into 65000."""
    return json.loads(body, parse_float=Decimal)


_WINDOWS = ", ".join(WINDOWS)
_PLACEHOLDERS = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
NOT_PATCHABLE = ("condition", "symbol")


def _blank_is_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value if value.strip() else None


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc


class Definition(BaseModel):
    """The fields an alert's condition and frequency take: shared by a create and a PATCH."""

    model_config = ConfigDict(extra="forbid")

    target_price: Price | None = Field(
        default=None,
        description="above / below / cross: a positive decimal within the symbol's price filter.",
        examples=["100000.50"],
    )
    low: Price | None = Field(
        default=None,
        description="enter_range / exit_range: the range's lower bound (inside), a price like target_price.",
        examples=["60000"],
    )
    high: Price | None = Field(
        default=None,
        description="enter_range / exit_range: the range's upper bound (inside), above low.",
        examples=["70000"],
    )
    percent: Percent | None = Field(
        default=None,
        description="pct_up / pct_down / pct_move: the move in percent, 0.1 to 1000 (pct_down: below 100).",
        examples=["5"],
    )
    window: str | None = Field(
        default=None,
        description=f"pct_up / pct_down / pct_move: the window the move is measured in, one of {_WINDOWS}.",
        examples=["1h"],
    )
    cooldown_s: int | None = Field(
        default=None,
        description="every_time only: the least time between two firings, 1 s to 7 days "
        f"(default {DEFAULT_COOLDOWN_S}).",
        examples=[DEFAULT_COOLDOWN_S],
    )
    message: str | None = Field(
        default=None,
        description=f"Your own words for the mail, at most 1000 characters; placeholders: {_PLACEHOLDERS}.",
        examples=["{{symbol}} moved {{change_pct}} % in {{window}}: now {{price}}"],
    )
    name: str | None = Field(default=None, max_length=200, description="Optional label.", examples=["BTC six figures"])
    channels: list[str] | None = Field(
        default=None,
        description=f"The channels to notify (at most {MAX_CHANNELS_PER_ALERT}): ids of your channels (/channels), "
        f"`{ACCOUNT_EMAIL}` for your account's address; null: that address alone (the default).",
        examples=[[ACCOUNT_EMAIL, "9b1d7c3e-2f4a-4e8b-a6d5-0c1e2f3a4b5c"]],
    )
    expires_at: datetime | None = Field(
        default=None,
        description="When the alert stops; must be in the future. A time without an offset is read as UTC.",
        examples=["2030-01-01T00:00:00Z"],
    )

    @field_validator("name")
    @classmethod
    def _blank_name_is_none(cls, value: str | None) -> str | None:
        return None if value is None else (value.strip() or None)

    @field_validator("message")
    @classmethod
    def _blank_message_is_none(cls, value: str | None) -> str | None:
        return _blank_is_none(value)

    @field_validator("expires_at")
    @classmethod
    def _expires_at_utc(cls, value: datetime | None) -> datetime | None:
        return _aware_utc(value)


class AlertCreate(Definition):
    """A new alert: a condition with its fields (docs/conditions.md), how often it fires, optional words."""

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
                {
                    "symbol": "ETHUSDT",
                    "condition": "pct_move",
                    "percent": "5",
                    "window": "1h",
                    "frequency": "every_time",
                    "cooldown_s": 600,
                    "message": "{{symbol}} moved {{change_pct}} % within {{window}}",
                },
                {"symbol": "BTCUSDT", "condition": "exit_range", "low": "60000", "high": "70000"},
            ]
        },
    )

    symbol: str = Field(
        min_length=1, max_length=40, description="A TRADING symbol, case-insensitive.", examples=["BTCUSDT"]
    )
    condition: Condition = Field(
        default=Condition.CROSS,
        description="above, below, cross (default): target_price; pct_up, pct_down, pct_move: percent and window; "
        "enter_range, exit_range: low and high.",
        examples=["above"],
    )
    frequency: Frequency = Field(
        default=Frequency.ONCE,
        description="once (default): fires once, then it is triggered; every_time: fires at each crossing, "
        "at most once per cooldown_s.",
        examples=["once"],
    )


class AlertPatch(Definition):
    """A change to an alert: only the fields given change (null clears name, message and expires_at)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"target_price": "105000", "name": "BTC higher"},
                {"status": "paused"},
                {"frequency": "every_time", "cooldown_s": 3600},
            ]
        },
    )

    frequency: Frequency | None = Field(
        default=None, description="once or every_time (cooldown_s defaults to 300 then).", examples=["every_time"]
    )
    status: Literal["active", "paused"] | None = Field(
        default=None, description="paused takes the alert out of watch; active resumes it.", examples=["paused"]
    )
    # The fields a PATCH may not change, taken out of the body so that the service answers with its own code.
    not_patchable: SkipJsonSchema[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _set_aside_not_patchable(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kept = {key: value for key, value in data.items() if key not in NOT_PATCHABLE and key != "not_patchable"}
        return {**kept, "not_patchable": tuple(key for key in NOT_PATCHABLE if key in data)}

    def given(self) -> set[str]:
        """The fields the body named."""
        return self.model_fields_set - {"not_patchable"}
