"""Creating percent, range and recurring alerts, with messages: what is stored, shown, announced, and refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, alert_events
from redis.asyncio import Redis

from pricealert.alerts.api.render import alert_json
from pricealert.alerts.models import NewAlert
from pricealert.alerts.views import AlertOut
from pricealert.common.alertmessage import PLACEHOLDERS
from pricealert.common.events import AlertEventType, Condition, Frequency
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")

# The fast path takes exactly "application/json"; with a charset the same body goes to the FastAPI route.
FAST, SLOW = "application/json", "application/json; charset=utf-8"
NEW_FIELDS = {
    "frequency": "once",
    "cooldown_s": None,
    "message": None,
    "low": None,
    "high": None,
    "percent": None,
    "window": None,
    "version": 1,
    "firing_count": 0,
    "last_fired_at": None,
    "paused_reason": None,
}


async def post(client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], content_type: str = FAST) -> Any:
    return await client.post(
        "/alerts", content=json.dumps(body), headers={**tokens.headers("u1"), "Content-Type": content_type}
    )


async def test_each_new_condition_is_created_shown_and_announced(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    bodies = [
        {"symbol": "BTCUSDT", "condition": "pct_up", "percent": "5", "window": "1h"},
        {"symbol": "BTCUSDT", "condition": "pct_down", "percent": 2.5, "window": "5m", "frequency": "every_time"},
        {"symbol": "ETHUSDT", "condition": "pct_move", "percent": "0.1", "window": "24h", "cooldown_s": 60,
         "frequency": "every_time", "message": "{{symbol}} moved {{ change_pct }} % in {{window}}"},
        {"symbol": "BTCUSDT", "condition": "enter_range", "low": "60000", "high": "70000.5"},
        {"symbol": "ETHBTC", "condition": "exit_range", "low": 0.01, "high": "0.02", "name": "eth/btc band"},
    ]  # fmt: skip
    created = []
    for body in bodies:
        response = await post(client, tokens, body)
        assert response.status_code == 201, response.text
        created.append(response.json())
    pct_up, pct_down, pct_move, enter, exit_ = created
    assert (pct_up["percent"], pct_up["window"], pct_up["target_price"]) == ("5", "1h", None)
    assert (pct_up["frequency"], pct_up["cooldown_s"], pct_up["version"], pct_up["firing_count"]) == (
        "once",
        None,
        1,
        0,
    )
    assert (pct_down["frequency"], pct_down["cooldown_s"], pct_down["percent"]) == ("every_time", 300, "2.5")
    assert (pct_move["cooldown_s"], pct_move["message"]) == (60, "{{symbol}} moved {{ change_pct }} % in {{window}}")
    assert (enter["low"], enter["high"], enter["percent"], enter["window"]) == ("60000", "70000.5", None, None)
    assert (exit_["low"], exit_["high"], exit_["name"]) == ("0.01", "0.02", "eth/btc band")
    for shown in created:
        got = await client.get(f"/alerts/{shown['id']}", headers=tokens.headers("u1"))
        assert got.json() == shown

    async def announced() -> bool:
        return len(await alert_events(redis)) == len(bodies)

    await eventually(announced)
    events = {e.alert_id: e for e in await alert_events(redis)}
    assert {e.type for e in events.values()} == {AlertEventType.CREATED}
    move = events[pct_move["id"]]
    assert (move.condition, move.percent, move.window, move.target_price) == (
        Condition.PCT_MOVE,
        Decimal("0.1"),
        "24h",
        None,
    )
    assert (move.frequency, move.cooldown_s, move.message, move.version) == (
        Frequency.EVERY_TIME,
        60,
        pct_move["message"],
        1,
    )
    band = events[exit_["id"]]
    assert (band.low, band.high, band.symbol) == (Decimal("0.01"), Decimal("0.02"), "ETHBTC")
    assert not move.is_compact() and not band.is_compact()


async def test_a_v1_alert_reads_as_before_with_the_new_fields_at_their_defaults(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    response = await post(client, tokens, {"symbol": "BTCUSDT", "target_price": "100000.50", "condition": "above"})
    assert response.status_code == 201
    body = response.json()
    assert list(body)[:12] == [
        "id",
        "symbol",
        "condition",
        "target_price",
        "name",
        "status",
        "created_at",
        "expires_at",
        "triggered_at",
        "triggered_price",
        "delivery_status",
        "delivery_error",
    ]
    assert {name: body[name] for name in NEW_FIELDS} == NEW_FIELDS
    assert body["target_price"] == "100000.5"

    async def announced() -> bool:
        return len(await alert_events(redis)) == 1

    await eventually(announced)
    (created,) = await alert_events(redis)
    assert created.is_compact() and created.target_price == Decimal("100000.50")


async def test_a_v1_create_without_target_price_is_refused_as_before(client: httpx.AsyncClient, tokens: Tokens) -> None:
    for content_type in (FAST, SLOW):
        response = await post(client, tokens, {"symbol": "BTCUSDT", "condition": "above"}, content_type)
        assert response.status_code == 422
        assert response.json() == {
            "error": {
                "code": "validation_error",
                "message": "The request is invalid.",
                "details": [{"loc": ["body", "target_price"], "msg": "Field required", "type": "missing"}],
            }
        }


REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"condition": "pct_up", "percent": "0.09", "window": "1h"}, "percent_out_of_range"),
    ({"condition": "pct_up", "percent": "1000.01", "window": "1h"}, "percent_out_of_range"),
    ({"condition": "pct_move", "percent": "-5", "window": "1h"}, "percent_out_of_range"),
    ({"condition": "pct_down", "percent": "100", "window": "1h"}, "percent_out_of_range"),
    ({"condition": "pct_up", "percent": "5", "window": "2h"}, "unknown_window"),
    ({"condition": "pct_up", "percent": "5", "window": "1H"}, "unknown_window"),
    ({"condition": "enter_range", "low": "70000", "high": "60000"}, "low_not_below_high"),
    ({"condition": "exit_range", "low": "65000", "high": "65000.0"}, "low_not_below_high"),
    ({"condition": "enter_range", "low": "0.001", "high": "10"}, "price_out_of_range"),
    ({"condition": "exit_range", "low": "1", "high": "2000000"}, "price_out_of_range"),
    ({"target_price": "1", "frequency": "every_time", "cooldown_s": 0}, "cooldown_out_of_range"),
    ({"target_price": "1", "frequency": "every_time", "cooldown_s": 7 * 86_400 + 1}, "cooldown_out_of_range"),
    ({"target_price": "1", "cooldown_s": 60}, "field_not_allowed"),
    ({"condition": "pct_up", "percent": "5", "window": "1h", "target_price": "1"}, "field_not_allowed"),
    ({"condition": "above", "target_price": "1", "percent": "5"}, "field_not_allowed"),
    ({"condition": "cross", "target_price": "1", "window": "1h"}, "field_not_allowed"),
    ({"condition": "enter_range", "low": "1", "high": "2", "target_price": "1"}, "field_not_allowed"),
    ({"condition": "pct_down", "percent": "5", "window": "1h", "low": "1"}, "field_not_allowed"),
    ({"condition": "pct_up", "window": "1h"}, "validation_error"),
    ({"condition": "exit_range", "low": "1"}, "validation_error"),
    ({"target_price": "1", "message": "x" * 1001}, "message_too_long"),
    ({"target_price": "1", "message": "{{symbol}} at {{prize}}"}, "unknown_placeholder"),
    ({"target_price": "1", "frequency": "sometimes"}, "validation_error"),
    ({"condition": "pct_up", "percent": "NaN", "window": "1h"}, "validation_error"),
    ({"condition": "pct_up", "percent": True, "window": "1h"}, "validation_error"),
    ({"target_price": "1", "frequency": "every_time", "cooldown_s": "soon"}, "validation_error"),
]


async def test_refusals_have_their_codes_on_both_paths(client: httpx.AsyncClient, tokens: Tokens) -> None:
    wrong = {}
    for fields, code in REFUSALS:
        body = {"symbol": "BTCUSDT", **fields}
        fast, slow = await post(client, tokens, body, FAST), await post(client, tokens, body, SLOW)
        answer = (fast.status_code, fast.json()["error"]["code"])
        if answer != (422, code) or fast.content != slow.content:
            wrong[json.dumps(fields)[:120]] = (answer, slow.status_code)
    assert wrong == {}
    assert (await client.get("/alerts", headers=tokens.headers("u1"))).json()["total"] == 0


async def test_refusals_say_what_is_allowed(client: httpx.AsyncClient, tokens: Tokens) -> None:
    async def error(**fields: Any) -> dict[str, Any]:
        response = await post(client, tokens, {"symbol": "BTCUSDT", **fields})
        assert response.status_code == 422, response.text
        result: dict[str, Any] = response.json()["error"]
        return result

    unknown = await error(target_price="1", message="{{symbol}} {{nope}} {{price}} {{nope}} {{ bad }}")
    assert unknown["details"] == {"unknown": ["nope", "bad"], "known": list(PLACEHOLDERS)}
    for name in PLACEHOLDERS:
        assert "{{" + name + "}}" in unknown["message"]
    window = await error(condition="pct_up", percent="5", window="7d")
    assert window["details"] == {"windows": ["1m", "5m", "15m", "1h", "4h", "24h"]}
    extra = await error(condition="pct_up", percent="5", window="1h", target_price="1", low="1")
    assert extra["details"] == {
        "condition": "pct_up",
        "fields": ["low", "target_price"],
        "allowed": ["percent", "window"],
    }
    falls = await error(condition="pct_down", percent="100", window="1h")
    assert falls["details"] == {"condition": "pct_down", "min": "0.1", "max": "100"}
    cooldown = await error(target_price="1", frequency="every_time", cooldown_s=10**12)
    assert cooldown["details"] == {"min": 1, "max": 604_800}
    band = await error(condition="enter_range", low="0.001", high="1")
    assert band["details"] == {"symbol": "BTCUSDT", "min_price": "0.01", "max_price": "1000000"}


async def test_bounds_that_are_allowed(client: httpx.AsyncClient, tokens: Tokens) -> None:
    accepted = [
        {"condition": "pct_up", "percent": "0.1", "window": "1m"},
        {"condition": "pct_move", "percent": "1000", "window": "4h"},
        {"condition": "pct_down", "percent": "99.99", "window": "15m"},
        {"target_price": "1", "frequency": "every_time", "cooldown_s": 1},
        {"target_price": "1", "frequency": "every_time", "cooldown_s": 604_800},
        {"target_price": "1", "message": "x" * 1000},
        {"target_price": "1", "message": "{{" + "}} {{".join(PLACEHOLDERS) + "}} {not one} {{{{"},
        {"condition": "enter_range", "low": "0.01", "high": "1000000"},
    ]
    for fields in accepted:
        response = await post(client, tokens, {"symbol": "BTCUSDT", **fields})
        assert response.status_code == 201, (fields, response.text)


async def test_the_condition_filter(client: httpx.AsyncClient, tokens: Tokens) -> None:
    ids = {}
    for fields in (
        {"condition": "above", "target_price": "1"},
        {"condition": "pct_up", "percent": "5", "window": "1h"},
        {"condition": "pct_up", "percent": "7", "window": "1h", "symbol": "ETHUSDT"},
        {"condition": "enter_range", "low": "1", "high": "2"},
    ):
        response = await post(client, tokens, {"symbol": "BTCUSDT", **fields})
        ids.setdefault(fields["condition"], []).append(response.json()["id"])
    headers = tokens.headers("u1")

    async def listed(query: str) -> dict[str, Any]:
        response = await client.get(f"/alerts?{query}", headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    pct = await listed("condition=pct_up")
    assert [a["id"] for a in pct["items"]] == ids["pct_up"][::-1] and pct["total"] == 2
    assert [a["id"] for a in (await listed("condition=pct_up&symbol=ETHUSDT"))["items"]] == [ids["pct_up"][1]]
    assert (await listed("condition=pct_up&status=active"))["total"] == 2
    assert (await listed("condition=exit_range"))["total"] == 0
    paged = await listed("condition=pct_up&page_size=1")
    assert paged["next"] == "/alerts?page=2&page_size=1&condition=pct_up"
    # FastAPI's route (an unknown parameter sends the request there) answers the same.
    slow = await client.get("/alerts?condition=pct_up&page_size=1&unknown=1", headers=headers)
    assert slow.json() == paged
    refused = await client.get("/alerts?condition=sideways", headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("kind", ["level", "percent", "range"])
def test_the_rendered_alert_is_what_alert_out_serialises(kind: str) -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    definition: dict[str, Any] = {
        "level": {"condition": "above", "target_price": Decimal("100000.50")},
        "percent": {"condition": "pct_down", "target_price": None, "percent": Decimal("4.5"), "window": "4h",
                    "frequency": "every_time", "cooldown_s": 60, "message": "{{price}}"},
        "range": {"condition": "enter_range", "target_price": None, "low": Decimal("1"), "high": Decimal("2.50")},
    }[kind]  # fmt: skip
    alert = NewAlert(
        id="3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a",
        user_id="u1",
        email="u1@example.com",
        symbol="BTCUSDT",
        name="n",
        status="paused",
        created_at=now,
        updated_at=now,
        expires_at=None,
        version=3,
        firing_count=60,
        last_fired_at=now,
        paused_reason="fired 60 times within an hour; resume it to go on",
        **definition,
    )
    assert alert_json(alert) == AlertOut.of(alert).model_dump_json().encode()
