"""Alerts name their channels: at create and by PATCH (a new version), shown as a list, carried by every event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, alert_events
from channels_testkit import use_resolver, webhook
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.alerts.models import NewAlert
from pricealert.alerts.pgstore import is_v1
from pricealert.common.channels import ACCOUNT_EMAIL, MAX_CHANNELS_PER_ALERT
from pricealert.common.events import AlertEvent, AlertEventType, utc_now
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")

LEVEL = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above"}


async def events_of(redis: Redis, alert_id: str, count: int) -> list[AlertEvent]:
    async def arrived() -> list[AlertEvent] | None:
        found = [e for e in await alert_events(redis) if e.alert_id == alert_id]
        return found if len(found) >= count else None

    return await eventually(arrived, what=f"{count} events of {alert_id}")


async def post_alert(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: Any) -> httpx.Response:
    return await client.post("/alerts", json={**LEVEL, **body}, headers=tokens.headers(user))


async def test_an_alert_lists_its_channels_and_its_events_carry_them(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    channel = await webhook(client, tokens)
    created = await post_alert(client, tokens, channels=[channel["id"], ACCOUNT_EMAIL])
    assert created.status_code == 201, created.text
    alert = created.json()
    assert alert["channels"] == [channel["id"], ACCOUNT_EMAIL]
    shown = (await client.get(f"/alerts/{alert['id']}", headers=tokens.headers("u1"))).json()
    assert shown["channels"] == [channel["id"], ACCOUNT_EMAIL]
    listed = (await client.get("/alerts", headers=tokens.headers("u1"))).json()["items"]
    assert listed[0]["channels"] == [channel["id"], ACCOUNT_EMAIL]
    [event] = await events_of(redis, alert["id"], 1)
    assert event.type is AlertEventType.CREATED and event.channels == f"{channel['id']},{ACCOUNT_EMAIL}"
    assert not event.is_compact()


async def test_an_alert_without_channels_mails_the_account(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    plain = (await post_alert(client, tokens)).json()
    only_email = (await post_alert(client, tokens, channels=[ACCOUNT_EMAIL])).json()
    for alert in (plain, only_email):
        assert alert["channels"] == [ACCOUNT_EMAIL]
        [event] = await events_of(redis, alert["id"], 1)
        assert event.channels is None and event.is_compact()


async def test_a_patch_of_channels_is_a_new_version(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    channel = await webhook(client, tokens)
    alert = (await post_alert(client, tokens, frequency="every_time", message="{{symbol}} at {{price}}")).json()
    path, headers = f"/alerts/{alert['id']}", tokens.headers("u1")
    changed = await client.patch(path, json={"channels": [channel["id"]]}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["channels"] == [channel["id"]] and changed.json()["version"] == 2
    same = await client.patch(path, json={"channels": [channel["id"]]}, headers=headers)
    assert same.json()["version"] == 2
    back = await client.patch(path, json={"channels": None}, headers=headers)
    assert back.json()["channels"] == [ACCOUNT_EMAIL] and back.json()["version"] == 3
    events = await events_of(redis, alert["id"], 3)
    assert [(e.type, e.version, e.channels) for e in events] == [
        (AlertEventType.CREATED, 1, None),
        (AlertEventType.UPDATED, 2, channel["id"]),
        (AlertEventType.UPDATED, 3, None),
    ]


@pytest.mark.parametrize(
    ("channels", "code"),
    [
        ([], "no_channels"),
        ([ACCOUNT_EMAIL, ACCOUNT_EMAIL], "duplicate_channel"),
        (["3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a"], "unknown_channel"),
        (["other-user's"], "unknown_channel"),
        ([ACCOUNT_EMAIL] * (MAX_CHANNELS_PER_ALERT + 1), "too_many_channels"),
    ],
)
async def test_channels_an_alert_cannot_name(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, channels: list[str], code: str
) -> None:
    use_resolver(app)
    theirs = await webhook(client, tokens, user="u2")
    named = [theirs["id"] if c == "other-user's" else c for c in channels]
    refused = await post_alert(client, tokens, channels=named)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == code
    if code == "unknown_channel":
        assert refused.json()["error"]["details"] == {"id": named[0]}
    alert = (await post_alert(client, tokens)).json()
    patched = await client.patch(f"/alerts/{alert['id']}", json={"channels": named}, headers=tokens.headers("u1"))
    assert patched.status_code == 422 and patched.json()["error"]["code"] == code
    assert (await client.get("/alerts", headers=tokens.headers("u1"))).json()["total"] == 1


def test_only_an_alert_to_the_account_email_takes_the_short_create() -> None:
    now = utc_now()
    alert = NewAlert(
        id="a",
        user_id="u",
        email="u@example.com",
        symbol="BTCUSDT",
        condition="above",
        target_price=None,
        name=None,
        status="active",
        created_at=now,
        updated_at=now,
        expires_at=None,
    )
    alert.target_price = Decimal(1)
    assert is_v1(alert)
    alert.channel_ids = "c1,email"
    assert not is_v1(alert)
