"""Listing: newest first, filters, pagination edges and links."""

from __future__ import annotations

import httpx
import pytest
from alerts_testkit import Tokens

pytestmark = pytest.mark.usefixtures("catalog")


async def make_alerts(client: httpx.AsyncClient, tokens: Tokens, symbols: list[str], user: str = "u1") -> list[str]:
    ids = []
    for symbol in symbols:
        response = await client.post(
            "/alerts", json={"symbol": symbol, "target_price": "1"}, headers=tokens.headers(user)
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_pages_are_newest_first_with_links(client: httpx.AsyncClient, tokens: Tokens) -> None:
    ids = await make_alerts(client, tokens, ["BTCUSDT"] * 5)
    headers = tokens.headers("u1")
    first = (await client.get("/alerts", params={"page_size": 2}, headers=headers)).json()
    assert [a["id"] for a in first["items"]] == ids[::-1][:2]
    assert (first["total"], first["page"], first["page_size"]) == (5, 1, 2)
    assert first["next"] == "/alerts?page=2&page_size=2" and first["previous"] is None
    second = (await client.get(first["next"], headers=headers)).json()
    assert [a["id"] for a in second["items"]] == ids[::-1][2:4]
    assert second["previous"] == "/alerts?page=1&page_size=2"
    last = (await client.get(second["next"], headers=headers)).json()
    assert [a["id"] for a in last["items"]] == [ids[0]]
    assert last["next"] is None and last["previous"] == "/alerts?page=2&page_size=2"


async def test_page_past_the_end_is_empty(client: httpx.AsyncClient, tokens: Tokens) -> None:
    await make_alerts(client, tokens, ["BTCUSDT"] * 3)
    page = (await client.get("/alerts", params={"page": 7, "page_size": 2}, headers=tokens.headers("u1"))).json()
    assert page["items"] == [] and page["total"] == 3 and page["next"] is None
    assert page["previous"] == "/alerts?page=2&page_size=2"
    empty = (await client.get("/alerts", headers=tokens.headers("nobody"))).json()
    assert empty == {"items": [], "total": 0, "page": 1, "page_size": 20, "next": None, "previous": None}


async def test_page_parameters_are_bounded(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    for params in (
        {"page": 0},
        {"page": -1},
        {"page": "x"},
        {"page": 10**20},
        {"page_size": 0},
        {"page_size": 101},
        {"status": "gone"},
        {"symbol": ""},
        {"symbol": "X" * 41},
    ):
        response = await client.get("/alerts", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    full = await client.get("/alerts", params={"page_size": 100, "page": 1_000_000}, headers=headers)
    assert full.status_code == 200 and full.json()["items"] == []


async def test_filters_by_status_and_symbol(client: httpx.AsyncClient, tokens: Tokens) -> None:
    btc1, eth, btc2 = await make_alerts(client, tokens, ["BTCUSDT", "ETHUSDT", "BTCUSDT"])
    await make_alerts(client, tokens, ["BTCUSDT"], user="u2")
    headers = tokens.headers("u1")
    await client.delete(f"/alerts/{btc1}", headers=headers)

    async def ids(**params: str) -> list[str]:
        response = await client.get("/alerts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    assert await ids(symbol="btcusdt") == [btc2, btc1]
    assert await ids(status="active") == [btc2, eth]
    assert await ids(status="active", symbol="BTCUSDT") == [btc2]
    assert await ids(status="deleted") == [btc1]
    assert await ids(status="triggered") == []
    assert await ids(symbol="DOGEUSDT") == []
    linked = (
        await client.get("/alerts", params={"status": "active", "symbol": "BTCUSDT", "page_size": 1}, headers=headers)
    ).json()
    assert linked["next"] is None and linked["total"] == 1
    two = (await client.get("/alerts", params={"status": "active", "page_size": 1}, headers=headers)).json()
    assert two["next"] == "/alerts?page=2&page_size=1&status=active"
