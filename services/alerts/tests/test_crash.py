"""Process-level faults: a SIGKILL between commit and publish, and the resync command, as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from alerts_testkit import Tokens, alert_events, alert_events_count, alert_events_streams, running
from redis.asyncio import Redis

from pricealert.alerts.settings import AlertsSettings
from pricealert.common.events import AlertEventType
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


def service_env(settings: AlertsSettings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ALERTS_DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(settings.token_root_public_key_file),
        "ENV": "test",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def alerts_process(settings: AlertsSettings, **extra: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = service_env(settings, ALERTS_PORT=str(port), ALERTS_HOST="127.0.0.1", **extra)
    process = subprocess.Popen(
        [sys.executable, "-m", "pricealert.alerts"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, timeout=30)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


async def test_event_committed_before_a_kill_is_delivered_after_restart(
    settings: AlertsSettings, tokens: Tokens, redis: Redis
) -> None:
    # The first process never relays: every event it commits is still in the outbox when it dies.
    with alerts_process(settings, ALERTS_RELAY_ENABLED="false") as (process, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.post(
                "/alerts", json={"symbol": "BTCUSDT", "target_price": "70000"}, headers=tokens.headers("u1")
            )
        assert response.status_code == 201, response.text
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
    alert_id = response.json()["id"]
    assert await alert_events_count(redis) == 0

    async with running(settings):

        async def delivered() -> bool:
            return await alert_events_count(redis) > 0

        await eventually(delivered)
    events = await alert_events(redis)
    assert [(e.type, e.alert_id) for e in events] == [(AlertEventType.CREATED, alert_id)]


async def test_resync_command_republishes_active_alerts(settings: AlertsSettings, tokens: Tokens, redis: Redis) -> None:
    async with running(settings) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client:
            for price in ("1", "2"):
                response = await client.post(
                    "/alerts", json={"symbol": "ETHUSDT", "target_price": price}, headers=tokens.headers("u1")
                )
                assert response.status_code == 201

        async def relayed() -> bool:
            return await alert_events_count(redis) == 2

        await eventually(relayed)
    await redis.delete(*alert_events_streams())
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pricealert.alerts", "resync"],
        env=service_env(settings),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    events = await alert_events(redis)
    assert sorted(e.target_price for e in events) == [1, 2]
    assert {e.type for e in events} == {AlertEventType.CREATED}
