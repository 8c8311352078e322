"""The whole pipeline with every service logged in to the compose Redis as its own user: nothing is ever refused.

Redis started from the compose file's own command (`default` off), the users set by the migrate step's
command, each service given the REDIS_URL compose gives it: register → alert → trade → mail, a failed
login, a mail that is retried, and the operator's commands as the CLI's user. Redis's ACL LOG, which
records every refused command, must stay empty.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from deploy_testkit import (
    DUMMY_SECRETS,
    ComposeRedis,
    load_compose,
    on_loopback,
    run_migrate_acl_step,
    service_environment,
)
from e2e_stack import Stack, alert_mails, fire_one_alert, stack_environment

from pricealert.common import acl, names
from pricealert.common.redisconn import connect
from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer
from pricealert.testsupport.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
SERVICES = load_compose()["services"]
# The e2e stack's process names for the compose services (the docs gateway runs as `gateway`).
PROCESSES = {
    "auth": "auth",
    "alerts": "alerts",
    "alerts-worker": "alerts-worker",
    "ingest": "ingest",
    "evaluator": "evaluator",
    "notifier": "notifier",
    "gateway": "docs",
}


def _environment(name: str) -> dict[str, str | None]:
    return service_environment(SERVICES[name], DUMMY_SECRETS)


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange() as fake:
        yield fake


@pytest.fixture
async def stack(tmp_path: Path, smtp_server: MailboxServer, exchange: FakeExchange) -> AsyncIterator[Stack]:
    redis = ComposeRedis(tmp_path / "redis", DUMMY_SECRETS).start()
    try:
        applied = run_migrate_acl_step(redis.port, tmp_path)
        assert applied.returncode == 0, applied.stderr
        env = stack_environment(
            tmp_path,
            redis_url="",
            database_url="sqlite",
            smtp_port=smtp_server.port,
            exchange_ws_url=exchange.ws_url,
            exchange_rest_url=exchange.rest_url,
        )
        env.update(NOTIFIER_BACKOFF_BASE_S="0.2", NOTIFIER_BACKOFF_MAX_S="0.5")
        own = {
            process: {"REDIS_URL": on_loopback(str(_environment(name)["REDIS_URL"]), redis.port)}
            for process, name in PROCESSES.items()
        }
        running = Stack(tmp_path, env, service_env=own)
        running.start()
        try:
            await running.wait_ready(within=180)  # a loaded machine starts seven Python processes slowly
            running.env["TEST_REDIS_PORT"] = str(redis.port)
            yield running
        finally:
            await asyncio.to_thread(running.stop)
            print(running.logs())  # noqa: T201 - shown when the test fails
    finally:
        redis.stop()


def operator(stack: Stack, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """A `pricealert` command as the operator runs it in the migrate container: REDIS_URL is the CLI's own user."""
    migrate = _environment("migrate")
    env = {
        "REDIS_URL": on_loopback(str(migrate["REDIS_URL"]), port),
        "ENV": "test",
        "ALERTS_DATABASE_URL": stack.env["ALERTS_DATABASE_URL"],
    }  # the stack's database, not compose's
    return subprocess.run(
        [sys.executable, "-m", "pricealert.cli", *args],
        env={**os.environ, **env},
        cwd=stack.directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_every_service_works_as_its_own_redis_user_and_nothing_is_refused(
    stack: Stack, exchange: FakeExchange, smtp_server: MailboxServer
) -> None:
    port = int(stack.env["TEST_REDIS_PORT"])
    admin = connect(f"redis://{acl.ADMIN_USER}:{DUMMY_SECRETS['REDIS_PASSWORD']}@127.0.0.1:{port}/0")
    try:
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            wrong = await client.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong-pass"})
            assert wrong.status_code == 401  # counted by auth's limiter script, as its own user

        # Registration's verification mail goes through the notifier's account-events consumer; the alert mail's
        # first attempt fails and waits in the notifier's retry queue.
        alert = await fire_one_alert(
            stack.url,
            exchange,
            smtp_server,
            email="ada@example.com",
            symbol="BTCUSDT",
            target="100000",
            trade_price="100012.5",
            failed_attempts=1,
        )
        assert alert["status"] == "triggered" and len(alert_mails(smtp_server)) == 1

        streams = operator(stack, port, "streams", "--json")
        assert streams.returncode == 0, streams.stderr
        shards = operator(stack, port, "shards", "--json")  # the shard leases and members, as the CLI's user
        assert shards.returncode == 0, shards.stderr
        beats = operator(stack, port, "health", "--json")  # every worker's heartbeat, read as the CLI's user
        assert beats.returncode == 0 and all(f'"{w}"' in beats.stdout for w in ("ingest", "evaluator", "notifier"))
        resync = operator(stack, port, "alerts", "resync")  # re-publishes alert events as the CLI's user
        assert resync.returncode == 0, resync.stderr

        alert_events = [names.alert_events_stream(k) for k in range(int(await admin.get(names.SHARD_COUNT_KEY)))]

        async def no_pending() -> bool:
            for stream in alert_events:
                groups = await admin.xinfo_groups(stream) if await admin.exists(stream) else []
                if not all(int(group["pending"]) == 0 and group.get("lag", 0) == 0 for group in groups):
                    return False
            return True

        await eventually(no_pending, within=20, what="the resynced alert events consumed")
        await asyncio.sleep(1.5)  # a few more rounds of every loop: reclaims, heartbeats, lag gauges

        refused = await admin.execute_command("ACL", "LOG")  # type: ignore[no-untyped-call]
        assert refused == [], [(e[b"username"], e[b"object"], e[b"reason"], e[b"count"]) for e in refused]
        dead = [names.dead_letter_stream(names.triggers_stream(k)) for k in range(len(alert_events))]
        assert [await admin.xlen(stream) for stream in dead] == [0] * len(dead)
    finally:
        await admin.aclose()
