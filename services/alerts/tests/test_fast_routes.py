"""POST and GET /alerts answer alike through the plain-ASGI fast path and through the FastAPI routes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from pricealert.alerts.api.fastpath import FastRoutes, ListQuery, _read_body, _replay, parse_query
from pricealert.alerts.models import AlertStatus
from pricealert.common.events import Condition

pytestmark = pytest.mark.usefixtures("catalog")

# The fast path takes exactly "application/json"; with a charset the same body goes to the FastAPI route.
FAST, SLOW = "application/json", "application/json; charset=utf-8"


async def post(client: httpx.AsyncClient, body: Any, content_type: str, headers: dict[str, str]) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return await client.post("/alerts", content=content, headers={**headers, "Content-Type": content_type})


def same_answer(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.content == slow.content
    for name in ("content-type", "content-length", "www-authenticate", "retry-after"):
        assert fast.headers.get(name) == slow.headers.get(name), name


async def test_the_fast_path_answers_without_the_routes(app: FastAPI, tokens: Tokens) -> None:
    async def fell_through(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"{scope['method']} {scope['path']} reached FastAPI")

    headers = tokens.headers("u1")
    transport = httpx.ASGITransport(app=FastRoutes(fell_through, api=app))
    async with httpx.AsyncClient(transport=transport, base_url="http://alerts") as client:
        created = await post(client, {"symbol": "btcusdt", "target_price": "100"}, FAST, headers)
        assert created.status_code == 201, created.text
        listed = await client.get("/alerts?page=1&page_size=5&status=active&symbol=BTCUSDT", headers=headers)
        assert listed.status_code == 200
        assert [a["id"] for a in listed.json()["items"]] == [created.json()["id"]]
        assert (await client.get("/alerts")).status_code == 401
        body = {"symbol": "BTCUSDT", "condition": "pct_up", "percent": "5", "window": "1h", "frequency": "every_time"}
        recurring = await post(client, body, FAST, headers)
        assert recurring.status_code == 201, recurring.text
        filtered = await client.get("/alerts?condition=pct_up&status=active", headers=headers)
        assert [a["id"] for a in filtered.json()["items"]] == [recurring.json()["id"]]


async def test_a_created_alert_reads_the_same(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    body = {
        "symbol": "ethbtc",
        "target_price": 0.05,
        "condition": "below",
        "name": "  half ",
        "expires_at": "2030-01-01T00:00:00",
    }
    fast, slow = await post(client, body, FAST, headers), await post(client, body, SLOW, headers)
    assert fast.status_code == slow.status_code == 201
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    fast_body, slow_body = fast.json(), slow.json()
    for varying in ("id", "created_at"):
        assert fast_body.pop(varying) != slow_body.pop(varying)
    assert fast_body == slow_body
    assert fast_body["name"] == "half" and fast_body["target_price"] == "0.05"


@pytest.mark.parametrize(
    ("body", "authorization"),
    [
        ('{"symbol": "BTCUSDT", ', "good"),
        ("[1, 2]", "good"),
        ("", "good"),
        ({"symbol": "BTCUSDT", "target_price": "1"}, None),
        ({"symbol": "BTCUSDT", "target_price": "1"}, "Bearer not.a.jwt"),
        ({"symbol": "BTCUSDT", "target_price": "1"}, "Basic dTE6cGFzcw=="),
        ({"symbol": "BTCUSDT", "target_price": "NaN"}, None),
        ({"symbol": "BTCUSDT", "target_price": "NaN"}, "good"),
        ({"symbol": "BTCUSDT", "target_price": "1", "owner": "u2"}, "good"),
        ({"symbol": "BTCUSD", "target_price": "1"}, "good"),
        ({"symbol": "SHIBUSDT", "target_price": "5"}, "good"),
        ({"symbol": "BTCUSDT", "target_price": "1", "expires_at": "2001-01-01T00:00:00Z"}, "good"),
    ],
)
async def test_refusals_read_the_same(
    client: httpx.AsyncClient, tokens: Tokens, body: Any, authorization: str | None
) -> None:
    headers = (
        {}
        if authorization is None
        else {"Authorization": f"Bearer {tokens.make('u1')}" if authorization == "good" else authorization}
    )
    fast, slow = await post(client, body, FAST, headers), await post(client, body, SLOW, headers)
    assert fast.status_code >= 400
    same_answer(fast, slow)


async def test_the_limit_reads_the_same(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    app.state.alerts.service.max_active_per_user = 1
    headers = tokens.headers("u1")
    body = {"symbol": "BTCUSDT", "target_price": "1"}
    assert (await post(client, body, FAST, headers)).status_code == 201
    fast, slow = await post(client, body, FAST, headers), await post(client, body, SLOW, headers)
    assert fast.status_code == 409
    same_answer(fast, slow)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "page=2&page_size=2",
        "page_size=3&page=2",
        "status=active",
        "status=deleted",
        "symbol=ethusdt",
        "symbol=BTCUSDT&status=active&page=1&page_size=1",
        "page=9&page_size=2",
        "page=1000000&page_size=100",
    ],
)
async def test_listings_read_the_same(client: httpx.AsyncClient, tokens: Tokens, query: str) -> None:
    headers = tokens.headers("u1")
    for symbol in ("BTCUSDT", "ETHUSDT", "BTCUSDT", "ETHUSDT", "BTCUSDT"):
        assert (await post(client, {"symbol": symbol, "target_price": "1"}, FAST, headers)).status_code == 201
    alert_id = (await post(client, {"symbol": "ETHUSDT", "target_price": "2"}, FAST, headers)).json()["id"]
    assert (await client.delete(f"/alerts/{alert_id}", headers=headers)).status_code == 204
    # A parameter the fast path does not know sends the request to FastAPI, which ignores it.
    fast = await client.get(f"/alerts?{query}", headers=headers)
    slow = await client.get(f"/alerts?{query}{'&' if query else ''}unknown=1", headers=headers)
    assert fast.status_code == 200
    same_answer(fast, slow)
    unauthenticated = await client.get(f"/alerts?{query}"), await client.get(f"/alerts?{query}&unknown=1")
    same_answer(*unauthenticated)


def test_only_plain_queries_take_the_fast_path() -> None:
    assert parse_query(b"") == ListQuery()
    assert parse_query(b"page=3&page_size=100&status=triggered&symbol=btcUSDT") == ListQuery(
        page=3, page_size=100, status=AlertStatus.TRIGGERED, symbol="btcUSDT"
    )
    assert parse_query(b"status=paused&condition=enter_range") == ListQuery(
        status=AlertStatus.PAUSED, condition=Condition.ENTER_RANGE
    )
    for refused in (
        b"page=0",
        b"page=01",
        b"page=1000001",
        b"page_size=101",
        b"page=1&page=2",
        b"page",
        b"status=ACTIVE",
        b"symbol=",
        b"symbol=BTC%55SDT",
        b"symbol=" + b"X" * 41,
        b"x=1",
        b"page=1&",
        b"page=+1",
        b"page=1.0",
        b"symbol=BTC+USDT",
        b"condition=PCT_UP",
        b"condition=sideways",
        b"condition=",
    ):
        assert parse_query(refused) is None, refused


async def test_a_body_in_pieces_is_read_whole_and_replayed() -> None:
    pieces: list[Message] = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b" 1}", "more_body": False},
    ]
    queue = list(pieces)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    messages, body = await _read_body(receive)
    assert body == b'{"a": 1}' and messages == pieces
    replayed = _replay(messages, receive)
    assert [await replayed() for _ in range(3)] == [*pieces, {"type": "http.disconnect"}]


async def test_metrics_name_the_route_on_the_fast_path(client: httpx.AsyncClient, tokens: Tokens) -> None:
    await post(client, {"symbol": "BTCUSDT", "target_price": "1"}, FAST, tokens.headers("u1"))
    await client.get("/alerts", headers=tokens.headers("u1"))
    await post(client, {"symbol": "BTCUSDT", "target_price": "1"}, FAST, {})
    text = (await client.get("/metrics")).text
    for method, status in (("POST", 201), ("GET", 200), ("POST", 401)):
        assert (
            f'pricealert_alerts_http_request_duration_seconds_count{{method="{method}",route="/alerts",'
            f'status="{status}"}}'
        ) in text


NINETEEN_PLACES = "65000." + "0" * 18 + "1"


@pytest.mark.parametrize(
    "target", [f'"{NINETEEN_PLACES}"', NINETEEN_PLACES, "1.0000000000000000001", "1.00000000000000000001e1"]
)
async def test_more_than_18_decimal_places_are_refused_on_both_paths(
    client: httpx.AsyncClient, tokens: Tokens, target: str
) -> None:
    body = '{"symbol": "BTCUSDT", "target_price": ' + target + "}"  # a JSON number is not rounded to a float
    headers = tokens.headers("u1")
    fast, slow = await post(client, body, FAST, headers), await post(client, body, SLOW, headers)
    assert fast.status_code == 422, fast.text
    same_answer(fast, slow)


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("65000.00000000000001", "65000.00000000000001"),
        ("65000.000000000000000001", "65000.000000000000000001"),
        ("0.1000000000000000010", "0.100000000000000001"),
        ("6.500000000000000000001e4", "65000.00000000000000001"),
    ],
)
async def test_a_number_target_is_kept_to_the_last_digit_on_both_paths(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, target: str, kept: str
) -> None:
    async def fell_through(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"{scope['method']} {scope['path']} reached FastAPI")

    body = '{"symbol": "BTCUSDT", "target_price": ' + target + "}"
    transport = httpx.ASGITransport(app=FastRoutes(fell_through, api=app))
    async with httpx.AsyncClient(transport=transport, base_url="http://alerts") as fast_client:
        fast = await post(fast_client, body, FAST, tokens.headers("u1"))
    slow = await post(client, body, SLOW, tokens.headers("u1"))
    assert (fast.status_code, slow.status_code) == (201, 201), (fast.text, slow.text)
    assert fast.json()["target_price"] == slow.json()["target_price"] == kept
