"""The whole pipeline on a 3-master Redis Cluster: 2 ingest, 2 evaluator and 2 notifier processes sharing the shards.

Alerts on symbols whose shards lie on every master, a burst of trades across their targets: every alert fires
once, one mail per trigger, nothing left pending, no dead letter.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest
from e2e_stack import CLUSTER_REPLICAS, Stack, alert_mails, create_alert, register_verified

from pricealert.common import names
from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.fakeexchange import default_symbols
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SHARDS = DEFAULT_SHARDS
SPECS = {spec.symbol: spec for spec in default_symbols() if spec.status == "TRADING"}
SYMBOLS = sorted(SPECS)
FIRE = (Decimal("1.01"), Decimal("1.02"), Decimal("1.03"))  # targets a burst at 1.05 times the price crosses
NEVER = Decimal("1.5")  # a target the burst stays under
# (stream kind, group) of every per-shard group the pipeline goes through.
GROUPS = (
    (names.TICKS_KIND, names.GROUP_EVALUATOR),
    (names.ALERT_EVENTS_KIND, names.GROUP_EVALUATOR),
    (names.ALERT_EVENTS_KIND, names.GROUP_INGEST),
    (names.TRIGGERS_KIND, names.GROUP_NOTIFIER),
    (names.TRIGGERS_KIND, names.GROUP_ALERTS),
    (names.TRIGGERS_KIND, names.GROUP_INGEST),
    (names.NOTIFICATION_RESULTS_KIND, names.GROUP_ALERTS),
    (names.ALERT_EVENTS_KIND, names.GROUP_FEED),
    (names.TRIGGERS_KIND, names.GROUP_FEED),
    (names.NOTIFICATION_RESULTS_KIND, names.GROUP_FEED),
)


def price(symbol: str, factor: Decimal) -> str:
    """`factor` times the symbol's listed price, on its tick grid."""
    spec = SPECS[symbol]
    return str((spec.price * factor).quantize(spec.tick_size))


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def owners(redis: RedisClient, service: str) -> dict[int, str]:
    """Shard -> the consumer name of the replica of `service` that holds its lease."""
    held = {}
    for shard in range(SHARDS):
        token = await redis.get(names.shard_owner_key(service, shard))
        if token is not None:
            held[shard] = text(token).rsplit(":", 1)[0]
    return held


async def triggers(redis: RedisClient) -> list[dict[str, str]]:
    """Every trigger of every shard."""
    rows = []
    for shard in range(SHARDS):
        for _, fields in await redis.xrange(names.triggers_stream(shard)):
            rows.append({text(k): text(v) for k, v in fields.items()})
    return rows


async def pending(redis: RedisClient) -> dict[str, int]:
    """Entries delivered but not acknowledged, per stream and group, where there are any."""
    out = {}
    for shard in range(SHARDS):
        for kind, group in GROUPS:
            stream = names.shard_stream(shard, kind)
            if not await redis.exists(stream):
                continue
            groups = {text(g["name"]): int(g["pending"]) for g in await redis.xinfo_groups(stream)}
            if groups.get(group):
                out[f"{stream}/{group}"] = groups[group]
    return out


async def test_a_burst_fires_every_alert_once_with_every_worker_doubled_on_a_cluster(
    cluster_stack: Stack,
    redis_cluster_nodes: RedisClusterNodes,
    redis_cluster_url: str,
    exchange: FakeExchange,
    smtp_server: MailboxServer,
) -> None:
    masters = {redis_cluster_nodes.master_of(names.ticks_stream(shard_of(s, SHARDS))).port for s in SYMBOLS}
    assert len(masters) == 3, "the symbols' shards must lie on every master"
    redis = connect_cluster(redis_cluster_url)
    try:

        async def shared(service: str) -> bool:
            held = await owners(redis, service)
            return len(held) == SHARDS and set(held.values()) == {
                f"{service}-{n}" for n in range(1, CLUSTER_REPLICAS[service] + 1)
            }

        for service in ("evaluator", "ingest"):
            await eventually(partial(shared, service), within=60, what=f"both {service} replicas own shards")

        async with httpx.AsyncClient(base_url=cluster_stack.url, timeout=10) as client:
            await register_verified(client, smtp_server, "burst@example.com", "s3cret-pass")
            login = await client.post("/auth/login", json={"email": "burst@example.com", "password": "s3cret-pass"})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            created: dict[str, tuple[str, Decimal]] = {}
            for symbol in SYMBOLS:
                for factor in (*FIRE, NEVER):
                    body = {"symbol": symbol, "target_price": price(symbol, factor), "condition": "above"}
                    alert = await create_alert(client, headers, body)
                    created[str(alert["id"])] = (symbol, factor)
            wanted = {f"{s.lower()}@trade" for s in SYMBOLS}
            await exchange.wait_for(lambda: wanted <= exchange.subscriptions(), within=30, what="every symbol")
            await asyncio.sleep(1.0)  # the evaluators index the alerts (their events travel beside the subscriptions)

            for _ in range(20):  # the burst: every symbol past its three targets, 20 times over
                for symbol in SYMBOLS:
                    exchange.trade(symbol, price(symbol, Decimal("1.05")))
            firing = {alert_id for alert_id, (_, factor) in created.items() if factor != NEVER}

            async def all_fired() -> bool:
                return firing <= {t["alert_id"] for t in await triggers(redis)}

            await eventually(all_fired, within=60, what="a trigger for every alert the burst crossed")

            async def all_mailed() -> bool:
                return len(alert_mails(smtp_server)) >= len(firing)

            await eventually(all_mailed, within=60, what="a mail for every trigger")

            async def settled() -> bool:
                return not await pending(redis)

            await eventually(settled, within=60, what="no entry pending in any shard's groups")
            await asyncio.sleep(2.0)  # late duplicates would show now
            shown = {
                alert_id: (await client.get(f"/alerts/{alert_id}", headers=headers)).json() for alert_id in created
            }

        fired = Counter(t["alert_id"] for t in await triggers(redis))
        mailed = Counter(str(m.message["Message-ID"]) for m in alert_mails(smtp_server))
        dead = [text(key) async for key in redis.scan_iter(match=f"{names.PREFIX}:*:dead")]
    finally:
        await redis.aclose()

    assert set(fired) == firing and all(n == 1 for n in fired.values()), fired
    assert len(mailed) == len(firing) and all(n == 1 for n in mailed.values()), mailed
    assert dead == []
    for alert_id, (symbol, factor) in created.items():
        want = ("active", None) if factor == NEVER else ("triggered", "sent")
        assert (shown[alert_id]["status"], shown[alert_id]["delivery_status"]) == want, (symbol, factor)
