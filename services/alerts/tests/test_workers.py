"""The API's processes serve HTTP only and die with their parent; the worker process relays, consumes and reports."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from alerts_testkit import SHARDS, TokenRoot, Tokens, alert_events, alert_events_count, stream_of
from redis.asyncio import Redis

from pricealert.common.events import AlertEventType, Trigger
from pricealert.common.publisher import publish
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.testsupport.polling import eventually

from .test_events import trigger_for

pytestmark = pytest.mark.usefixtures("catalog")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pricealert.alerts", command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def test_api_processes_serve_the_worker_relays_and_consumes_and_none_outlives_its_parent(
    postgres_url: str, redis_url: str, tokens: Tokens, token_root: TokenRoot, redis: Redis
) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "ALERTS_DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "ENV": "test",
        "LOG_LEVEL": "WARNING",
        "ALERTS_PORT": str(port),
        "ALERTS_WORKERS": "2",
        "ALERTS_CONSUMER_BLOCK_MS": "100",
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(token_root.public_key_file),
    }
    api = start("serve", env)
    worker = None
    try:
        await asyncio.to_thread(wait_for_port, port, timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # Many requests, so that both processes (sharing one listening socket) answer some.
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
            # The API relays nothing: the events wait in the outbox for the worker.
            await asyncio.sleep(0.5)
            assert await alert_events_count(redis) == 0

            worker = start("worker", {**env, "METRICS_PORT": str(metrics_port)})

            async def all_relayed() -> bool:
                return {e.alert_id for e in await alert_events(redis)} == ids

            await eventually(all_relayed, within=20)
            assert {e.type for e in await alert_events(redis)} == {AlertEventType.CREATED}

            first = created[0].json()
            await publish(redis, stream_of(Trigger, first["symbol"]), trigger_for(first))

            async def triggered() -> bool:
                shown = await client.get(f"/alerts/{first['id']}", headers=tokens.headers("u1"))
                return bool(shown.json()["status"] == "triggered")

            await eventually(triggered, within=10)

            # The worker's own /metrics: what it relayed, and one figure per stream and group it consumes (2 per shard
            # in group alerts, 3 in group feed).
            async def reported() -> bool:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                relayed = re.search(r"^pricealert_alerts_outbox_relayed_total (\S+)$", text, re.MULTILINE)
                pending = re.findall(r"^pricealert_stream_group_pending\{(.*)\} ", text, re.MULTILINE)
                no_pid = all("pid=" not in labels for labels in pending)
                return relayed is not None and float(relayed[1]) == 20 and len(pending) == 5 * SHARDS and no_pid

            await eventually(reported, within=20)
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
        api.send_signal(signal.SIGKILL)
        await asyncio.to_thread(api.wait, 10)

        async def closed() -> bool:
            return not await asyncio.to_thread(port_open, port)

        await eventually(closed, within=20)
    finally:
        stop(api)
        if worker is not None:
            stop(worker)
