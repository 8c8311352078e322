"""While the auth database is away every route that needs it answers 503 database_unavailable; then it serves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from auth_testkit import PASSWORD, assert_error, client_for, make_settings, register, register_and_login, running_app

from pricealert.devstack.servers import PostgresServer


async def test_register_and_login_answer_503_while_postgres_is_down(
    postgres_server: PostgresServer, redis_url: str, tmp_path: Path
) -> None:
    database_url = await asyncio.to_thread(postgres_server.create_database, "auth")
    async with running_app(make_settings(database_url, redis_url, tmp_path)) as app, client_for(app) as client:
        await register_and_login(client, "before@example.com")
        await asyncio.to_thread(postgres_server.stop, mode="fast")
        for answer in (
            await client.post("/auth/register", json={"email": "during@example.com", "password": PASSWORD}),
            await client.post("/auth/login", json={"email": "before@example.com", "password": PASSWORD}),
        ):
            assert_error(answer, 503, "database_unavailable")
            assert answer.headers["retry-after"] == "1"
        await asyncio.to_thread(postgres_server.start)
        await register(client, "after@example.com")
        await register_and_login(client, "after2@example.com")


async def test_register_and_login_answer_503_within_the_statement_timeout_while_users_is_locked(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(postgres_url, redis_url, tmp_path, db_statement_timeout_s=0.5)
    async with running_app(settings) as app, client_for(app) as client:
        await register_and_login(client, "before@example.com")
        holder = await asyncpg.connect(postgres_url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                async with asyncio.timeout(5):  # the timeout is 0.5 s
                    answers = (
                        await client.post("/auth/register", json={"email": "during@example.com", "password": PASSWORD}),
                        await client.post("/auth/login", json={"email": "before@example.com", "password": PASSWORD}),
                    )
                for answer in answers:
                    assert_error(answer, 503, "database_unavailable")
                    assert answer.headers["retry-after"] == "1"
        finally:
            await holder.close()
        await register_and_login(client, "after@example.com")
