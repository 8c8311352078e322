"""An alert row as the asyncpg paths read it: the columns they select, and the row the API shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

# Columns of a listed alert, in AlertRow's field order ("window" is a reserved word in Postgres).
COLUMNS = (
    "id, symbol, condition, target_price, name, status, created_at, expires_at, triggered_at, "
    'triggered_price, delivery_status, delivery_error, frequency, cooldown_s, message, low, high, percent, "window", '
    "version, firing_count, last_fired_at, paused_reason, channel_ids"
)


def list_statement(where: str, count: str, arguments: int) -> str:
    """A page of alerts matching `where` with the total `count` in each row; LIMIT and OFFSET follow `arguments`."""
    return (
        f"SELECT {COLUMNS}, ({count}) AS total FROM alerts WHERE {where} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${arguments + 1} OFFSET ${arguments + 2}"
    )


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


# Not frozen: a frozen dataclass's __init__ costs several times more, and a page builds twenty of them.
@dataclass(slots=True)
class AlertRow:
    """The fields of an alert the API shows, read without the ORM."""

    id: str
    symbol: str
    condition: str
    target_price: Decimal | None
    name: str | None
    status: str
    created_at: datetime
    expires_at: datetime | None
    triggered_at: datetime | None
    triggered_price: Decimal | None
    delivery_status: str | None
    delivery_error: str | None
    frequency: str
    cooldown_s: int | None
    message: str | None
    low: Decimal | None
    high: Decimal | None
    percent: Decimal | None
    window: str | None
    version: int
    firing_count: int
    last_fired_at: datetime | None
    paused_reason: str | None
    channel_ids: str | None

    @classmethod
    def of(cls, record: Sequence[Any]) -> AlertRow:
        """The row from a record of `COLUMNS` (prices are stored as decimal text)."""
        (
            id_,
            symbol,
            condition,
            target,
            name,
            status,
            created,
            expires,
            triggered,
            triggered_price,
            delivery_status,
            delivery_error,
            frequency,
            cooldown_s,
            message,
            low,
            high,
            percent,
            window,
            version,
            firing_count,
            last_fired_at,
            paused_reason,
            channel_ids,
        ) = tuple(record)[:24]
        return cls(
            id_,
            symbol,
            condition,
            _decimal(target),
            name,
            status,
            created,
            expires,
            triggered,
            _decimal(triggered_price),
            delivery_status,
            delivery_error,
            frequency,
            cooldown_s,
            message,
            _decimal(low),
            _decimal(high),
            _decimal(percent),
            window,
            version,
            firing_count,
            last_fired_at,
            paused_reason,
            channel_ids,
        )
