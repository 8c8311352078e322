"""Prices as people see them, the current-price cache ingest keeps for the API, and the exchange link's state.

One canonical form for a price anywhere a person reads it (API, page, mail, webhook, feed): the symbol's precision
without trailing zeros (`64818.28`, never `64818.28000000`). Stream fields keep the exchange's own text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated

from pydantic import PlainSerializer

CURRENT_PRICE_MAX_AGE_S = 10.0  # an older cached price is not shown as current (GET /symbols)
EXCHANGE_LINK_TTL_S = 60  # the link's state expires when no ingest replica has checked it for this long


def format_price(value: Decimal) -> str:
    """The canonical text of a price: plain digits, no exponent, no trailing zeros (`100`, `0.00001`, `64818.28`)."""
    if not value.is_finite():
        raise ValueError(f"not a finite price: {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


# A Decimal field that serializes (JSON and Python) in the canonical form; validation is unchanged.
Price = Annotated[Decimal, PlainSerializer(format_price, return_type=str)]


@dataclass(frozen=True)
class PriceQuote:
    """A symbol's latest known price and when it held (epoch ms), as kept in names.PRICES."""

    price: Decimal
    at_ms: int

    def pack(self) -> str:
        """The hash value: `<price> <epoch ms>`, readable in redis-cli."""
        return f"{format_price(self.price)} {self.at_ms}"

    @classmethod
    def unpack(cls, value: str | bytes) -> PriceQuote | None:
        """The quote of a hash value, or None when it is not one (a value from elsewhere never raises)."""
        text = value.decode() if isinstance(value, bytes) else value
        price, _, at = text.partition(" ")
        try:
            quote = cls(Decimal(price), int(at))
        except (InvalidOperation, ValueError):
            return None
        return quote if quote.price.is_finite() and quote.price > 0 else None

    def age_s(self, now_ms: int) -> float:
        """Seconds since the price held."""
        return max(0.0, (now_ms - self.at_ms) / 1000)


class LinkState(StrEnum):
    """Whether ingest reaches the exchange."""

    CONNECTED = "connected"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"  # no ingest replica has said (none running, or the state expired)


@dataclass(frozen=True)
class ExchangeLink:
    """The exchange link as the last ingest replica to check it saw it (hash names.EXCHANGE_LINK)."""

    state: LinkState
    url: str = ""
    error: str = ""
    since: datetime | None = None
    checked_at: datetime | None = None

    def to_fields(self) -> dict[str, str]:
        """The hash's fields (plain strings)."""
        return {
            "state": self.state.value,
            "url": self.url,
            "error": self.error,
            "since": self.since.isoformat() if self.since else "",
            "checked_at": self.checked_at.isoformat() if self.checked_at else "",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> ExchangeLink:
        """The link of the hash's fields; UNKNOWN when missing or unreadable."""
        try:
            return cls(
                state=LinkState(fields.get("state", "unknown")),
                url=fields.get("url", ""),
                error=fields.get("error", ""),
                since=_time(fields.get("since", "")),
                checked_at=_time(fields.get("checked_at", "")),
            )
        except ValueError:
            return cls(LinkState.UNKNOWN)

    def public(self) -> dict[str, str | None]:
        """What /readyz shows of it."""
        return {
            "state": self.state.value,
            "url": self.url or None,
            "error": self.error or None,
            "since": self.since.astimezone(UTC).isoformat() if self.since else None,
        }


def _time(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
