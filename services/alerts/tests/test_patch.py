"""PATCH /alerts/{id}: each field, a new version announced by alert.updated, pause and resume, and the refusals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, alert_events
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.common.events import AlertEvent, AlertEventType, Condition, Frequency, Trigger, now_ms
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


async def create(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: Any) -> dict[str, Any]:
    payload = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above", **body}
    response = await client.post("/alerts", json=payload, headers=tokens.headers(user))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def patch(client: httpx.AsyncClient, tokens: Tokens, alert_id: str, user: str = "u1", **body: Any) -> Any:
    return await client.patch(f"/alerts/{alert_id}", json=body, headers=tokens.headers(user))


async def events_of(redis: Redis, alert_id: str, count: int) -> list[AlertEvent]:
    """The alert's events once `count` of them are on the streams."""

    async def arrived() -> bool:
        return len([e for e in await alert_events(redis) if e.alert_id == alert_id]) >= count

    await eventually(arrived)
    return [e for e in await alert_events(redis) if e.alert_id == alert_id]


def fired(alert: dict[str, Any]) -> Trigger:
    return Trigger(
        trigger_id=alert["id"],
        alert_id=alert["id"],
        user_id="u1",
        email="u1@example.com",
        symbol=alert["symbol"],
        condition=Condition(alert["condition"]),
        target_price=Decimal(alert["target_price"]),
        price=Decimal("100001"),
        trade_id=7,
        exchange_time=now_ms() - 5,
        tick_received_at=now_ms() - 3,
        fired_at=now_ms(),
    )


async def test_a_change_is_a_new_version_announced_whole(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    alert = await create(client, tokens, name="first")
    expires = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    response = await patch(
        client,
        tokens,
        alert["id"],
        target_price="105000.50",
        name="  higher ",
        message="{{symbol}} passed {{target}}",
        expires_at=expires.isoformat(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["target_price"], body["name"], body["message"], body["version"]) == (
        "105000.5",
        "higher",
        "{{symbol}} passed {{target}}",
        2,
    )
    assert datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")) == expires
    assert (await client.get(f"/alerts/{alert['id']}", headers=tokens.headers("u1"))).json() == body
    created, updated = await events_of(redis, alert["id"], 2)
    assert (created.type, updated.type) == (AlertEventType.CREATED, AlertEventType.UPDATED)
    assert (updated.version, updated.paused, updated.previous_target_price) == (2, False, Decimal("100000"))
    assert (updated.target_price, updated.condition, updated.symbol) == (
        Decimal("105000.50"),
        Condition.ABOVE,
        "BTCUSDT",
    )
    assert (updated.name, updated.message, updated.expires_at) == ("higher", "{{symbol}} passed {{target}}", expires)
    assert (updated.frequency, updated.cooldown_s, updated.email) == (Frequency.ONCE, None, "u1@example.com")
    # null clears the name, the message and the expiry; the rest is kept.
    cleared = (await patch(client, tokens, alert["id"], name=None, message=None, expires_at=None)).json()
    assert (cleared["name"], cleared["message"], cleared["expires_at"], cleared["version"]) == (None, None, None, 3)
    assert cleared["target_price"] == "105000.5"
    third = (await events_of(redis, alert["id"], 3))[2]
    assert (third.version, third.previous_target_price, third.message) == (3, Decimal("105000.50"), None)


async def test_a_patch_that_changes_nothing_keeps_the_version(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    alert = await create(client, tokens, name="same")
    for body in ({}, {"target_price": "100000.0", "name": "same"}, {"status": "active"}, {"message": None}):
        response = await patch(client, tokens, alert["id"], **body)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1
    await events_of(redis, alert["id"], 1)
    await asyncio.sleep(0.3)  # the relay polls every 0.1 s: anything staged would be out by now
    assert len(await events_of(redis, alert["id"], 1)) == 1


async def test_percent_range_and_frequency_changes(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    pct = await create(client, tokens, condition="pct_up", target_price=None, percent="5", window="1h")
    every = (await patch(client, tokens, pct["id"], percent="7.5", window="15m", frequency="every_time")).json()
    assert (every["percent"], every["window"], every["frequency"], every["cooldown_s"]) == (
        "7.5",
        "15m",
        "every_time",
        300,
    )
    cooled = (await patch(client, tokens, pct["id"], cooldown_s=60)).json()
    assert (cooled["cooldown_s"], cooled["version"]) == (60, 3)
    kept = (await patch(client, tokens, pct["id"], percent="8")).json()
    assert (kept["cooldown_s"], kept["frequency"]) == (60, "every_time")
    once = (await patch(client, tokens, pct["id"], frequency="once")).json()
    assert (once["frequency"], once["cooldown_s"], once["version"]) == ("once", None, 5)
    events = await events_of(redis, pct["id"], 5)
    assert [e.version for e in events] == [1, 2, 3, 4, 5]
    assert events[2].cooldown_s == 60 and events[2].frequency is Frequency.EVERY_TIME
    assert all(e.previous_target_price is None and e.target_price is None for e in events)
    band = await create(client, tokens, condition="exit_range", target_price=None, low="60000", high="70000")
    moved = (await patch(client, tokens, band["id"], low="61000", high="71000")).json()
    assert (moved["low"], moved["high"], moved["version"]) == ("61000", "71000", 2)
    refused = await patch(client, tokens, band["id"], low="72000")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "low_not_below_high"


async def test_pause_and_resume(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens)
    paused = (await patch(client, tokens, alert["id"], status="paused")).json()
    assert (paused["status"], paused["version"], paused["paused_reason"]) == ("paused", 2, None)
    listed = (await client.get("/alerts?status=paused", headers=tokens.headers("u1"))).json()
    assert [a["id"] for a in listed["items"]] == [alert["id"]]
    edited = (await patch(client, tokens, alert["id"], target_price="99000")).json()
    assert (edited["status"], edited["version"]) == ("paused", 3)
    resumed = (await patch(client, tokens, alert["id"], status="active")).json()
    assert (resumed["status"], resumed["version"]) == ("active", 4)
    events = await events_of(redis, alert["id"], 4)
    assert [(e.type, e.paused) for e in events] == [
        (AlertEventType.CREATED, False),
        (AlertEventType.UPDATED, True),
        (AlertEventType.UPDATED, True),
        (AlertEventType.UPDATED, False),
    ]
    assert events[3].target_price == Decimal("99000") and events[3].previous_target_price == Decimal("99000")


async def test_resuming_counts_against_the_limit(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    app.state.alerts.service.max_active_per_user = 1
    first = await create(client, tokens)
    assert (await patch(client, tokens, first["id"], status="paused")).status_code == 200
    await create(client, tokens)
    refused = await patch(client, tokens, first["id"], status="active")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "alert_limit_reached"
    shown = (await client.get(f"/alerts/{first['id']}", headers=tokens.headers("u1"))).json()
    assert (shown["status"], shown["version"]) == ("paused", 2)


async def test_ended_alerts_cannot_be_changed(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    triggered, deleted, expiring = [await create(client, tokens) for _ in range(3)]
    await app.state.alerts.service.record_triggers([fired(triggered)])
    await client.delete(f"/alerts/{deleted['id']}", headers=tokens.headers("u1"))
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert (await patch(client, tokens, expiring["id"], expires_at=soon)).status_code == 200

    async def expired() -> bool:
        shown = await client.get(f"/alerts/{expiring['id']}", headers=tokens.headers("u1"))
        return bool(shown.json()["status"] == "expired")

    await eventually(expired, within=6)
    for alert, status in ((triggered, "triggered"), (deleted, "deleted"), (expiring, "expired")):
        response = await patch(client, tokens, alert["id"], name="again")
        assert response.status_code == 409, response.text
        assert response.json()["error"] == {
            "code": "alert_not_editable",
            "message": f"A {status} alert cannot be changed.",
            "details": {"id": alert["id"], "status": status},
        }


async def test_another_users_alert_is_not_found(client: httpx.AsyncClient, tokens: Tokens) -> None:
    alert = await create(client, tokens, user="alice")
    response = await patch(client, tokens, alert["id"], user="bob", name="mine")
    assert response.status_code == 404 and response.json()["error"]["code"] == "alert_not_found"
    unknown = await patch(client, tokens, "3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a", name="x")
    assert unknown.status_code == 404
    assert (await client.get(f"/alerts/{alert['id']}", headers=tokens.headers("alice"))).json()["name"] is None
    assert (await client.patch(f"/alerts/{alert['id']}", json={"name": "x"})).status_code == 401


PATCH_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"condition": "below"}, "field_not_patchable"),
    ({"symbol": "ETHUSDT", "name": "x"}, "field_not_patchable"),
    ({"percent": "5"}, "field_not_allowed"),
    ({"low": "1", "high": "2"}, "field_not_allowed"),
    ({"cooldown_s": 60}, "field_not_allowed"),
    ({"frequency": "once", "cooldown_s": 60}, "field_not_allowed"),
    ({"frequency": "every_time", "cooldown_s": 0}, "cooldown_out_of_range"),
    ({"target_price": None}, "validation_error"),
    ({"target_price": "2000000"}, "price_out_of_range"),
    ({"message": "{{price}} {{oops}}"}, "unknown_placeholder"),
    ({"message": "m" * 1001}, "message_too_long"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at_in_past"),
    ({"status": "triggered"}, "validation_error"),
    ({"owner": "u2"}, "validation_error"),
    ({"name": "n" * 201}, "validation_error"),
]


async def test_refusals_change_nothing(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens)
    wrong = {}
    for body, code in PATCH_REFUSALS:
        response = await patch(client, tokens, alert["id"], **body)
        if (response.status_code, response.json()["error"]["code"]) != (422, code):
            wrong[repr(body)[:80]] = response.text
    assert wrong == {}
    not_patchable = await patch(client, tokens, alert["id"], condition="below", symbol="ETHUSDT")
    assert not_patchable.json()["error"]["details"] == {"fields": ["condition", "symbol"]}
    pct = await create(client, tokens, condition="pct_down", target_price=None, percent="5", window="1h")
    for body, code in (
        ({"percent": "100"}, "percent_out_of_range"),
        ({"window": "2d"}, "unknown_window"),
        ({"target_price": "1"}, "field_not_allowed"),
        ({"window": None}, "validation_error"),
    ):
        response = await patch(client, tokens, pct["id"], **body)
        assert (response.status_code, response.json()["error"]["code"]) == (422, code), body
    assert (await client.get(f"/alerts/{alert['id']}", headers=tokens.headers("u1"))).json()["version"] == 1
    assert len(await events_of(redis, alert["id"], 1)) == 1


async def test_patch_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/alerts/{alert_id}"]["patch"]
    assert {"200", "401", "404", "409", "422"} <= set(operation["responses"])
    assert operation.get("security")
    properties = schema["components"]["schemas"]["AlertPatch"]["properties"]
    assert "not_patchable" not in properties and "condition" not in properties
    assert {"status", "percent", "window", "low", "high", "cooldown_s", "frequency", "message"} <= set(properties)
    firings = schema["paths"]["/alerts/{alert_id}/firings"]["get"]
    assert {"200", "401", "404"} <= set(firings["responses"])
    listing = {p["name"] for p in schema["paths"]["/alerts"]["get"]["parameters"]}
    assert "condition" in listing
