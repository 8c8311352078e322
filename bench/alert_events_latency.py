"""Alert-create → alert-events latency: from sending POST /alerts until its alert.created entry is in the stream.

auth and alerts (API and, where the tree has one, its worker) run as their own processes on real Postgres and
Redis. One user creates alerts one at a time, a random pause between them (so that no create lines up with a
relay's schedule); each latency is measured from the request's start to the entry read back with XREAD BLOCK from
the alert-events stream of BTCUSDT's shard.
Run: `uv run python bench/alert_events_latency.py [--samples 300]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from pricealert.common import names
from pricealert.common.events import AlertEvent, CatalogSnapshot, CatalogSymbol
from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR
from pricealert.common.publisher import publish
from pricealert.common.redisconn import connect_to
from pricealert.common.shards import DEFAULT_SHARDS, shard_of
from pricealert.devstack.ports import free_port, wait_for_port
from pricealert.devstack.processes import SERVICE_MODULES, ServiceProcess
from pricealert.devstack.servers import PostgresServer, RedisServer, create_database, temp_dir


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(samples: int) -> dict[str, Any]:
    """Start the processes, create `samples` alerts, return the latency summary in milliseconds."""
    work = temp_dir("bench-alert-events-")
    redis_server = RedisServer(work / "redis").start()
    postgres = PostgresServer(work / "pg").start()
    redis = connect_to(redis_server.url)
    auth_port, alerts_port = free_port(), free_port()
    env = {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": create_database(postgres.url(), "bench"),
        "AUTH_KEY_DIR": str(work / "keys"),
        "TOKEN_ROOT_PUBLIC_KEY_FILE": str(work / "keys" / ROOT_PUBLIC_KEY_IN_KEY_DIR),
        "AUTH_BCRYPT_ROUNDS": "4",
        "AUTH_PORT": str(auth_port),
        "ALERTS_PORT": str(alerts_port),
        "ALERTS_WORKERS": "2",
        "LOG_LEVEL": "WARNING",
        "ALERTS_MAX_ACTIVE_PER_USER": "100000",
    }
    names_ = ["auth", "alerts", *(["alerts-worker"] if "alerts-worker" in SERVICE_MODULES else [])]
    processes = [ServiceProcess(n, env, log_path=work / f"{n}.log").start() for n in names_]
    try:
        symbol = CatalogSymbol(
            symbol="BTCUSDT", min_price=Decimal("0.01"), max_price=Decimal("1000000"), tick_size=Decimal("0.01")
        )
        await publish(redis, names.SYMBOL_CATALOG, CatalogSnapshot.build([symbol], datetime.now(UTC)))
        for port in (auth_port, alerts_port):
            await asyncio.to_thread(wait_for_port, port, timeout=60)
        async with httpx.AsyncClient(timeout=30) as client:
            credentials = {"email": "latency@example.com", "password": "bench-password-1"}
            (await client.post(f"http://127.0.0.1:{auth_port}/auth/register", json=credentials)).raise_for_status()
            login = await client.post(f"http://127.0.0.1:{auth_port}/auth/login", json=credentials)
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            url = f"http://127.0.0.1:{alerts_port}/alerts"
            stream = AlertEvent.stream_of(shard_of(symbol.symbol, DEFAULT_SHARDS))  # SHARDS is not set
            last = "$"
            latencies: list[float] = []
            for n in range(samples + 10):  # the first ten warm up (catalog, connections)
                await asyncio.sleep(random.uniform(0.02, 0.06))
                started = time.perf_counter()
                response = await client.post(
                    url, json={"symbol": "BTCUSDT", "target_price": str(100 + n)}, headers=headers
                )
                response.raise_for_status()
                alert_id = response.json()["id"]
                seen = False
                while not seen:
                    read: Any = await redis.xread({stream: last}, block=5000, count=100)
                    if not read:
                        raise TimeoutError(f"alert {alert_id} not in {stream} within 5 s")
                    for entry_id, fields in read[0][1]:
                        last = entry_id
                        seen = seen or AlertEvent.from_fields(fields).alert_id == alert_id
                if n >= 10:
                    latencies.append((time.perf_counter() - started) * 1000)
        return {
            "samples": len(latencies),
            "processes": names_,
            "p50_ms": round(percentile(latencies, 0.5), 2),
            "p95_ms": round(percentile(latencies, 0.95), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies), 2),
            "mean_ms": round(sum(latencies) / len(latencies), 2),
        }
    finally:
        for process in reversed(processes):
            process.stop()
        await redis.aclose()
        redis_server.stop()
        postgres.stop()


def main() -> None:
    """Parse the options, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    print(json.dumps(asyncio.run(measure(parser.parse_args().samples)), indent=2))


if __name__ == "__main__":
    main()
