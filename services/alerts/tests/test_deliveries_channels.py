"""The delivery log through the worker's streams, and a webhook's 410 disabling its channel: its row and its
registry entry (names.CHANNEL_REGISTRY), once, only while it is active."""

from __future__ import annotations

import socket

import httpx
import pytest
import structlog
from alerts_testkit import Tokens, stream_of
from deliveries_testkit import HOOK, add_channel, alert_of, attempt, create, firing, log_of, service_of
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select, update

from pricealert.alerts.channelspec import publish_channel
from pricealert.alerts.database import read_session, write_session
from pricealert.alerts.handlers import ResultHandler
from pricealert.alerts.models import Channel
from pricealert.common import names
from pricealert.common.channels import ChannelSpec, ChannelStatus
from pricealert.common.events import DeliveryStatus, NotificationResult, Trigger
from pricealert.common.messages import Received
from pricealert.common.publisher import publish
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")

OTHER = "9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
REASON = (
    f"the endpoint answered 410 Gone on 2026-12-06 12:00:01 UTC; "
    f're-enable with PATCH /channels/{HOOK} {{"status": "active"}}'
)


async def channel_row(app: FastAPI, channel_id: str) -> Channel:
    async with read_session(app.state.alerts.store.sessions) as session:
        row: Channel = (await session.execute(select(Channel).where(Channel.id == channel_id))).scalar_one()
        return row


async def registry_entry(redis: Redis, channel_id: str) -> ChannelSpec:
    raw = await redis.hget(names.CHANNEL_REGISTRY, channel_id)
    assert raw is not None, f"no registry entry of {channel_id}"
    return ChannelSpec.model_validate_json(raw)


def gone(trigger: Trigger, channel_id: str = HOOK) -> NotificationResult:
    """The webhook answered 410 Gone: a final failure that disables the channel."""
    answer = {"error": "HTTP 410", "reply": "HTTP 410", "http_status": 410, "channel_disabled": True}
    return attempt(trigger, channel_id, 1, DeliveryStatus.FAILED, second=1, **answer)


async def test_a_410_disables_the_channel_once(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, redis: Redis
) -> None:
    alert = await create(client, tokens)
    for channel in (await add_channel(app), await add_channel(app, OTHER, status="disabled", disabled_reason="mine")):
        await publish_channel(redis, channel)
    trigger = firing(alert, channels=f"{HOOK},{OTHER}")
    await publish(redis, stream_of(Trigger, "BTCUSDT"), trigger)
    results = stream_of(NotificationResult, "BTCUSDT")
    for result in (gone(trigger), gone(trigger, OTHER)):
        await publish(redis, results, result)

    async def failed() -> bool:
        return bool((await alert_of(client, tokens, alert["id"]))["delivery_status"] == "failed")

    await eventually(failed, what="the firing failed")
    assert (await registry_entry(redis, HOOK)).status is ChannelStatus.DISABLED
    row = await channel_row(app, HOOK)
    assert (row.status, row.version, row.disabled_reason) == ("disabled", 2, REASON)
    assert (await registry_entry(redis, HOOK)).version == 2
    kept = await channel_row(app, OTHER)  # disabled by its owner already: the 410 changes nothing
    assert (kept.status, kept.version, kept.disabled_reason) == ("disabled", 1, "mine")
    assert (await registry_entry(redis, OTHER)).version == 1
    body = (await log_of(client, tokens, trigger)).json()
    assert [(d["channel_id"], d["http_status"], d["status"]) for d in body["items"]] == [
        (HOOK, 410, "failed"),
        (OTHER, 410, "failed"),
    ]
    assert body["delivery_error"] == (
        "webhook 5f3c2a10…: HTTP 410 after 1 attempt; webhook 9a8b7c6d…: HTTP 410 after 1 attempt"
    )

    # Its owner turns it back on; the same result redelivered does not turn it off again.
    async with write_session(app.state.alerts.store.sessions) as session:
        await session.execute(
            update(Channel).where(Channel.id == HOOK).values(status="active", disabled_reason=None, version=3)
        )
    await publish_channel(redis, await channel_row(app, HOOK))
    await publish(redis, results, gone(trigger))
    later = firing(alert, 2)
    await service_of(app).record_triggers([later])
    await publish(redis, results, attempt(later, "email", 1, DeliveryStatus.SENT))  # after the redelivery

    async def sent() -> bool:
        return bool((await alert_of(client, tokens, alert["id"]))["delivery_status"] == "sent")

    await eventually(sent, what="the later firing sent")
    assert ((await channel_row(app, HOOK)).status, (await registry_entry(redis, HOOK)).version) == ("active", 3)


async def test_a_registry_write_that_fails_is_logged(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> None:
    alert = await create(client, tokens)
    await add_channel(app)
    trigger = firing(alert, channels=HOOK)
    await service_of(app).record_triggers([trigger])
    with socket.socket() as probe:  # a port nothing listens on: Redis refuses the connection
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        with structlog.testing.capture_logs() as logs:
            await ResultHandler(service_of(app), unreachable)([Received("1-0", gone(trigger), {})])
    finally:
        await unreachable.aclose()
    assert [e["channel_id"] for e in logs if e["event"] == "channel.publish_failed"] == [HOOK]
    assert (await channel_row(app, HOOK)).status == "disabled"


async def test_results_through_the_stream_are_logged(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, redis: Redis
) -> None:
    alert = await create(client, tokens)
    trigger = firing(alert)
    await publish(redis, stream_of(Trigger, "BTCUSDT"), trigger)
    old_style = {
        k: v
        for k, v in attempt(trigger, "email", 2, DeliveryStatus.SENT).to_fields().items()
        if k
        not in {"user_id", "channel_id", "channel_kind", "reply", "http_status", "next_retry_at", "channel_disabled"}
    }
    await publish(redis, stream_of(NotificationResult, "BTCUSDT"), old_style)

    async def logged() -> bool:
        response = await log_of(client, tokens, trigger)
        return response.status_code == 200 and response.json()["delivery_status"] == "sent"

    await eventually(logged, what="the result logged")
    body = (await log_of(client, tokens, trigger)).json()
    assert [(d["channel_id"], d["channel_kind"], d["attempt"]) for d in body["items"]] == [("email", "email", 2)]
