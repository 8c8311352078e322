"""On Postgres each user's alerts are counted by status in a table a trigger keeps; the counts stay exact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from alerts_testkit import Tokens

from pricealert.alerts.maintenance import MIGRATIONS, VERSION_TABLE
from pricealert.common.db import async_url, upgrade_database

pytestmark = pytest.mark.usefixtures("catalog")

COUNTED = "SELECT user_id, status, count(*)::int FROM alerts GROUP BY user_id, status"
KEPT = "SELECT user_id, status, n FROM alerts_status_counts WHERE n <> 0"


async def rows(url: str, query: str) -> set[tuple[str, str, int]]:
    connection = await asyncpg.connect(url)
    try:
        return {tuple(r) for r in await connection.fetch(query)}  # type: ignore[misc]
    finally:
        await connection.close()


async def test_counts_follow_creates_deletes_and_status_changes(
    pg_client: httpx.AsyncClient, tokens: Tokens, postgres_url: str
) -> None:
    async def create(user: str) -> httpx.Response:
        return await pg_client.post(
            "/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=tokens.headers(user)
        )

    ids = [(await create("u1")).json()["id"] for _ in range(3)]
    await create("u2")
    assert (await create("u1")).status_code == 409
    assert (await pg_client.delete(f"/alerts/{ids[0]}", headers=tokens.headers("u1"))).status_code == 204
    assert (await create("u1")).status_code == 201
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("UPDATE alerts SET status = 'triggered' WHERE id = $1", ids[1])
        await connection.execute("UPDATE alerts SET name = 'renamed' WHERE id = $1", ids[2])
        await connection.execute("UPDATE alerts SET user_id = 'u3' WHERE id = $1", ids[2])
    finally:
        await connection.close()
    assert (
        await rows(postgres_url, KEPT)
        == await rows(postgres_url, COUNTED)
        == {("u1", "active", 1), ("u1", "deleted", 1), ("u1", "triggered", 1), ("u2", "active", 1), ("u3", "active", 1)}
    )
    headers = tokens.headers("u1")
    for query, total in (
        ("", 3),
        ("?status=active", 1),
        ("?status=expired", 0),
        ("?symbol=BTCUSDT", 3),
        ("?page=5&page_size=1", 3),
    ):
        assert (await pg_client.get(f"/alerts{query}", headers=headers)).json()["total"] == total, query
    assert (await create("u1")).status_code == 201
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("DELETE FROM alerts WHERE user_id = 'u2'")
        assert ("u2", "active", 1) not in await rows(postgres_url, KEPT)
        await connection.execute("TRUNCATE alerts")
    finally:
        await connection.close()
    assert await rows(postgres_url, KEPT) == set()


async def test_concurrent_creates_keep_the_count_and_the_limit(
    pg_client: httpx.AsyncClient, tokens: Tokens, postgres_url: str
) -> None:
    headers = tokens.headers("u1")
    answers = await asyncio.gather(
        *(
            pg_client.post("/alerts", json={"symbol": "ETHUSDT", "target_price": str(i + 1)}, headers=headers)
            for i in range(12)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] * 3 + [409] * 9
    assert await rows(postgres_url, KEPT) == {("u1", "active", 3)}


async def test_the_migration_counts_existing_alerts(postgres_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(postgres_url).replace("%", "%%"))
    config.attributes["version_table"] = VERSION_TABLE
    await asyncio.to_thread(command.upgrade, config, "0002_alerts_fast_paths")
    connection = await asyncpg.connect(postgres_url)
    try:
        for n, (user, status) in enumerate([("a", "active"), ("a", "active"), ("a", "expired"), ("b", "deleted")]):
            await connection.execute(
                "INSERT INTO alerts (id, user_id, email, symbol, condition, target_price, status, created_at, "
                "updated_at) VALUES ($1, $2, 'x@example.com', 'BTCUSDT', 'above', '1', $3, $4, $4)",
                f"id-{n}",
                user,
                status,
                datetime.now(UTC),
            )
        await asyncio.to_thread(upgrade_database, postgres_url, MIGRATIONS, VERSION_TABLE)
        assert await rows(postgres_url, KEPT) == {("a", "active", 2), ("a", "expired", 1), ("b", "deleted", 1)}
        await asyncio.to_thread(command.downgrade, config, "0002_alerts_fast_paths")
        # Back on 0002 the create function counts rows again.
        over_limit = await connection.fetchval(
            "SELECT alerts_create('alerts:a', 2, 'id-9', 'a', 'x@example.com', 'BTCUSDT', 'above', '1', NULL, "
            "now(), NULL, 'stream', '{}')"
        )
        assert over_limit == 2
    finally:
        await connection.close()
