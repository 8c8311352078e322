"""A Postgres that ends a connection (stopping, crashing, terminating its backend) is "database away", never a bug.

Ended mid-handshake, asyncpg raises the server's error or a closed connection. Ended while the connection is idle in
a request, between two statements, the backend's FATAL farewell can arrive before the end of the socket: asyncpg
then refuses the next statement with an InternalClientError ("another operation is in progress"), which must mean
a lost connection too (a 503 the client may retry, and the connection dropped), not a 500.
"""

from __future__ import annotations

from typing import Literal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pricealert.common.db import create_engine
from pricealert.common.errors import database_away, database_timed_out
from pricealert.testsupport.pgfaults import ADMIN_SHUTDOWN, eof_held, handshake_cut, terminate_backend

Liveness = Literal["ping", "socket"]
LIVENESS: list[Liveness] = ["ping", "socket"]


@pytest.mark.parametrize("sqlstate", [None, ADMIN_SHUTDOWN], ids=["closed", "admin-shutdown"])
@pytest.mark.parametrize("liveness", LIVENESS)
async def test_a_handshake_cut_short_is_the_database_away(sqlstate: str | None, liveness: Liveness) -> None:
    async with handshake_cut(sqlstate) as url:
        engine = create_engine(url, application_name="pricealert-test", liveness=liveness)
        try:
            with pytest.raises(DBAPIError) as raised:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()
    assert database_away(raised.value)
    assert not database_timed_out(raised.value)


@pytest.mark.parametrize("liveness", LIVENESS)
async def test_a_backend_ended_between_two_statements_is_the_database_away(
    postgres_url: str, liveness: Liveness
) -> None:
    async with eof_held(postgres_url) as url:
        engine = create_engine(url, application_name="pricealert-test", liveness=liveness, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as connection:
                backend = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                await connection.commit()
                await terminate_backend(postgres_url, backend)
                with pytest.raises(DBAPIError) as raised:
                    await connection.execute(text("SELECT 1"))
            assert database_away(raised.value), raised.value
            assert raised.value.connection_invalidated  # SQLAlchemy found it lost too
            async with engine.connect() as connection:  # the ended connection was dropped, not pooled
                assert (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one() != backend
        finally:
            await engine.dispose()
