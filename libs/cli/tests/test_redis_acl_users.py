"""Each Redis user does its service's real Redis work, and nothing of any other service's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_testkit import dead_letter_via_consumer, json_of, run_cli, tick_fields, trigger_fields
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from names_testkit import sample_keys
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ResponseError
from redisacl_testkit import PASSWORDS, AclRedis, concrete, user_url

from pricealert.common import acl, names
from pricealert.common.consumer import ConsumerOptions, Message, PermanentError, StreamConsumer
from pricealert.common.keytrust import sign_statement
from pricealert.common.ownership import ShardOwnership
from pricealert.common.publisher import publish, publish_many
from pricealert.common.shards import ShardCountMismatch, agree_on_shard_count
from pricealert.common.tokens import KeyRing
from pricealert.testsupport.polling import eventually

CONSUMERS = [(role, concrete(stream)) for role in acl.SERVICES for stream in role.consumes]
WRITTEN_STREAMS = [
    (role, concrete(stream))
    for role in acl.SERVICES
    for stream in role.writes
    if names.stream_kind(concrete(stream)) in names.STREAM_MAXLEN
]
TRIGGERS = names.triggers_stream(5)
TICKS = names.ticks_stream(5)
ROOT = Ed25519PrivateKey.generate()
SIGNING_KEY = sign_statement(
    ROOT,
    kid="k1",
    algorithm="EdDSA",
    issued_at=datetime.now(UTC),
    valid_until=datetime.now(UTC) + timedelta(hours=1),
    public_pem=Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode(),
)


@pytest.mark.parametrize(("role", "stream"), CONSUMERS, ids=[f"{r.name}-{s}" for r, s in CONSUMERS])
async def test_a_consumer_runs_the_consumer_loop_on_its_stream_as_its_own_user(
    acl_redis: AclRedis, admin: Redis, role: acl.Role, stream: str
) -> None:
    await admin.xadd(stream, {"n": "1"})
    await admin.xadd(stream, {"n": "poison"})

    async def handle(messages: Sequence[Message]) -> None:
        if any(m.fields["n"] == "poison" for m in messages):
            raise PermanentError("refused")

    async with acl_redis.client(role) as redis:
        options = ConsumerOptions(
            stream,
            f"group-{role.name}",
            "host-1",
            service=role.name,
            batch_size=1,
            reclaim_idle_ms=0,
            reclaim_every_s=0,
        )
        loop = StreamConsumer(redis, options, handle)
        await loop.ensure_group()
        await loop.ensure_group()  # BUSYGROUP, tolerated
        await redis.xreadgroup(options.group, "host-1", {stream: ">"}, count=1)  # left pending: reclaimed next
        while await loop.poll_once():  # reclaim (XAUTOCLAIM, XPENDING), read, dead letter (MULTI), heartbeat
            pass
        await loop.report_levels()

    assert await admin.xlen(names.dead_letter_stream(stream)) == 1
    assert (await admin.xpending(stream, options.group))["pending"] == 0
    assert await admin.exists(names.health_key(role.name, "host-1"))
    health = await run_cli("health", role.name, "--consumer", "host-1", env={"REDIS_URL": acl_redis.url_of(role)})
    assert health.exit_code == 0, health.output  # the worker container's own health check


@pytest.mark.parametrize(("role", "stream"), WRITTEN_STREAMS, ids=[f"{r.name}-{s}" for r, s in WRITTEN_STREAMS])
async def test_a_writer_appends_to_its_stream(acl_redis: AclRedis, admin: Redis, role: acl.Role, stream: str) -> None:
    async with acl_redis.client(role) as redis:
        await publish(redis, stream, {"n": "1"})
        await publish_many(redis, stream, [{"n": "2"}, {"n": "3"}])

    assert await admin.xlen(stream) == 3


async def test_alerts_reads_the_signing_keys_and_the_catalog_but_cannot_write_them(
    acl_redis: AclRedis, admin: Redis, tmp_path: Path
) -> None:
    root_file = tmp_path / "root.pem"
    root_file.write_bytes(
        ROOT.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    await publish(admin, names.SIGNING_KEYS, SIGNING_KEY)
    await admin.xadd(names.SYMBOL_CATALOG, {"symbols": "BTCUSDT"})
    async with acl_redis.client(acl.ALERTS) as redis:
        keys = KeyRing(redis, root_file)
        await keys.refresh()
        assert keys.trusts("k1")
        assert await redis.xrevrange(names.SYMBOL_CATALOG, count=1)
        acl_redis.require_selectors()
        with pytest.raises(NoPermissionError):
            await publish(redis, names.SIGNING_KEYS, SIGNING_KEY)
        with pytest.raises(NoPermissionError):
            await redis.xadd(names.SYMBOL_CATALOG, {"symbols": "EVIL"})


@pytest.mark.parametrize("role", [acl.INGEST, acl.EVALUATOR, acl.NOTIFIER], ids=lambda r: r.name)
async def test_no_worker_reads_or_writes_the_signing_keys(acl_redis: AclRedis, admin: Redis, role: acl.Role) -> None:
    async with acl_redis.client(role) as redis:
        with pytest.raises(NoPermissionError):
            await publish(redis, names.SIGNING_KEYS, SIGNING_KEY)
        with pytest.raises(NoPermissionError):
            await redis.xrange(names.SIGNING_KEYS)
    assert await admin.xlen(names.SIGNING_KEYS) == 0


@pytest.mark.parametrize("role", [acl.ALERTS, acl.INGEST, acl.EVALUATOR, acl.NOTIFIER, acl.CLI], ids=lambda r: r.name)
async def test_only_auth_touches_the_auth_keys(acl_redis: AclRedis, admin: Redis, role: acl.Role) -> None:
    key = names.login_failures_key("account", "ada@example.com")
    async with acl_redis.client(role) as redis:
        if role is not acl.CLI:  # the operator reads everything of pricealert, and writes none of it
            with pytest.raises(NoPermissionError):
                await redis.get(key)
        for write in (redis.set(key, "0"), redis.delete(key), redis.incr(key)):
            with pytest.raises(NoPermissionError):
                await write
    async with acl_redis.client(acl.AUTH) as auth:
        assert await auth.incr(key) == 1


async def test_a_script_is_checked_key_by_key_even_for_keys_it_names_itself(acl_redis: AclRedis) -> None:
    auth_key = names.login_failures_key("account", "ada@example.com")
    done, owner = names.eval_done_key(3), names.shard_owner_key("evaluator", 3)
    async with acl_redis.client(acl.EVALUATOR) as redis:
        # A fenced evaluation script: its shard's lease and index keys, declared in KEYS.
        script = "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', 0); return redis.call('GET', KEYS[1])"
        assert await redis.eval(script, 2, owner, done) is None
        with pytest.raises(ResponseError, match=r"(?i)can't (access|run)|no permissions"):
            await redis.eval("return redis.call('DEL', ARGV[1])", 0, auth_key)
        with pytest.raises(ResponseError, match=r"(?i)can't (access|run)|no permissions"):
            await redis.eval("return redis.call('SADD', KEYS[1], 'BTCUSDT')", 1, names.ingest_symbols_key(3))
        with pytest.raises(ResponseError, match=r"(?i)can't (access|run)|no permissions"):
            await redis.eval("return redis.call('GET', KEYS[1])", 1, names.shard_owner_key("ingest", 3))


@pytest.mark.parametrize("role", [acl.INGEST, acl.NOTIFIER, acl.ALERTS, acl.EVALUATOR], ids=lambda r: r.name)
async def test_a_consumer_cannot_append_to_the_streams_it_only_consumes(
    acl_redis: AclRedis, admin: Redis, role: acl.Role
) -> None:
    acl_redis.require_selectors()
    async with acl_redis.client(role) as redis:
        # (alerts also consumes the alert-events it writes: its feed writer reads them in group feed)
        for stream in map(concrete, [s for s in role.consumes if s not in role.writes]):
            with pytest.raises(NoPermissionError):  # e.g. ingest forging a trigger, which the notifier would mail
                await redis.xadd(stream, trigger_fields(1))
            for destructive in (redis.xtrim(stream, 0), redis.delete(stream), redis.set(stream, "x")):
                with pytest.raises(NoPermissionError):
                    await destructive
    assert await admin.xlen(TRIGGERS) == 0 and await admin.xlen(TICKS) == 0


@pytest.mark.parametrize("role", acl.SERVICES, ids=lambda r: r.name)
async def test_no_service_flushes_lists_keys_or_reconfigures(acl_redis: AclRedis, role: acl.Role) -> None:
    async with acl_redis.client(role) as redis:
        for command in (
            ("FLUSHALL",),
            ("KEYS", "*"),
            ("SCAN", "0"),
            ("CONFIG", "GET", "*"),
            ("ACL", "LIST"),
            ("SCRIPT", "FLUSH"),
            ("SORT", TICKS),
            ("SHUTDOWN",),
            ("MONITOR",),
            ("CLIENT", "LIST"),
            ("INFO",),
        ):
            with pytest.raises(NoPermissionError):
                await redis.execute_command(*command)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("role", acl.ROLES, ids=lambda r: r.name)
async def test_every_key_outside_a_users_patterns_is_refused(acl_redis: AclRedis, role: acl.Role) -> None:
    async with acl_redis.client(role) as redis:
        for origin, key in sample_keys().items():
            if role.reaches(key):
                continue
            with pytest.raises(NoPermissionError):
                await redis.exists(key)
                pytest.fail(f"{role.user} reached {key} ({origin})")


async def test_the_cli_user_inspects_and_repairs_dead_letters(acl_redis: AclRedis, admin: Redis) -> None:
    await dead_letter_via_consumer(
        admin,
        TRIGGERS,
        names.GROUP_NOTIFIER,
        "notifier-a",
        [trigger_fields(i) for i in range(3)],
        reason="550 mailbox unavailable",
    )
    await admin.xadd(TICKS, tick_fields(1))
    await publish(admin, names.SIGNING_KEYS, SIGNING_KEY)
    await admin.set(names.SHARD_COUNT_KEY, "8")
    await admin.set(names.shard_owner_key("evaluator", 5), "evaluator-1:abc", px=5000)
    await admin.zadd(names.members_key("evaluator"), {"evaluator-1:abc": 1})
    env = {"REDIS_URL": acl_redis.url_of(acl.CLI)}

    report = await run_cli("streams", "--consumers", "--json", env=env)
    assert report.exit_code == 0, report.output
    by_name = {s["name"]: s for s in json_of(report)["streams"]}
    assert by_name[TRIGGERS]["dead_letters"] == 3 and by_name[names.SIGNING_KEYS]["length"] == 1
    assert by_name[TICKS]["owners"]["evaluator"] == "evaluator-1:abc"
    shards = await run_cli("shards", "--json", env=env)
    assert shards.exit_code == 0, shards.output
    assert json_of(shards)["shard_count"] == 8 and json_of(shards)["members"][0]["shards"] == [5]
    listed = await run_cli("dead-letters", "list", "triggers", "--json", env=env)
    [first, second, _] = [letter["id"] for letter in json_of(listed)["dead_letters"]]
    replayed = await run_cli("dead-letters", "replay", "triggers", "--id", first, env=env)
    dropped = await run_cli("dead-letters", "drop", "triggers", "--shard", "5", "--id", second, env=env)
    assert replayed.exit_code == 0 and dropped.exit_code == 0, replayed.output + dropped.output
    assert await admin.xlen(TRIGGERS) == 4 and await admin.xlen(names.dead_letter_stream(TRIGGERS)) == 1
    assert (await run_cli("health", env=env)).exit_code == 0

    async with acl_redis.client(acl.CLI) as redis:
        acl_redis.require_selectors()
        with pytest.raises(NoPermissionError):  # the operator cannot mint signing keys either
            await publish(redis, names.SIGNING_KEYS, SIGNING_KEY)


async def test_a_wrong_password_or_an_unknown_user_is_refused(acl_redis: AclRedis) -> None:
    from redis.exceptions import AuthenticationError

    from pricealert.common.redisconn import connect

    for url in (
        user_url(acl_redis.url, acl.AUTH.user, PASSWORDS["alerts"]),
        user_url(acl_redis.url, "pricealert-docs", "anything"),
    ):
        client = connect(url)
        with pytest.raises(AuthenticationError):
            await client.ping()
        await client.aclose()


@pytest.mark.parametrize("role", [acl.EVALUATOR, acl.INGEST], ids=lambda r: r.name)
async def test_a_sharded_service_takes_renews_and_releases_its_leases_as_its_own_user(
    acl_redis: AclRedis, admin: Redis, role: acl.Role
) -> None:
    stop = asyncio.Event()
    taken: list[int] = []

    async def work(shard: int, shard_stop: asyncio.Event) -> None:
        taken.append(shard)
        await shard_stop.wait()

    async with acl_redis.client(role) as redis:
        ownership = ShardOwnership(redis, service=role.name, consumer="host-1", count=4, lease_ms=1500, interval_s=0.3)
        running = asyncio.create_task(ownership.run(stop, work))
        await eventually(lambda: len(ownership.owned) == 4, within=10, what="every shard taken", alive=running)
        await asyncio.sleep(0.7)  # renewals (the fenced script) and beats into the members set
        assert await admin.get(names.shard_owner_key(role.name, 0)) == ownership.token.encode()
        other = "ingest" if role is acl.EVALUATOR else "evaluator"
        with pytest.raises(NoPermissionError):  # never the other service's leases
            await redis.set(names.shard_owner_key(other, 0), ownership.token, nx=True, px=1500)
        stop.set()
        await running
    assert sorted(taken) == [0, 1, 2, 3]
    assert not await admin.exists(*(names.shard_owner_key(role.name, k) for k in range(4)))  # released
    assert await admin.zcard(names.members_key(role.name)) == 0


@pytest.mark.parametrize("role", acl.SERVICES, ids=lambda r: r.name)
async def test_every_worker_agrees_on_the_shard_count_as_its_own_user(
    acl_redis: AclRedis, admin: Redis, role: acl.Role
) -> None:
    async with acl_redis.client(role) as redis:
        if role is acl.AUTH:  # no worker: it never needs the shards
            with pytest.raises(NoPermissionError):
                await agree_on_shard_count(redis, 16)
            return
        await agree_on_shard_count(redis, 16)
        await agree_on_shard_count(redis, 16)
        with pytest.raises(ShardCountMismatch):
            await agree_on_shard_count(redis, 8)
    assert await admin.get(names.SHARD_COUNT_KEY) == b"16"


async def test_an_exclusive_consumer_takes_over_pending_entries_as_its_own_user(
    acl_redis: AclRedis, admin: Redis
) -> None:
    await admin.xadd(TICKS, tick_fields(1))
    await admin.xgroup_create(TICKS, names.GROUP_EVALUATOR, id="0")
    await admin.xreadgroup(names.GROUP_EVALUATOR, "dead-owner", {TICKS: ">"})
    handled: list[str] = []

    async def handle(messages: Sequence[Message]) -> None:
        handled.extend(m.id for m in messages)

    async with acl_redis.client(acl.EVALUATOR) as redis:
        options = ConsumerOptions(TICKS, names.GROUP_EVALUATOR, "new-owner", service="evaluator", exclusive=True)
        stop = asyncio.Event()
        running = asyncio.create_task(StreamConsumer(redis, options, handle).run(stop))
        await eventually(lambda: handled, within=10, what="the dead owner's entry handled", alive=running)
        stop.set()
        await running
    assert (await admin.xpending(TICKS, names.GROUP_EVALUATOR))["pending"] == 0


async def test_the_evaluators_fenced_script_declares_its_ticks_stream_and_acks_in_it(
    acl_redis: AclRedis, admin: Redis
) -> None:
    """The evaluation script has the shard's ticks stream in KEYS (it XACKs there): Redis 7 checks declared keys."""
    entry = await admin.xadd(TICKS, tick_fields(1))
    await admin.xgroup_create(TICKS, names.GROUP_EVALUATOR, id="0")
    await admin.xreadgroup(names.GROUP_EVALUATOR, "host-1", {TICKS: ">"})
    await admin.set(names.shard_owner_key("evaluator", 5), "token-1")
    keys = [names.shard_owner_key("evaluator", 5), TICKS, TRIGGERS, names.eval_done_key(5)]
    script = """
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', 0)
    redis.call('XADD', KEYS[3], '*', 'trigger_id', 't-1')
    return redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
    """
    async with acl_redis.client(acl.EVALUATOR) as redis:
        assert await redis.eval(script, len(keys), *keys, "token-1", names.GROUP_EVALUATOR, entry) == 1
        acl_redis.require_selectors()
        with pytest.raises(NoPermissionError):  # and still no way to forge a tick, in a script or not
            await redis.xadd(TICKS, tick_fields(2))
        with pytest.raises(ResponseError, match=r"(?i)can't (access|run)|no permissions"):
            await redis.eval("return redis.call('XADD', KEYS[1], '*', 'a', '1')", 1, TICKS)
    assert await admin.xlen(TRIGGERS) == 1 and await admin.xlen(TICKS) == 1


async def test_the_notifier_asks_which_users_are_unverified_and_cannot_change_it(
    acl_redis: AclRedis, admin: Redis
) -> None:
    await admin.sadd(names.ACCOUNTS_UNVERIFIED, "user-2")
    async with acl_redis.client(acl.NOTIFIER) as redis:
        assert await redis.smismember(names.ACCOUNTS_UNVERIFIED, ["user-1", "user-2"]) == [0, 1]
        acl_redis.require_selectors()  # Redis 6 has no read-only keys
        for write in (
            redis.srem(names.ACCOUNTS_UNVERIFIED, "user-2"),
            redis.delete(names.ACCOUNTS_UNVERIFIED),
            redis.sadd(names.ACCOUNTS_UNVERIFIED, "user-3"),
        ):
            with pytest.raises(NoPermissionError):
                await write
    assert await admin.smembers(names.ACCOUNTS_UNVERIFIED) == {b"user-2"}
