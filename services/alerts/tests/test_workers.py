"""Several worker processes: one migrates, all serve and relay, one consumes; none outlives a killed parent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from pricealert.alerts.workers import Leader
from pricealert.common import names
from pricealert.common.events import AlertEventType
from pricealert.common.publisher import publish
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.testsupport.polling import eventually

from .conftest import TokenRoot, Tokens, alert_events
from .test_events import trigger_for

pytestmark = pytest.mark.usefixtures("catalog")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_two_workers_serve_relay_consume_and_die_with_their_parent(
    postgres_url: str, redis_url: str, tokens: Tokens, token_root: TokenRoot, redis: Redis
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ALERTS_DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "ENV": "test",
        "LOG_LEVEL": "WARNING",
        "ALERTS_PORT": str(port),
        "ALERTS_WORKERS": "2",
        "ALERTS_CONSUMER_BLOCK_MS": "100",
        "ALERTS_RELAY_POLL_S": "0.1",
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(token_root.public_key_file),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pricealert.alerts"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await asyncio.to_thread(wait_for_port, port, timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # Many requests, so that both workers (sharing one listening socket) answer some.
            created = await asyncio.gather(
                *(
                    client.post(
                        "/alerts",
                        json={"symbol": "BTCUSDT", "target_price": str(100 + i)},
                        headers=tokens.headers("u1"),
                    )
                    for i in range(20)
                )
            )
            assert [r.status_code for r in created] == [201] * 20
            ids = {r.json()["id"] for r in created}

            async def all_relayed() -> bool:
                return {e.alert_id for e in await alert_events(redis)} == ids

            await eventually(all_relayed, within=10)
            assert {e.type for e in await alert_events(redis)} == {AlertEventType.CREATED}

            first = created[0].json()
            await publish(redis, names.TRIGGERS, trigger_for(first))

            async def triggered() -> bool:
                shown = await client.get(f"/alerts/{first['id']}", headers=tokens.headers("u1"))
                return bool(shown.json()["status"] == "triggered")

            await eventually(triggered, within=10)
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)

        async def closed() -> bool:
            return not await asyncio.to_thread(port_open, port)

        await eventually(closed, within=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def test_only_the_lock_holder_runs_the_singletons(tmp_path: Path) -> None:
    ran: list[str] = []

    async def loop(stop: asyncio.Event) -> None:
        ran.append("x")
        await stop.wait()

    async def supervise(name: str, run: object, stop: asyncio.Event) -> None:
        await loop(stop)

    stop = asyncio.Event()
    lock = tmp_path / "leader.lock"
    first = asyncio.create_task(Leader(lock, [("x", loop)], supervise).run(stop))
    second = asyncio.create_task(Leader(lock, [("x", loop)], supervise).run(stop))
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert ran == ["x"]
    # The holder stops: the other one takes over within its retry interval.
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert ran == ["x", "x"]
    stop.set()
    await second
