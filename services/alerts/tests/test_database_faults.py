"""The API on Postgres after the server dropped its connections: a fresh connection serves the next request."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from .conftest import Tokens

pytestmark = pytest.mark.usefixtures("catalog")


async def terminate_other_backends(url: str) -> int:
    """Terminate every other connection to the database, and wait until each is gone."""
    admin = await asyncpg.connect(url)
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await admin.close()


# No relay: it would otherwise be first to meet the dead connections, and clear them out of the requests' way.
@pytest.mark.parametrize("pg_app", [{"relay_enabled": False}], indirect=True)
async def test_requests_after_the_connections_were_terminated_are_served(
    pg_client: httpx.AsyncClient, tokens: Tokens, postgres_url: str
) -> None:
    headers = tokens.headers("u1")
    created = await pg_client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=headers)
    assert created.status_code == 201
    assert (await pg_client.get("/alerts", headers=headers)).status_code == 200
    assert await terminate_other_backends(postgres_url) > 0
    assert (await pg_client.get("/alerts", headers=headers)).json()["total"] == 1
    assert (await pg_client.get(f"/alerts/{created.json()['id']}", headers=headers)).status_code == 200
    again = await pg_client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "2"}, headers=headers)
    assert again.status_code == 201
    assert (await pg_client.delete(f"/alerts/{created.json()['id']}", headers=headers)).status_code == 204
