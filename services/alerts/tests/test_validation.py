"""Hostile and edge-case inputs: every one is a clean 4xx in the stable error shape, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, publish_catalog

BAD_PRICES: list[Any] = [
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "0",
    "0.0",
    "-0",
    "-1",
    "-0.01",
    "1e400",
    "1E+30",
    "99999999999999999999999",
    "1" * 100,
    "",
    " ",
    "abc",
    "0x10",
    "1,000",
    "1_000",
    "١٢٣",
    "0.0000000000000000000001",
    True,
    False,
    None,
    [],
    {},
    [1],
    -5,
    0,
    1e300,
    10**30,
    "0.001",  # below BTCUSDT's min_price
    "1000000.01",  # above BTCUSDT's max_price
]


# One app per test and a loop over the inputs: the lifespan (migrations) dominates the cost of a case.
@pytest.mark.usefixtures("catalog")
async def test_hostile_prices_are_rejected(client: httpx.AsyncClient, tokens: Tokens) -> None:
    wrong = {}
    for price in BAD_PRICES:
        response = await client.post(
            "/alerts", json={"symbol": "BTCUSDT", "target_price": price}, headers=tokens.headers("u1")
        )
        if response.status_code != 422 or set(response.json()["error"]) != {"code", "message", "details"}:
            wrong[repr(price)] = response.text
    assert wrong == {}
    assert (await client.get("/alerts", headers=tokens.headers("u1"))).json()["total"] == 0


HOSTILE_BODIES = [
    '{"symbol": "BTCUSDT", "target_price": NaN}',
    '{"symbol": "BTCUSDT", "target_price": Infinity}',
    '{"symbol": "BTCUSDT", "target_price": -Infinity}',
    '{"symbol": "BTCUSDT", "target_price": 1e999}',
    '{"symbol": "BTCUSDT", "target_price": 1e999999999}',  # read as a Decimal
    '{"symbol": "BTCUSDT", "target_price": 1.' + "5" * 5000 + "}",
    '{"symbol": "BTCUSDT", "target_price": ' + "9" * 5000 + "}",
    '{"symbol": "BTCUSDT", "target_price": "1"',
    "[]",
    "null",
    "",
    "\xff",
]


@pytest.mark.usefixtures("catalog")
async def test_hostile_bodies_are_rejected(client: httpx.AsyncClient, tokens: Tokens) -> None:
    wrong = {}
    for raw in HOSTILE_BODIES:
        response = await client.post(
            "/alerts",
            content=raw.encode("utf-8", "surrogateescape"),
            headers={**tokens.headers("u1"), "content-type": "application/json"},
        )
        # FastAPI answers 400 for a body its JSON parser refuses, 422 for valid JSON that breaks the schema.
        if response.status_code not in {400, 422} or set(response.json()["error"]) != {"code", "message", "details"}:
            wrong[raw[:60]] = response.text
    assert wrong == {}


VALID_PRICES: list[tuple[Any, str]] = [
    ("0.01", "0.01"),
    ("1000000", "1000000"),
    (65000.5, "65000.5"),
    ("1E+5", "100000"),
    (" 42.10 ", "42.1"),
    (7, "7"),
    ("+3", "3"),
    ("12.500000000000000000000", "12.5"),
]


@pytest.mark.usefixtures("catalog")
async def test_valid_prices_within_the_filter(client: httpx.AsyncClient, tokens: Tokens) -> None:
    shown = {}
    for price, _ in VALID_PRICES:
        response = await client.post(
            "/alerts", json={"symbol": "BTCUSDT", "target_price": price}, headers=tokens.headers("u1")
        )
        shown[repr(price)] = response.json().get("target_price", response.text)
    assert shown == {repr(price): text for price, text in VALID_PRICES}


@pytest.mark.usefixtures("catalog")
async def test_price_need_not_be_a_multiple_of_the_tick(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/alerts", json={"symbol": "SHIBUSDT", "target_price": "0.000012345"}, headers=tokens.headers("u1")
    )
    assert response.status_code == 201, response.text


@pytest.mark.usefixtures("catalog")
async def test_price_out_of_range_names_the_filter(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/alerts", json={"symbol": "SHIBUSDT", "target_price": "2"}, headers=tokens.headers("u1")
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "price_out_of_range"
    assert error["details"] == {"symbol": "SHIBUSDT", "min_price": "0.00000001", "max_price": "1"}


FULLWIDTH_BTCUSDT = "\uff22\uff34\uff23\uff35\uff33\uff24\uff34"
BAD_SYMBOLS: list[Any] = [
    "",
    " ",
    "BTC USDT",
    "btc-usdt",
    "X" * 41,
    "X" * 40,
    FULLWIDTH_BTCUSDT,
    "BTCUSDT\x00",
    "'; DROP TABLE alerts; --",
    "../../etc/passwd",
    None,
    123,
    ["BTCUSDT"],
    {"a": 1},
]


@pytest.mark.usefixtures("catalog")
async def test_hostile_symbols_are_rejected(client: httpx.AsyncClient, tokens: Tokens) -> None:
    wrong = {}
    for symbol in BAD_SYMBOLS:
        response = await client.post(
            "/alerts", json={"symbol": symbol, "target_price": "1"}, headers=tokens.headers("u1")
        )
        if response.status_code != 422 or response.json()["error"]["code"] not in {
            "validation_error",
            "unknown_symbol",
        }:
            wrong[repr(symbol)] = response.text
    assert wrong == {}


@pytest.mark.usefixtures("catalog")
async def test_unknown_symbol_offers_close_matches(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/alerts", json={"symbol": "ethusdc", "target_price": "1"}, headers=tokens.headers("u1")
    )
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "unknown_symbol"
    assert error["details"]["close_matches"][0] == "ETHUSDT"


async def test_no_catalog_yet_is_503(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=tokens.headers("u1")
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "catalog_unavailable"


async def test_catalog_published_later_is_picked_up(client: httpx.AsyncClient, tokens: Tokens, redis: Any) -> None:
    assert (
        await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=tokens.headers("u1"))
    ).status_code == 503
    await publish_catalog(redis)
    response = await client.post(
        "/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=tokens.headers("u1")
    )
    assert response.status_code == 201, response.text


@pytest.mark.usefixtures("catalog")
async def test_bad_expiry_is_rejected(client: httpx.AsyncClient, tokens: Tokens) -> None:
    wrong = {}
    for expires_at in [
        (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "2001-01-01T00:00:00Z",
        "yesterday",
        "",
        12.5,
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        [],
    ]:
        response = await client.post(
            "/alerts",
            json={"symbol": "BTCUSDT", "target_price": "1", "expires_at": expires_at},
            headers=tokens.headers("u1"),
        )
        if response.status_code != 422:
            wrong[repr(expires_at)] = response.text
    assert wrong == {}


@pytest.mark.usefixtures("catalog")
async def test_naive_expiry_is_read_as_utc(client: httpx.AsyncClient, tokens: Tokens) -> None:
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    response = await client.post(
        "/alerts",
        json={"symbol": "BTCUSDT", "target_price": "1", "expires_at": naive.isoformat()},
        headers=tokens.headers("u1"),
    )
    assert response.status_code == 201, response.text
    shown = datetime.fromisoformat(response.json()["expires_at"].replace("Z", "+00:00"))
    assert shown == naive.replace(tzinfo=UTC)


@pytest.mark.usefixtures("catalog")
async def test_unknown_fields_and_long_names_are_rejected(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    extra = await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1", "owner": "x"}, headers=headers)
    assert extra.status_code == 422
    long_name = await client.post(
        "/alerts", json={"symbol": "BTCUSDT", "target_price": "1", "name": "n" * 201}, headers=headers
    )
    assert long_name.status_code == 422
    bad_condition = await client.post(
        "/alerts", json={"symbol": "BTCUSDT", "target_price": "1", "condition": "sideways"}, headers=headers
    )
    assert bad_condition.status_code == 422


async def test_malformed_ids_and_paths(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    for path in ("/alerts/not-a-uuid", "/alerts/%00", "/alerts/" + "a" * 5000):
        response = await client.get(path, headers=headers)
        assert response.status_code in {404, 422}, (path, response.text)
        assert "error" in response.json()
