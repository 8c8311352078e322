"""The delivery log: every attempt per firing per channel, each firing's and alert's delivery over its channels,
GET /alerts/{id}/firings/{firing_id}/deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from alerts_testkit import Tokens
from deliveries_testkit import (
    HOOK,
    T0,
    alert_of,
    attempt,
    create,
    firing,
    hook_failure,
    log_of,
    service_of,
)
from fastapi import FastAPI
from sqlalchemy import update

from pricealert.alerts.database import write_session
from pricealert.alerts.models import Firing
from pricealert.common.events import DeliveryStatus, NotificationResult

pytestmark = pytest.mark.usefixtures("catalog")


async def test_attempts_are_logged_in_order_and_pending_until_every_channel_delivered(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert, channels=f"email,{HOOK}")
    service = service_of(app)
    await service.record_triggers([trigger])
    await service.record_results([hook_failure(trigger, 1, DeliveryStatus.RETRYING, second=1)])
    await service.record_results([attempt(trigger, "email", 1, DeliveryStatus.SENT, second=2, reply="250 2.0.0 Ok")])
    await service.record_results([hook_failure(trigger, 2, DeliveryStatus.RETRYING, second=3)])
    body = (await log_of(client, tokens, trigger)).json()
    assert [(d["channel_id"], d["attempt"], d["status"]) for d in body["items"]] == [
        (HOOK, 1, "retrying"),
        ("email", 1, "sent"),
        (HOOK, 2, "retrying"),
    ]
    retry = body["items"][2]
    assert (retry["http_status"], retry["reply"], retry["error"], retry["channel_kind"]) == (
        500,
        "HTTP 500",
        "HTTP 500",
        "webhook",
    )
    assert datetime.fromisoformat(retry["next_retry_at"].replace("Z", "+00:00")) == T0 + timedelta(seconds=7)
    assert body["items"][1]["reply"] == "250 2.0.0 Ok" and body["items"][1]["error"] is None
    assert [(c["channel_id"], c["status"], c["attempts"]) for c in body["channels"]] == [
        ("email", "sent", 1),
        (HOOK, "pending", 2),
    ]
    assert (body["delivery_status"], body["delivery_error"], body["delivery_attempts"]) == ("pending", None, 3)
    assert (body["firing_id"], body["total"]) == (trigger.trigger_id, 3)
    assert (await alert_of(client, tokens, alert["id"]))["delivery_status"] == "pending"

    await service.record_results([attempt(trigger, HOOK, 3, DeliveryStatus.SENT, second=9, http_status=204)])
    body = (await log_of(client, tokens, trigger)).json()
    assert (body["delivery_status"], body["delivery_attempts"], body["total"]) == ("sent", 4, 4)
    assert [c["status"] for c in body["channels"]] == ["sent", "sent"]
    assert (await alert_of(client, tokens, alert["id"]))["delivery_status"] == "sent"
    listed = (await client.get(f"/alerts/{alert['id']}/firings", headers=tokens.headers("u1"))).json()
    assert [(c["channel_id"], c["status"], c["attempts"]) for c in listed["items"][0]["channels"]] == [
        ("email", "sent", 1),
        (HOOK, "sent", 3),
    ]


async def test_a_redelivered_result_is_ignored_and_a_success_stays(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert, channels=HOOK)
    service = service_of(app)
    await service.record_triggers([trigger])
    first = hook_failure(trigger, 1, DeliveryStatus.RETRYING, second=1)
    await service.record_results([first, first])
    await service.record_results([first.model_copy(update={"error": "changed", "status": DeliveryStatus.FAILED})])
    await service.record_results([attempt(trigger, HOOK, 2, DeliveryStatus.SENT, second=4)])
    await service.record_results([hook_failure(trigger, 3, DeliveryStatus.FAILED, second=5)])  # a late stray
    body = (await log_of(client, tokens, trigger)).json()
    assert [(d["attempt"], d["status"], d["error"]) for d in body["items"]] == [
        (1, "retrying", "HTTP 500"),
        (2, "sent", None),
        (3, "failed", "HTTP 500"),
    ]
    assert (body["delivery_status"], body["channels"][0]["status"]) == ("sent", "sent")
    assert (await alert_of(client, tokens, alert["id"]))["delivery_status"] == "sent"


async def test_one_channel_failing_fails_the_firing_with_its_reason(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert, channels=f"email,{HOOK}")
    service = service_of(app)
    await service.record_triggers([trigger])
    await service.record_results(
        [hook_failure(trigger, n, DeliveryStatus.RETRYING, second=n) for n in range(1, 31)]
        + [attempt(trigger, "email", 1, DeliveryStatus.SENT, second=1)]
    )
    assert (await alert_of(client, tokens, alert["id"]))["delivery_status"] == "pending"
    await service.record_results([hook_failure(trigger, 31, DeliveryStatus.FAILED, second=40)])
    reason = "webhook 5f3c2a10…: HTTP 500 after 31 attempts"
    shown = await alert_of(client, tokens, alert["id"])
    assert (shown["delivery_status"], shown["delivery_error"]) == ("failed", reason)
    body = (await log_of(client, tokens, trigger, "?page=2&page_size=20")).json()
    assert (body["delivery_status"], body["delivery_error"], body["delivery_attempts"]) == ("failed", reason, 32)
    assert [c["status"] for c in body["channels"]] == ["sent", "failed"]
    assert body["channels"][1]["error"] == "HTTP 500" and body["channels"][0]["error"] is None
    assert [d["attempt"] for d in body["items"]][-2:] == [30, 31] and len(body["items"]) == 12
    path = f"/alerts/{alert['id']}/firings/{trigger.trigger_id}/deliveries"
    assert (body["total"], body["next"], body["previous"]) == (32, None, f"{path}?page=1&page_size=20")
    first = (await log_of(client, tokens, trigger, "?page_size=20")).json()
    assert first["next"] == f"{path}?page=2&page_size=20" and first["items"][0]["attempt"] == 1


async def test_both_channels_failing_name_each(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert, channels=f"{HOOK},email")
    service = service_of(app)
    await service.record_triggers([trigger])
    await service.record_results(
        [
            hook_failure(trigger, 1, DeliveryStatus.FAILED, second=1),
            attempt(trigger, "email", 0, DeliveryStatus.FAILED, error="account email not verified"),
        ]
    )
    shown = await alert_of(client, tokens, alert["id"])
    assert shown["delivery_error"] == "webhook 5f3c2a10…: HTTP 500 after 1 attempt; email: account email not verified"


async def test_results_from_before_channels_are_the_account_emails(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert)
    old = NotificationResult(
        trigger_id=trigger.trigger_id,
        alert_id=alert["id"],
        status=DeliveryStatus.FAILED,
        attempts=3,
        error="550 5.1.1 mailbox unavailable",
        occurred_at=T0,
    )
    service = service_of(app)
    await service.record_results([old])  # before its trigger: kept, then shown once the trigger comes
    await service.record_triggers([trigger])
    shown = await alert_of(client, tokens, alert["id"])
    assert (shown["delivery_status"], shown["delivery_error"]) == ("failed", "550 5.1.1 mailbox unavailable")
    body = (await log_of(client, tokens, trigger)).json()
    assert [(d["channel_id"], d["channel_kind"], d["attempt"]) for d in body["items"]] == [("email", "email", 3)]
    assert (body["delivery_attempts"], body["channels"][0]["status"]) == (3, "failed")
    await service.record_results([old.model_copy(update={"status": DeliveryStatus.SENT, "attempts": 4})])
    shown = await alert_of(client, tokens, alert["id"])
    assert (shown["delivery_status"], shown["delivery_error"]) == ("sent", None)


async def test_a_result_before_its_trigger_counts_once_the_channels_are_known(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert, channels=f"email,{HOOK}")
    service = service_of(app)
    await service.record_results([attempt(trigger, "email", 1, DeliveryStatus.SENT)])
    await service.record_triggers([trigger])
    body = (await log_of(client, tokens, trigger)).json()
    assert (body["delivery_status"], [c["status"] for c in body["channels"]]) == ("pending", ["sent", "pending"])
    assert body["channels"][1]["channel_kind"] is None
    assert (await alert_of(client, tokens, alert["id"]))["delivery_status"] == "pending"


async def test_another_users_or_unknown_firing_is_not_found(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert, other = await create(client, tokens), await create(client, tokens)
    trigger = firing(alert)
    await service_of(app).record_triggers([trigger])
    await service_of(app).record_results([attempt(trigger, "email", 1, DeliveryStatus.SENT)])
    assert (await log_of(client, tokens, trigger)).status_code == 200
    stranger = await log_of(client, tokens, trigger, user="u2")
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "alert_not_found"
    elsewhere = await client.get(
        f"/alerts/{other['id']}/firings/{trigger.trigger_id}/deliveries", headers=tokens.headers("u1")
    )
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "firing_not_found"
    unknown = await log_of(client, tokens, trigger.model_copy(update={"trigger_id": f"{alert['id']}:9"}))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "firing_not_found"
    no_token = await client.get(f"/alerts/{alert['id']}/firings/{trigger.trigger_id}/deliveries")
    assert no_token.status_code == 401
    for query in ("?page=0", "?page_size=101"):
        assert (await log_of(client, tokens, trigger, query)).status_code == 422


async def test_an_outcome_from_before_the_log_is_shown_and_kept(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert)
    await service_of(app).record_triggers([trigger])
    async with write_session(app.state.alerts.store.sessions) as session:  # as recorded before migration 0007
        stmt = update(Firing).where(Firing.trigger_id == trigger.trigger_id)
        await session.execute(stmt.values(delivery_status="sent", delivery_attempts=2))
    listed = (await client.get(f"/alerts/{alert['id']}/firings", headers=tokens.headers("u1"))).json()
    channels = listed["items"][0]["channels"]
    assert [(c["channel_id"], c["status"], c["attempts"]) for c in channels] == [("email", "sent", 2)]
    await service_of(app).record_results([attempt(trigger, "email", 1, DeliveryStatus.FAILED, error="late")])
    body = (await log_of(client, tokens, trigger)).json()
    assert (body["delivery_status"], body["delivery_attempts"], body["total"]) == ("sent", 2, 1)
