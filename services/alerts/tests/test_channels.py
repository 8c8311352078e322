"""/channels: create, list, get, patch, rotate, delete; redaction, the SSRF guard at create, limits, the registry."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens
from channels_testkit import PRIVATE, PUBLIC, add_channel, channels_of, registry, use_resolver, webhook
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import update

from pricealert.alerts.channelsync import ChannelResync
from pricealert.alerts.models import Channel
from pricealert.alerts.settings import AlertsSettings
from pricealert.common import names
from pricealert.common.channels import ChannelStatus
from pricealert.common.events import utc_now
from pricealert.common.settings import Environment
from pricealert.common.urlguard import TargetPolicy

pytestmark = pytest.mark.usefixtures("catalog")

SECRET_PARTS = ("s3cr3tpath", "k3y", "whsec_")


def assert_no_secret(response: httpx.Response) -> None:
    for part in SECRET_PARTS:
        assert part not in response.text, (part, response.text)


async def test_a_webhook_is_created_with_a_secret_shown_once(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    created = await webhook(client, tokens, name="bot")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["kind"] == "webhook" and created["status"] == "active" and created["version"] == 1
    assert created["target"] == "https://hooks.example/…?…" and created["name"] == "bot"
    headers = tokens.headers("u1")
    for response in (
        await client.get(f"/channels/{created['id']}", headers=headers),
        await client.get("/channels", headers=headers),
        await client.patch(f"/channels/{created['id']}", json={"name": "renamed"}, headers=headers),
    ):
        assert response.status_code == 200, response.text
        assert_no_secret(response)
        assert "secret" not in (response.json()["items"][0] if "items" in response.json() else response.json())
    spec = await registry(redis, created["id"])
    assert spec is not None and spec.target == "https://hooks.example/in/s3cr3tpath?key=k3y"
    assert [s.secret for s in spec.secrets] == [secret] and spec.version == 2 and spec.user_id == "u1"


async def test_listing_shows_only_the_users_own_live_channels(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    use_resolver(app)
    first = await webhook(client, tokens)
    second = await add_channel(client, tokens, kind="email", address="u1@example.com")
    await webhook(client, tokens, user="u2")
    listed = (await client.get("/channels", headers=tokens.headers("u1"))).json()["items"]
    assert [c["id"] for c in listed] == [first["id"], second["id"]]
    assert listed[1]["target"] == "u1@example.com"
    other = await client.get(f"/channels/{first['id']}", headers=tokens.headers("u2"))
    assert other.status_code == 404 and other.json()["error"]["code"] == "channel_not_found"
    assert (await client.get("/channels")).status_code == 401
    assert (await client.delete(f"/channels/{first['id']}", headers=tokens.headers("u2"))).status_code == 404


async def test_an_apprise_url_is_checked_by_apprise_and_redacted(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    use_resolver(app)
    url = "tgram://123456789:AAHkS3cr3tTokenValue1234567890abcd/987654321"
    created = await add_channel(client, tokens, kind="apprise", url=url)
    assert created["secret"] is None and "S3cr3t" not in str(created) and created["target"].startswith("tgram://")
    unknown = await client.post(
        "/channels", json={"kind": "apprise", "url": "nosuch://x/y"}, headers=tokens.headers("u1")
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_apprise_url"
    hosted = await add_channel(client, tokens, kind="apprise", url="ntfys://ntfy.example/alerts")
    assert hosted["target"] == "ntfys://ntfy.example/…"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "webhook", "url": "http://127.0.0.1:8080/hook"}, "private_target"),
        ({"kind": "webhook", "url": "http://[::1]/hook"}, "private_target"),
        ({"kind": "webhook", "url": "https://10.0.0.7/hook"}, "private_target"),
        ({"kind": "webhook", "url": "http://169.254.169.254/latest/meta-data"}, "private_target"),
        ({"kind": "webhook", "url": "https://internal.example/hook"}, "private_target"),
        ({"kind": "webhook", "url": "https://mixed.example/hook"}, "private_target"),
        ({"kind": "webhook", "url": "https://nowhere.example/hook"}, "unresolvable_host"),
        ({"kind": "webhook", "url": "ftp://hooks.example/x"}, "invalid_url"),
        ({"kind": "webhook", "url": "https://user:pw@hooks.example/x"}, "invalid_url"),
        ({"kind": "apprise", "url": "json://127.0.0.1:9000/notify"}, "private_target"),
        ({"kind": "apprise", "url": "ntfy://internal.example/topic"}, "private_target"),
        ({"kind": "email", "address": "not an address"}, "invalid_email"),
        ({"kind": "email", "url": "https://hooks.example/x"}, "field_not_allowed"),
        ({"kind": "webhook"}, "validation_error"),
    ],
)
async def test_unsafe_or_invalid_targets_are_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], code: str
) -> None:
    resolver = use_resolver(
        app,
        {
            "hooks.example": [[PUBLIC]],
            "internal.example": [[PRIVATE]],
            "mixed.example": [[PUBLIC, PRIVATE]],
        },
    )
    response = await client.post("/channels", json=body, headers=tokens.headers("u1"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert "s3cr3t" not in response.text
    assert (await client.get("/channels", headers=tokens.headers("u1"))).json()["items"] == []
    if code == "private_target" and "example" in body.get("url", ""):
        assert resolver.asked  # the name was resolved, every answer checked


async def test_a_rebinding_name_is_judged_by_the_answer_at_create(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Public first: accepted (the notifier checks again at send, where the private answer is refused); the
    # same name answering private first is refused here.
    use_resolver(app, {"rebind.example": [[PUBLIC], [PRIVATE]]})
    await add_channel(client, tokens, kind="webhook", url="https://rebind.example/hook")
    refused = await client.post(
        "/channels", json={"kind": "webhook", "url": "https://rebind.example/hook"}, headers=tokens.headers("u1")
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "private_target"


async def test_private_targets_and_plain_http_follow_the_policy(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    use_resolver(app)
    channels_of(app).policy = TargetPolicy(allow_private=True)
    local = await add_channel(client, tokens, kind="webhook", url="http://127.0.0.1:9999/hook")
    assert local["target"] == "http://127.0.0.1:9999/…"
    channels_of(app).policy = TargetPolicy(require_https=True)
    plain = await client.post(
        "/channels", json={"kind": "webhook", "url": "http://hooks.example/x"}, headers=tokens.headers("u1")
    )
    assert plain.status_code == 422 and plain.json()["error"]["code"] == "https_required"


def test_the_settings_give_the_guard_its_policy(settings: AlertsSettings) -> None:
    assert settings.channel_target_policy() == TargetPolicy(allow_private=False, require_https=False)
    allowing = settings.model_copy(update={"channels_allow_private_targets": True, "env": Environment.PRODUCTION})
    assert allowing.channel_target_policy() == TargetPolicy(allow_private=True, require_https=True)
    assert AlertsSettings(CHANNELS_ALLOW_PRIVATE_TARGETS="true").channels_allow_private_targets


async def test_patch_disables_and_enables_and_each_change_reaches_the_registry(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    created = await webhook(client, tokens)
    path, headers = f"/channels/{created['id']}", tokens.headers("u1")
    disabled = (await client.patch(path, json={"status": "disabled"}, headers=headers)).json()
    assert disabled["status"] == "disabled" and disabled["version"] == 2
    spec = await registry(redis, created["id"])
    assert spec is not None and spec.status is ChannelStatus.DISABLED and spec.version == 2
    same = (await client.patch(path, json={"status": "disabled"}, headers=headers)).json()
    assert same["version"] == 2  # no change, no new version
    enabled = (await client.patch(path, json={"status": "active", "name": None}, headers=headers)).json()
    assert enabled["status"] == "active" and enabled["version"] == 3
    spec = await registry(redis, created["id"])
    assert spec is not None and spec.status is ChannelStatus.ACTIVE and spec.version == 3
    bad = await client.patch(path, json={"status": "deleted"}, headers=headers)
    assert bad.status_code == 422


async def test_rotating_a_secret_keeps_the_old_one_for_a_day(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    created = await webhook(client, tokens)
    headers = tokens.headers("u1")
    response = await client.post(f"/channels/{created['id']}/rotate-secret", headers=headers)
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["version"] == 2 and rotated["previous_secret_until"] is not None
    spec = await registry(redis, created["id"])
    assert spec is not None
    now_ms = int(time.time() * 1000)
    assert spec.signing_secrets(now_ms) == [rotated["secret"], created["secret"]]
    assert spec.signing_secrets(now_ms + int(timedelta(hours=24, minutes=1).total_seconds() * 1000)) == [
        rotated["secret"]
    ]
    shown = await client.get(f"/channels/{created['id']}", headers=headers)
    assert "whsec_" not in shown.text
    email = await add_channel(client, tokens, kind="email", address="u1@example.com")
    refused = await client.post(f"/channels/{email['id']}/rotate-secret", headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "channel_has_no_secret"


async def test_a_channel_in_use_cannot_be_deleted(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    channel = await webhook(client, tokens)
    headers = tokens.headers("u1")
    body = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above", "channels": [channel["id"]]}
    alert = (await client.post("/alerts", json=body, headers=headers)).json()
    refused = await client.delete(f"/channels/{channel['id']}", headers=headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "channel_in_use"
    assert refused.json()["error"]["details"]["alert_ids"] == [alert["id"]]
    paused = await client.patch(f"/alerts/{alert['id']}", json={"status": "paused"}, headers=headers)
    assert paused.status_code == 200
    assert (await client.delete(f"/channels/{channel['id']}", headers=headers)).status_code == 409
    assert (await client.delete(f"/alerts/{alert['id']}", headers=headers)).status_code == 204
    assert (await client.delete(f"/channels/{channel['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"/channels/{channel['id']}", headers=headers)).status_code == 404
    assert (await client.delete(f"/channels/{channel['id']}", headers=headers)).status_code == 404
    spec = await registry(redis, channel["id"])
    assert spec is not None and spec.status is ChannelStatus.DELETED and spec.secrets == ()
    # A deleted channel no longer counts, nor can an alert name it.
    body["channels"] = [channel["id"]]
    unknown = await client.post("/alerts", json=body, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_channel"


async def test_the_number_of_channels_is_limited(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> None:
    use_resolver(app)
    channels_of(app).max_per_user = 2
    first = await webhook(client, tokens)
    await webhook(client, tokens)
    refused = await client.post(
        "/channels", json={"kind": "email", "address": "x@example.org"}, headers=tokens.headers("u1")
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "channel_limit_reached",
        "message": "You already hold 2 channels, the most allowed.",
        "details": {"limit": 2},
    }
    await webhook(client, tokens, user="u2")  # per user
    assert (await client.delete(f"/channels/{first['id']}", headers=tokens.headers("u1"))).status_code == 204
    await webhook(client, tokens)


async def test_the_worker_resync_heals_a_lost_registry_write(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    use_resolver(app)
    live = await webhook(client, tokens)
    gone = await webhook(client, tokens)
    assert (await client.delete(f"/channels/{gone['id']}", headers=tokens.headers("u1"))).status_code == 204
    await redis.delete(names.CHANNEL_REGISTRY)
    resync = ChannelResync(channels_of(app).store, redis)
    assert await resync.resync_once() == 2
    live_spec, gone_spec = await registry(redis, live["id"]), await registry(redis, gone["id"])
    assert live_spec is not None and live_spec.status is ChannelStatus.ACTIVE
    assert gone_spec is not None and gone_spec.status is ChannelStatus.DELETED
    await redis.hset(names.CHANNEL_REGISTRY, live["id"], live_spec.model_copy(update={"version": 9}).model_dump_json())
    assert await resync.resync_once() == 1  # a newer version in the registry stays
    newer = await registry(redis, live["id"])
    assert newer is not None and newer.version == 9
    old = utc_now() - timedelta(days=3)
    async with channels_of(app).store.sessions() as session, session.begin():
        await session.execute(update(Channel).where(Channel.id == gone["id"]).values(updated_at=old))
    await redis.delete(names.CHANNEL_REGISTRY)
    assert await resync.resync_once() == 1  # an old tombstone is no longer written
    assert await registry(redis, gone["id"]) is None
