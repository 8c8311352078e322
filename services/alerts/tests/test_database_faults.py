"""The API on Postgres when the server drops its connections or goes away: 503 meanwhile, served again after."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from alerts_testkit import TokenRoot, Tokens, client_of, running

from pricealert.alerts.settings import AlertsSettings
from pricealert.devstack.servers import PostgresServer

pytestmark = pytest.mark.usefixtures("catalog")


async def terminate_other_backends(url: str) -> int:
    """Terminate every other connection to the database, and wait until each is gone."""
    admin = await asyncpg.connect(url)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
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


async def test_while_postgres_is_down_every_route_answers_503_then_serves_again(
    redis_url: str, tokens: Tokens, token_root: TokenRoot, postgres_server: PostgresServer
) -> None:
    database_url = await asyncio.to_thread(postgres_server.create_database, "alerts")
    settings = AlertsSettings(
        database_url=database_url,
        redis_url=redis_url,
        consumer_name="alerts-test",
        token_root_public_key_file=token_root.public_key_file,
        catalog_min_refresh_s=0,
        consumers_enabled=False,
        expiry_enabled=False,
    )
    headers = tokens.headers("u1")
    async with running(settings) as app, client_of(app) as client:
        alert = (await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=headers)).json()
        await asyncio.to_thread(postgres_server.stop, mode="fast")
        answers = [
            await client.get("/alerts", headers=headers),
            await client.get(f"/alerts/{alert['id']}", headers=headers),
            await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "2"}, headers=headers),
            await client.delete(f"/alerts/{alert['id']}", headers=headers),
        ]
        for answer in answers:
            assert (answer.status_code, answer.json()["error"]["code"]) == (503, "database_unavailable"), (
                answer.request.url
            )
            assert answer.headers["retry-after"] == "1"
        await asyncio.to_thread(postgres_server.start)
        assert (await client.get("/alerts", headers=headers)).json()["total"] == 1
        assert (await client.delete(f"/alerts/{alert['id']}", headers=headers)).status_code == 204


@pytest.mark.parametrize("pg_app", [{"db_statement_timeout_s": 0.5}], indirect=True)
async def test_while_the_alerts_table_is_locked_every_route_answers_503_within_its_statement_timeout(
    pg_client: httpx.AsyncClient, tokens: Tokens, postgres_url: str
) -> None:
    headers = tokens.headers("u1")
    alert = (await pg_client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=headers)).json()
    holder = await asyncpg.connect(postgres_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
            for method, url, body in (
                ("GET", "/alerts", None),
                ("GET", f"/alerts/{alert['id']}", None),
                ("POST", "/alerts", {"symbol": "BTCUSDT", "target_price": "2"}),
                ("PATCH", f"/alerts/{alert['id']}", {"target_price": "3"}),
                ("DELETE", f"/alerts/{alert['id']}", None),
            ):
                async with asyncio.timeout(3):  # the timeout is 0.5 s: never the lock's 20 s
                    answer = await pg_client.request(method, url, json=body, headers=headers)
                assert (answer.status_code, answer.json()["error"]["code"]) == (503, "database_unavailable"), url
                assert answer.headers["retry-after"] == "1"
                assert "in time" in answer.json()["error"]["message"]
    finally:
        await holder.close()
    assert (await pg_client.delete(f"/alerts/{alert['id']}", headers=headers)).status_code == 204
