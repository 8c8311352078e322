"""asyncpg against psycopg 3 on the alerts fast paths' statements, same run, same local Postgres.

The statements are those of pricealert.alerts.pgstore: create (alerts_create: the alert and its outbox row in
one call) and list (a page of 20 with its total). Each driver runs them one at a time on one connection
(latency), then from 32 tasks over 8 connections (throughput, as the API's workers load it); asyncpg through
the fast path's own connection set (pgconns), psycopg through a plain queue of connections. Run:
`uv run python bench/pgdriver_bench.py [--ops 2000] [--out bench/results/pgdriver.json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

from pricealert.alerts.maintenance import MIGRATIONS, VERSION_TABLE
from pricealert.alerts.pgconns import Connections
from pricealert.alerts.pgstore import CREATE_STATEMENT, list_statement
from pricealert.common.db import upgrade_database
from pricealert.devstack.servers import PostgresServer, temp_dir

CREATE = CREATE_STATEMENT
WHERE = "user_id = $1 AND status = $2"
LIST = list_statement(WHERE, f"SELECT coalesce(sum(n), 0) FROM alerts_status_counts WHERE {WHERE}", 2)
USERS = 50
ALERTS_PER_USER = 40
Op = Callable[[int], Awaitable[Any]]


def create_args(n: int) -> list[Any]:
    """The 13 arguments of alerts_create for the n-th alert (spread over USERS users, never at the limit)."""
    user = f"user-{n % USERS}"
    fields = {"type": "alert.created", "alert_id": f"a{n}", "symbol": "BTCUSDT", "target_price": "100000"}
    return [
        f"alerts:{user}",
        1_000_000,
        uuid.uuid4().hex,
        user,
        f"{user}@example.com",
        "BTCUSDT",
        "above",
        f"{100000 + n % 1000}",
        None,
        datetime.now(UTC),
        None,
        "pricealert:alert-events",
        json.dumps(fields, separators=(",", ":")),
    ]


def list_args(n: int) -> list[Any]:
    """A first page of 20 active alerts of one user."""
    return [f"user-{n % USERS}", "active", 20, 0]


def psycopg_sql(sql: str) -> str:
    """The statement with psycopg's named placeholders ($1 -> %(p1)s: the list statement uses $1 twice)."""
    return re.sub(r"\$(\d+)", r"%(p\1)s", sql)


def named(args: list[Any]) -> dict[str, Any]:
    """psycopg's parameters for `psycopg_sql`."""
    return {f"p{i}": value for i, value in enumerate(args, start=1)}


async def asyncpg_ops(dsn: str, connections: int) -> tuple[Op, Op, Callable[[], Awaitable[None]]]:
    """create and list on asyncpg through the fast path's own connections (pgconns: no reset per release)."""
    pool = Connections(dsn, max_size=connections)
    await pool.start()

    async def create(n: int) -> Any:
        return await pool.fetchval(CREATE, *create_args(n))

    async def list_page(n: int) -> Any:
        return await pool.fetch(LIST, *list_args(n))

    return create, list_page, pool.close


async def psycopg_ops(dsn: str, connections: int) -> tuple[Op, Op, Callable[[], Awaitable[None]]]:
    """create and list on psycopg 3 async connections (autocommit; psycopg prepares a statement it repeats)."""
    queue: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
    opened = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(connections)]
    for conn in opened:
        queue.put_nowait(conn)
    create_sql, list_sql = psycopg_sql(CREATE), psycopg_sql(LIST)

    async def run(sql: str, args: list[Any]) -> list[Any]:
        conn = await queue.get()
        try:
            cursor = await conn.execute(sql, named(args))
            return await cursor.fetchall()
        finally:
            queue.put_nowait(conn)

    async def create(n: int) -> Any:
        return await run(create_sql, create_args(n))

    async def list_page(n: int) -> Any:
        return await run(list_sql, list_args(n))

    async def close() -> None:
        for conn in opened:
            await conn.close()

    return create, list_page, close


async def sequential(op: Op, ops: int) -> dict[str, float]:
    """Latency of `ops` calls one after another, in ms."""
    for n in range(50):  # warm-up: connections, prepared statements
        await op(n)
    samples = []
    for n in range(ops):
        started = time.perf_counter()
        await op(n)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
        "ops_per_s": round(ops / (sum(samples) / 1000)),
    }


async def concurrent(op: Op, ops: int, tasks: int = 32) -> dict[str, float]:
    """Throughput of `ops` calls from `tasks` concurrent tasks."""
    counter = iter(range(ops))

    async def worker() -> None:
        for n in counter:
            await op(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return {"ops_per_s": round(ops / (time.perf_counter() - started))}


async def measure(dsn: str, ops: int) -> dict[str, Any]:
    """Both drivers, both statements, latency then throughput; the drivers alternate, twice each."""
    results: dict[str, Any] = {}
    for round_ in range(2):
        for name, factory in (("asyncpg", asyncpg_ops), ("psycopg", psycopg_ops)):
            single = await factory(dsn, 1)
            latency = {"create": await sequential(single[0], ops), "list": await sequential(single[1], ops)}
            await single[2]()
            pooled = await factory(dsn, 8)
            throughput = {"create": await concurrent(pooled[0], ops), "list": await concurrent(pooled[1], ops)}
            await pooled[2]()
            results.setdefault(name, []).append({"round": round_, "latency": latency, "throughput_8x32": throughput})
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=2000, help="calls per statement and measurement")
    parser.add_argument("--out", default="bench/results/pgdriver.json")
    args = parser.parse_args()
    server = PostgresServer(temp_dir("pricealert-pgdriver-")).start()
    try:
        url = server.create_database("pgdriver")
        await asyncio.to_thread(upgrade_database, url, MIGRATIONS, VERSION_TABLE)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        seed, _, close = await asyncpg_ops(dsn, 4)
        await asyncio.gather(*(seed(n) for n in range(USERS * ALERTS_PER_USER)))
        await close()
        result = {
            "ops": args.ops,
            "seeded_alerts": USERS * ALERTS_PER_USER,
            "versions": {"asyncpg": asyncpg.__version__, "psycopg": psycopg.__version__},
            "results": await measure(dsn, args.ops),
        }
    finally:
        server.stop()
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
