"""The JSON bodies of webhook deliveries (docs/webhooks.md): a firing (`alert.fired`) and a test (`channel.test`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pricealert.common.channels import ChannelTestRequest
from pricealert.common.events import Trigger
from pricealert.notifier.alerttext import iso_utc, move_text, plain

FIRED = "alert.fired"
TEST = "channel.test"


def _decimal(value: Decimal | None) -> str | None:
    # Strings, not JSON numbers: a receiver's float parser would round prices. As the mail writes them
    # (prices.format_price: no exponent, no trailing zeros, "100012.5").
    return None if value is None else plain(value)


def firing_payload(trigger: Trigger, message: str | None) -> dict[str, Any]:
    """The body of a firing's delivery; `message` is the alert's message as rendered for this firing (or None)."""
    return {
        "type": FIRED,
        "firing_id": trigger.trigger_id,
        "alert_id": trigger.alert_id,
        "firing": trigger.firing,
        "symbol": trigger.symbol,
        "condition": trigger.condition.value,
        "target_price": _decimal(trigger.target_price),
        "low": _decimal(trigger.low),
        "high": _decimal(trigger.high),
        "percent": _decimal(trigger.percent),
        "window": trigger.window,
        "price": _decimal(trigger.price),
        "trade_id": trigger.trade_id,
        "exchange_time": iso_utc(trigger.exchange_time),
        "fired_at": iso_utc(trigger.fired_at),
        "name": trigger.name,
        "message": message,
        "change_pct": move_text(trigger),
    }


def test_message_id(request: ChannelTestRequest) -> str:
    """The webhook-id of a test delivery (never a firing's id, so a receiver's dedupe keeps them apart)."""
    return f"test_{request.request_id}"


def test_payload(request: ChannelTestRequest) -> dict[str, Any]:
    """The body of a test delivery (POST /channels/{id}/test)."""
    requested_at = request.requested_at
    if requested_at.tzinfo is None:
        requested_at = requested_at.replace(tzinfo=UTC)
    return {
        "type": TEST,
        "request_id": request.request_id,
        "channel_id": request.channel_id,
        "requested_at": iso_utc(int(requested_at.timestamp() * 1000)),
        "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": "A test delivery from pricealert: this endpoint receives your alerts.",
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (compact UTF-8 JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# Not tests, whatever pytest makes of their names in a test module that imports them.
test_message_id.__test__ = False  # type: ignore[attr-defined]  # a function attribute pytest reads
test_payload.__test__ = False  # type: ignore[attr-defined]  # a function attribute pytest reads
