"""JSON bodies of alerts and pages, serialised in one pass (the routes and the fast path share them).

The bytes are exactly what `AlertOut` and `AlertPage` serialise to (the tests compare them); building
those models first would validate every field of every row again, the dearest part of a listing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from pydantic_core import to_json

from pricealert.alerts.views import AlertView
from pricealert.common.channels import parse_channel_ids
from pricealert.common.prices import format_price


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format_price(value)


def alert_fields(alert: AlertView) -> dict[str, Any]:
    """The alert as `AlertOut` shows it, before serialisation."""
    return {
        "id": alert.id,
        "symbol": alert.symbol,
        "condition": alert.condition,
        "target_price": _text(alert.target_price),
        "name": alert.name,
        "status": alert.status,
        "created_at": alert.created_at,
        "expires_at": alert.expires_at,
        "triggered_at": alert.triggered_at,
        "triggered_price": _text(alert.triggered_price),
        "delivery_status": alert.delivery_status,
        "delivery_error": alert.delivery_error,
        "frequency": alert.frequency,
        "cooldown_s": alert.cooldown_s,
        "message": alert.message,
        "low": _text(alert.low),
        "high": _text(alert.high),
        "percent": _text(alert.percent),
        "window": alert.window,
        "version": alert.version,
        "firing_count": alert.firing_count,
        "last_fired_at": alert.last_fired_at,
        "paused_reason": alert.paused_reason,
        "channels": parse_channel_ids(alert.channel_ids),
    }


def alert_json(alert: AlertView) -> bytes:
    """One alert as the API answers it."""
    return to_json(alert_fields(alert))


def page_json(
    items: Sequence[AlertView],
    *,
    total: int,
    page: int,
    page_size: int,
    path: str,
    status: str | None,
    symbol: str | None,
    condition: str | None = None,
) -> bytes:
    """One page of a listing, with links to its neighbours that keep the filters."""

    def link(to_page: int) -> str:
        query: dict[str, str | int] = {"page": to_page, "page_size": page_size}
        if status is not None:
            query["status"] = status
        if symbol is not None:
            query["symbol"] = symbol
        if condition is not None:
            query["condition"] = condition
        return f"{path}?{urlencode(query)}"

    last_page = max(1, -(-total // page_size))
    return to_json(
        {
            "items": [alert_fields(a) for a in items],
            "total": total,
            "page": page,
            "page_size": page_size,
            "next": link(page + 1) if page * page_size < total else None,
            "previous": link(min(page - 1, last_page)) if page > 1 else None,
        }
    )
