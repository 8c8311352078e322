"""The alerts service on a Redis Cluster (3 masters): each event on its symbol's shard's stream, the worker's
consumers reading every shard's triggers and results; and on one Redis, rows staged before the shards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from alerts_testkit import CATALOG, TokenRoot, Tokens, alert_events, client_of, public_pem, publish_catalog, running
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from pricealert.alerts import repository
from pricealert.alerts.database import write_session
from pricealert.alerts.maintenance import prepare
from pricealert.alerts.outbox import UNSHARDED_STREAM, OutboxRelay, alert_events_stream
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.sqlstore import SqlAlertStore
from pricealert.alerts.state import build_state, close_state
from pricealert.common import names
from pricealert.common.events import (
    AlertEvent,
    AlertEventType,
    Condition,
    DeliveryStatus,
    NotificationResult,
    Trigger,
    now_ms,
    utc_now,
)
from pricealert.common.publisher import publish
from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.common.shards import shard_of
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.polling import eventually

# Four shards: the four catalog symbols each on a shard of its own, whose streams spread over the three masters.
SHARDS = 4


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisClient]:
    """A client of the emptied 3-master cluster, the catalog published on it."""
    client = connect_cluster(redis_cluster_url)
    await publish_catalog(client)
    yield client
    await client.aclose()


@pytest.fixture
def cluster_settings(database_url: str, redis_cluster_url: str, token_root: TokenRoot) -> AlertsSettings:
    """The API's and worker's settings on the cluster (REDIS_CLUSTER_URL) with four shards and fast timers."""
    return AlertsSettings(
        database_url=database_url,
        redis_cluster_url=redis_cluster_url,
        shards=SHARDS,
        consumer_name="alerts-cluster-test",
        token_root_public_key_file=token_root.public_key_file,
        relay_poll_s=0.05,
        expiry_enabled=False,
        catalog_min_refresh_s=0,
        consumer_reclaim_idle_ms=1000,
        consumer_block_ms=100,
    )


def trigger_of(alert: dict[str, Any]) -> Trigger:
    return Trigger(
        trigger_id=uuid.uuid4().hex,
        alert_id=alert["id"],
        user_id="u1",
        email="u1@example.com",
        symbol=alert["symbol"],
        condition=Condition(alert["condition"]),
        target_price=Decimal(alert["target_price"]),
        name=None,
        price=Decimal(alert["target_price"]) * 2,
        trade_id=7,
        exchange_time=now_ms() - 5,
        tick_received_at=now_ms() - 3,
        fired_at=now_ms(),
    )


async def test_events_go_to_their_shards_streams_and_the_worker_consumes_every_shard_on_a_cluster(
    cluster: RedisClient,
    cluster_settings: AlertsSettings,
    redis_cluster_nodes: RedisClusterNodes,
    token_root: TokenRoot,
) -> None:
    symbols = [entry.symbol for entry in CATALOG]
    assert sorted(shard_of(symbol, SHARDS) for symbol in symbols) == list(range(SHARDS))
    masters = {redis_cluster_nodes.master_of(AlertEvent.stream_of(k)).port for k in range(SHARDS)}
    assert len(masters) == 3  # the shards' streams live on every master: no command may span them
    key = Ed25519PrivateKey.generate()
    tokens = Tokens(key, uuid.uuid4().hex[:16])
    await token_root.vouch(cluster, tokens.kid, public_pem(key))
    async with running(cluster_settings) as app, client_of(app) as client:
        assert await cluster.get(names.SHARD_COUNT_KEY) == str(SHARDS).encode()  # agreed at start
        alerts = []
        for symbol in symbols * 2:
            body = {"symbol": symbol, "target_price": "0.5", "condition": "above"}
            response = await client.post("/alerts", json=body, headers=tokens.headers("u1"))
            assert response.status_code == 201, response.text
            alerts.append(response.json())

        async def relayed() -> bool:
            return len(await alert_events(cluster, SHARDS)) == len(alerts)

        await eventually(relayed)
        for symbol in symbols:
            entries: Any = await cluster.xrange(AlertEvent.stream_of(shard_of(symbol, SHARDS)))
            events = [AlertEvent.from_fields(fields) for _, fields in entries]
            assert [(e.type, e.alert_id) for e in events] == [
                (AlertEventType.CREATED, a["id"]) for a in alerts if a["symbol"] == symbol
            ]

        triggers = [trigger_of(alert) for alert in alerts]
        for trigger in triggers:
            await publish(cluster, Trigger.stream_of(shard_of(trigger.symbol, SHARDS)), trigger)
            result = NotificationResult(
                trigger_id=trigger.trigger_id,
                alert_id=trigger.alert_id,
                status=DeliveryStatus.SENT,
                attempts=1,
                occurred_at=utc_now(),
            )
            await publish(cluster, NotificationResult.stream_of(shard_of(trigger.symbol, SHARDS)), result)

        async def all_sent() -> bool:
            listed = await client.get("/alerts", params={"page_size": 100}, headers=tokens.headers("u1"))
            shown = {(a["status"], a["delivery_status"]) for a in listed.json()["items"]}
            return shown == {("triggered", "sent")}

        await eventually(all_sent, within=20)
        # An entry that does not decode goes to its stream's dead letters (a MULTI of one shard's two keys).
        poisoned = Trigger.stream_of(SHARDS - 1)
        await cluster.xadd(poisoned, {"alert_id": alerts[0]["id"], "price": "not a price"})

        async def dead_lettered() -> bool:
            return int(await cluster.xlen(names.dead_letter_stream(poisoned))) == 2  # once by each group (alerts, feed)

        await eventually(dead_lettered)
        for k in range(SHARDS):  # every entry of every shard's streams handled and acknowledged
            for stream in (Trigger.stream_of(k), NotificationResult.stream_of(k)):
                groups: Any = await cluster.xinfo_groups(stream)
                assert sorted((g["name"], g["pending"]) for g in groups) == [
                    (names.GROUP_ALERTS.encode(), 0),
                    (names.GROUP_FEED.encode(), 0),
                ]


async def test_a_row_staged_before_the_shards_goes_to_its_symbols_shard(settings: AlertsSettings, redis: Redis) -> None:
    quiet = settings.model_copy(update={"relay_enabled": False, "consumers_enabled": False, "expiry_enabled": False})
    state = build_state(quiet)
    await prepare(state)
    try:
        assert isinstance(state.store, SqlAlertStore)
        fields = AlertEvent(
            type=AlertEventType.CREATED,
            event_id=uuid.uuid4().hex,
            alert_id=str(uuid.uuid4()),
            user_id="u1",
            email="u1@example.com",
            symbol="ETHBTC",
            condition=Condition.ABOVE,
            target_price=Decimal("0.05"),
            occurred_at=utc_now(),
        ).to_fields()
        async with write_session(state.store.sessions) as session:
            repository.add_outbox(session, UNSHARDED_STREAM, fields)
        assert await OutboxRelay(state.store, state.redis, shards=quiet.shards).drain() == 1
        assert await redis.exists(UNSHARDED_STREAM) == 0
        (event,) = await alert_events(redis)
        assert event.alert_id == fields["alert_id"]
        assert await redis.xlen(alert_events_stream("ETHBTC", quiet.shards)) == 1
    finally:
        await close_state(state)
