"""The cheap paths keep the behaviour: cached token verification, the plain ASGI middleware, one-call SQL."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
import pytest
from alerts_testkit import TokenRoot, Tokens
from redis.asyncio import Redis

from pricealert.common.errors import Unauthorized
from pricealert.common.tokens import KeyRing, TokenType, VerifiedTokens, verify

pytestmark = pytest.mark.usefixtures("catalog")


async def test_a_verified_token_is_cached_until_it_expires(
    tokens: Tokens,
    token_root: TokenRoot,
    redis: Redis,
) -> None:
    keys, cache = KeyRing(redis, token_root.public_key_file), VerifiedTokens()
    token = tokens.make("u1")
    claims = await verify(token, keys, TokenType.ACCESS, cache)
    assert await verify(token, keys, TokenType.ACCESS, cache) == claims
    assert cache.get(token, keys, TokenType.ACCESS) == claims
    # Once past its expiry the entry is dropped, and full verification answers (token_expired, here).
    cache.put(token, replace(claims, expires_at=int(time.time()) - 1), tokens.kid)
    assert cache.get(token, keys, TokenType.ACCESS) is None
    assert cache.get(token, keys, TokenType.ACCESS) is None


async def test_a_cached_access_token_is_still_no_refresh_token(
    tokens: Tokens,
    token_root: TokenRoot,
    redis: Redis,
) -> None:
    keys, cache = KeyRing(redis, token_root.public_key_file), VerifiedTokens()
    token = tokens.make("u1")
    await verify(token, keys, TokenType.ACCESS, cache)
    with pytest.raises(Unauthorized) as raised:
        await verify(token, keys, TokenType.REFRESH, cache)
    assert raised.value.code == "invalid_token"


async def test_a_cached_token_of_a_forgotten_key_is_verified_again(
    tokens: Tokens,
    token_root: TokenRoot,
    redis: Redis,
) -> None:
    keys, cache = KeyRing(redis, token_root.public_key_file), VerifiedTokens()
    token = tokens.make("u1")
    await verify(token, keys, TokenType.ACCESS, cache)
    keys._keys.clear()
    assert cache.get(token, keys, TokenType.ACCESS) is None


async def test_the_cache_is_bounded(
    tokens: Tokens,
    token_root: TokenRoot,
    redis: Redis,
) -> None:
    keys, cache = KeyRing(redis, token_root.public_key_file), VerifiedTokens(max_entries=2)
    first, second, third = (tokens.make(f"u{i}") for i in range(3))
    for token in (first, second, third):
        await verify(token, keys, TokenType.ACCESS, cache)
    assert cache.get(first, keys, TokenType.ACCESS) is None
    assert cache.get(third, keys, TokenType.ACCESS) is not None


async def test_request_ids_are_echoed_or_made(client: httpx.AsyncClient, tokens: Tokens) -> None:
    echoed = await client.get("/alerts", headers={**tokens.headers("u1"), "X-Request-ID": "abc-123"})
    assert echoed.status_code == 200
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/alerts", headers=tokens.headers("u1"))
    assert len(made.headers["x-request-id"]) == 32


async def test_oversized_bodies_are_refused_before_parsing(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/alerts",
        content=b"{" + b" " * 70_000 + b"}",
        headers={**tokens.headers("u1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_listing_pages_and_totals_past_the_end(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("pager")
    for price in ("1", "2", "3"):
        created = await client.post("/alerts", json={"symbol": "ETHUSDT", "target_price": price}, headers=headers)
        assert created.status_code == 201
    page = (await client.get("/alerts", params={"page": 2, "page_size": 2}, headers=headers)).json()
    assert [i["target_price"] for i in page["items"]] == ["1"] and page["total"] == 3
    beyond = (await client.get("/alerts", params={"page": 5, "page_size": 2}, headers=headers)).json()
    assert beyond["items"] == [] and beyond["total"] == 3
    none = (await client.get("/alerts", params={"symbol": "BTCUSDT"}, headers=headers)).json()
    assert none["items"] == [] and none["total"] == 0
