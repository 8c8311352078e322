"""Firings: each trigger stored once, counted on its alert, its email's outcome; GET /alerts/{id}/firings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, stream_of
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.alerts.service import AlertService
from pricealert.common.events import (
    Condition,
    DeliveryStatus,
    Frequency,
    NotificationResult,
    Trigger,
    now_ms,
    trigger_id_for,
)
from pricealert.common.publisher import publish
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


async def create(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: Any) -> dict[str, Any]:
    payload = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above", **body}
    response = await client.post("/alerts", json=payload, headers=tokens.headers(user))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def firing(alert: dict[str, Any], n: int = 1, *, paused: bool = False, at: int | None = None, **extra: Any) -> Trigger:
    """The n-th firing of `alert` as the evaluator writes it."""
    frequency = Frequency(alert["frequency"])
    fired_at = at if at is not None else now_ms()
    definition = {
        name: alert[name]
        for name in ("target_price", "low", "high", "percent", "window", "cooldown_s", "message")
        if alert[name] is not None
    }
    return Trigger(
        trigger_id=trigger_id_for(alert["id"], n, frequency),
        alert_id=alert["id"],
        user_id="u1",
        email="u1@example.com",
        symbol=alert["symbol"],
        condition=Condition(alert["condition"]),
        frequency=frequency,
        version=alert["version"],
        price=Decimal("100000") + n,
        trade_id=1000 + n,
        exchange_time=fired_at - 5,
        tick_received_at=fired_at - 3,
        fired_at=fired_at,
        firing=n,
        paused=paused,
        **{**definition, **extra},
    )


def result(trigger: Trigger, status: DeliveryStatus, error: str | None = None) -> NotificationResult:
    return NotificationResult(
        trigger_id=trigger.trigger_id,
        alert_id=trigger.alert_id,
        status=status,
        attempts=2,
        error=error,
        occurred_at=datetime.now(UTC),
    )


async def shown(client: httpx.AsyncClient, tokens: Tokens, alert_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = (await client.get(f"/alerts/{alert_id}", headers=tokens.headers("u1"))).json()
    return answer


async def history(client: httpx.AsyncClient, tokens: Tokens, alert_id: str, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/alerts/{alert_id}/firings{query}", headers=tokens.headers("u1"))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def service_of(app: FastAPI) -> AlertService:
    service: AlertService = app.state.alerts.service
    return service


async def test_a_recurring_alert_keeps_firing_and_each_firing_is_kept_once(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens, frequency="every_time", cooldown_s=1)
    start = now_ms()
    triggers = [firing(alert, n, at=start + n * 1000) for n in (1, 2, 3)]
    await service_of(app).record_triggers(triggers[:2])
    await service_of(app).record_triggers([triggers[1], triggers[2], triggers[0]])  # redeliveries, one new firing
    body = await shown(client, tokens, alert["id"])
    assert (body["status"], body["firing_count"], body["triggered_at"]) == ("active", 3, None)
    assert datetime.fromisoformat(body["last_fired_at"].replace("Z", "+00:00")).timestamp() * 1000 == pytest.approx(
        start + 3000, abs=1
    )
    assert body["delivery_status"] == "pending"
    page = await history(client, tokens, alert["id"])
    assert page["total"] == 3 and page["next"] is None and page["previous"] is None
    assert [(f["id"], f["firing"], f["price"], f["trade_id"], f["version"]) for f in page["items"]] == [
        (f"{alert['id']}:{n}", n, str(100000 + n), 1000 + n, 1) for n in (3, 2, 1)
    ]
    first = page["items"][-1]
    assert (first["paused"], first["delivery_status"], first["delivery_error"]) == (False, "pending", None)
    fired = datetime.fromisoformat(first["fired_at"].replace("Z", "+00:00"))
    exchange = datetime.fromisoformat(first["exchange_time"].replace("Z", "+00:00"))
    assert round(fired.timestamp() * 1000) == start + 1000 and round(exchange.timestamp() * 1000) == start + 995


async def test_a_once_alert_fires_once(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    alert = await create(client, tokens, condition="pct_up", target_price=None, percent="5", window="1h")
    trigger = firing(alert)
    assert trigger.trigger_id == alert["id"]
    await service_of(app).record_triggers([trigger, trigger])
    later = firing(alert, 2).model_copy(update={"trigger_id": "another"})
    await service_of(app).record_triggers([later])
    body = await shown(client, tokens, alert["id"])
    assert (body["status"], body["firing_count"], body["triggered_price"]) == ("triggered", 1, "100001")
    assert [f["id"] for f in (await history(client, tokens, alert["id"]))["items"]] == [alert["id"]]


async def test_the_hourly_limit_pauses_the_alert_until_it_is_resumed(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens, condition="enter_range", target_price=None, low="1", high="2",
                         frequency="every_time", cooldown_s=1)  # fmt: skip
    start = now_ms()
    await service_of(app).record_triggers([firing(alert, n, at=start + n) for n in (1, 2)])
    await service_of(app).record_triggers([firing(alert, 3, at=start + 3, paused=True)])
    body = await shown(client, tokens, alert["id"])
    assert (body["status"], body["firing_count"]) == ("paused", 3)
    assert body["paused_reason"] == "fired 3 times within an hour; resume it to go on"
    assert [f["paused"] for f in (await history(client, tokens, alert["id"]))["items"]] == [True, False, False]
    # The evaluator's own count of the hour, when the trigger carries it, names the limit.
    other = await create(client, tokens, frequency="every_time")
    await service_of(app).record_triggers([firing(other, 9, paused=True, hour_firings=60)])
    assert (await shown(client, tokens, other["id"]))["paused_reason"] == (
        "fired 60 times within an hour; resume it to go on"
    )
    resumed = await client.patch(f"/alerts/{alert['id']}", json={"status": "active"}, headers=tokens.headers("u1"))
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["paused_reason"], resumed.json()["version"]) == ("active", None, 2)
    await service_of(app).record_triggers([firing({**alert, "version": 2}, 4)])
    body = await shown(client, tokens, alert["id"])
    assert (body["status"], body["firing_count"]) == ("active", 4)
    assert (await history(client, tokens, alert["id"]))["items"][0]["version"] == 2


async def test_a_paused_firing_of_a_superseded_version_leaves_the_alert_active(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    # The owner edited the alert (version 2) before the firing that paused version 1 was recorded: the evaluator
    # indexed version 2 after its pause, so the alert is watched again and must stay active.
    alert = await create(client, tokens, frequency="every_time")
    edited = await client.patch(f"/alerts/{alert['id']}", json={"name": "v2"}, headers=tokens.headers("u1"))
    assert edited.status_code == 200 and edited.json()["version"] == 2
    await service_of(app).record_triggers([firing(alert, 1, paused=True, hour_firings=1)])
    body = await shown(client, tokens, alert["id"])
    assert (body["status"], body["firing_count"], body["paused_reason"]) == ("active", 1, None)


async def test_a_paused_firing_of_a_deleted_alert_keeps_it_deleted(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens, frequency="every_time")
    await client.delete(f"/alerts/{alert['id']}", headers=tokens.headers("u1"))
    await service_of(app).record_triggers([firing(alert, 1, paused=True)])
    body = await shown(client, tokens, alert["id"])
    assert (body["status"], body["firing_count"], body["paused_reason"]) == ("deleted", 1, None)


async def test_each_firing_has_its_own_delivery(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    alert = await create(client, tokens, frequency="every_time")
    start = now_ms()
    one, two, three = (firing(alert, n, at=start + n) for n in (1, 2, 3))
    service = service_of(app)
    await service.record_triggers([one, two])
    await service.record_results([result(one, DeliveryStatus.FAILED, "550 no such mailbox")])
    assert (await shown(client, tokens, alert["id"]))["delivery_status"] == "pending"  # the latest is firing 2
    await service.record_results([result(two, DeliveryStatus.SENT), result(two, DeliveryStatus.FAILED, "late")])
    body = await shown(client, tokens, alert["id"])
    assert (body["delivery_status"], body["delivery_error"]) == ("sent", None)
    # A result before its trigger is kept: the trigger does not reset it to pending.
    await service.record_results([result(three, DeliveryStatus.FAILED, "421 try later")])
    assert (await history(client, tokens, alert["id"]))["total"] == 2
    await service.record_triggers([three])
    body = await shown(client, tokens, alert["id"])
    assert (body["firing_count"], body["delivery_status"], body["delivery_error"]) == (3, "failed", "421 try later")
    items = (await history(client, tokens, alert["id"]))["items"]
    assert [(f["delivery_status"], f["delivery_error"]) for f in items] == [
        ("failed", "421 try later"),
        ("sent", None),
        ("failed", "550 no such mailbox"),
    ]


async def test_pages_of_firings(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    alert = await create(client, tokens, frequency="every_time")
    start = now_ms()
    await service_of(app).record_triggers([firing(alert, n, at=start + n) for n in range(1, 6)])
    path = f"/alerts/{alert['id']}/firings"
    first = await history(client, tokens, alert["id"], "?page_size=2")
    assert [f["firing"] for f in first["items"]] == [5, 4] and first["total"] == 5
    assert first["next"] == f"{path}?page=2&page_size=2" and first["previous"] is None
    second = await history(client, tokens, alert["id"], "?page=2&page_size=2")
    assert [f["firing"] for f in second["items"]] == [3, 2]
    assert second["previous"] == f"{path}?page=1&page_size=2"
    last = await history(client, tokens, alert["id"], "?page=3&page_size=2")
    assert [f["firing"] for f in last["items"]] == [1] and last["next"] is None
    beyond = await history(client, tokens, alert["id"], "?page=9&page_size=2")
    assert beyond["items"] == [] and beyond["total"] == 5 and beyond["previous"] == f"{path}?page=3&page_size=2"
    for query in ("?page=0", "?page_size=101", "?page=x"):
        response = await client.get(f"{path}{query}", headers=tokens.headers("u1"))
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    empty = await create(client, tokens)
    assert await history(client, tokens, empty["id"]) == {
        "items": [],
        "total": 0,
        "page": 1,
        "page_size": 20,
        "next": None,
        "previous": None,
    }


async def test_another_users_firings_are_not_found(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    alert = await create(client, tokens, user="alice")
    await service_of(app).record_triggers([firing(alert)])
    for user in ("bob",):
        response = await client.get(f"/alerts/{alert['id']}/firings", headers=tokens.headers(user))
        assert response.status_code == 404 and response.json()["error"]["code"] == "alert_not_found"
    unknown = await client.get("/alerts/3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a/firings", headers=tokens.headers("u1"))
    assert unknown.status_code == 404
    assert (await client.get(f"/alerts/{alert['id']}/firings")).status_code == 401
    mine = await client.get(f"/alerts/{alert['id']}/firings", headers=tokens.headers("alice"))
    assert mine.json()["total"] == 1


async def test_firings_through_the_streams(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens, condition="pct_move", target_price=None, percent="3", window="5m",
                         frequency="every_time", cooldown_s=30, message="{{symbol}} {{change_pct}}")  # fmt: skip
    start = now_ms()
    triggers = [firing(alert, n, at=start + n, reference_price=Decimal("97000"), change_pct="3.09") for n in (1, 2)]
    stream = stream_of(Trigger, alert["symbol"])
    for trigger in (*triggers, triggers[0]):
        await publish(redis, stream, trigger)
    await publish(redis, stream_of(NotificationResult, alert["symbol"]), result(triggers[1], DeliveryStatus.SENT))

    async def recorded() -> bool:
        body = await shown(client, tokens, alert["id"])
        return bool(body["firing_count"] == 2 and body["delivery_status"] == "sent")

    await eventually(recorded)
    assert (await shown(client, tokens, alert["id"]))["status"] == "active"
    assert [f["delivery_status"] for f in (await history(client, tokens, alert["id"]))["items"]] == ["sent", "pending"]
