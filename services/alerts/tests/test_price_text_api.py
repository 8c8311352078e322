"""Every price and percent the alerts API shows is in the canonical form (prices.format_price): no trailing zeros,
no exponent, whatever the client or the exchange wrote; requests still take strings and JSON numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens
from fastapi import FastAPI

from pricealert.alerts import rules
from pricealert.alerts.service import AlertService
from pricealert.common.errors import InvalidInput
from pricealert.common.events import CatalogSymbol, Condition, Trigger, now_ms, trigger_id_for

pytestmark = pytest.mark.usefixtures("catalog")


async def create(client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any] | str) -> dict[str, Any]:
    headers = {**tokens.headers("u1"), "content-type": "application/json"}
    content = body if isinstance(body, str) else None
    response = await client.post("/alerts", json=None if content else body, content=content, headers=headers)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def shown(client: httpx.AsyncClient, tokens: Tokens, alert_id: str) -> list[dict[str, Any]]:
    """The alert as GET /alerts/{id} and as the listing show it."""
    one = await client.get(f"/alerts/{alert_id}", headers=tokens.headers("u1"))
    page = await client.get("/alerts", params={"page_size": 100}, headers=tokens.headers("u1"))
    assert one.status_code == page.status_code == 200
    [listed] = [a for a in page.json()["items"] if a["id"] == alert_id]
    return [one.json(), listed]


def fired(alert: dict[str, Any], price: str) -> Trigger:
    """The alert's first firing, on a trade the exchange wrote as `price`."""
    at = now_ms()
    return Trigger(
        trigger_id=trigger_id_for(alert["id"], 1, alert["frequency"]),
        alert_id=alert["id"],
        user_id="u1",
        email="u1@example.com",
        symbol=alert["symbol"],
        condition=Condition(alert["condition"]),
        version=alert["version"],
        target_price=alert["target_price"],
        price=Decimal(price),
        trade_id=7,
        exchange_time=at - 5,
        tick_received_at=at - 3,
        fired_at=at,
    )


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"symbol": "BTCUSDT", "target_price": "100000.50"}, "100000.5"),
        ({"symbol": "BTCUSDT", "target_price": "1E+5"}, "100000"),
        ('{"symbol": "BTCUSDT", "target_price": 1E+5}', "100000"),
        ('{"symbol": "BTCUSDT", "target_price": 100000.000}', "100000"),
        ({"symbol": "SHIBUSDT", "target_price": "0.00001234000"}, "0.00001234"),
        ('{"symbol": "SHIBUSDT", "target_price": 1.234e-5}', "0.00001234"),
    ],
)
async def test_a_target_is_shown_canonical(
    client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any] | str, target: str
) -> None:
    created = await create(client, tokens, body)
    assert created["target_price"] == target
    assert [a["target_price"] for a in await shown(client, tokens, created["id"])] == [target, target]


async def test_range_bounds_and_percent_are_shown_canonical(client: httpx.AsyncClient, tokens: Tokens) -> None:
    ranged = await create(
        client, tokens, {"symbol": "BTCUSDT", "condition": "exit_range", "low": "60000.00", "high": "7E+4"}
    )
    moved = await create(
        client, tokens, {"symbol": "ETHUSDT", "condition": "pct_move", "percent": "2.50", "window": "1h"}
    )
    for view in [ranged, *await shown(client, tokens, ranged["id"])]:
        assert (view["low"], view["high"], view["target_price"]) == ("60000", "70000", None)
    for view in [moved, *await shown(client, tokens, moved["id"])]:
        assert view["percent"] == "2.5"
    patched = await client.patch(f"/alerts/{ranged['id']}", json={"high": 75000.10}, headers=tokens.headers("u1"))
    assert patched.status_code == 200 and patched.json()["high"] == "75000.1"


async def test_the_trade_that_fired_it_is_shown_canonical(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    service: AlertService = app.state.alerts.service
    alert = await create(client, tokens, {"symbol": "BTCUSDT", "target_price": "64800", "condition": "above"})
    tiny = await create(client, tokens, {"symbol": "SHIBUSDT", "target_price": "0.00001", "condition": "above"})
    await service.record_triggers([fired(alert, "64818.28000000"), fired(tiny, "0.00001234")])
    for alert_id, price in ((alert["id"], "64818.28"), (tiny["id"], "0.00001234")):
        assert [a["triggered_price"] for a in await shown(client, tokens, alert_id)] == [price, price]
        firings = await client.get(f"/alerts/{alert_id}/firings", headers=tokens.headers("u1"))
        assert [f["price"] for f in firings.json()["items"]] == [price]


def test_a_price_filter_in_an_error_is_canonical() -> None:
    entry = CatalogSymbol(
        symbol="BTCUSDT",
        min_price=Decimal("0.01000000"),
        max_price=Decimal("1000000.00000000"),
        tick_size=Decimal("0.01000000"),
    )
    with pytest.raises(InvalidInput) as refused:
        rules.check_prices(rules.Spec(Condition.ABOVE, target_price=Decimal("2E+6")), entry)
    assert refused.value.details == {"symbol": "BTCUSDT", "min_price": "0.01", "max_price": "1000000"}
    with pytest.raises(InvalidInput) as inverted:
        rules.check_values(rules.Spec(Condition.EXIT_RANGE, low=Decimal("7.0E+4"), high=Decimal("60000.00")))
    assert inverted.value.details == {"low": "70000", "high": "60000"}


async def test_the_openapi_document_still_says_string(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    fields = [("AlertOut", f) for f in ("target_price", "triggered_price", "low", "high", "percent")]
    for model, field in [*fields, ("FiringOut", "price")]:
        assert schemas[model]["properties"][field]["anyOf"] == [{"type": "string"}, {"type": "null"}], (model, field)
    assert {"type": "number"} in schemas["AlertCreate"]["properties"]["target_price"]["anyOf"]
