"""Which database errors mean "away or timed out, retry later" (503, a batch kept in hand) and which are bugs."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from pricealert.common.errors import NotFound, database_away, database_timed_out, database_unavailable


def wrapped(orig: BaseException) -> DBAPIError:
    """`orig` as SQLAlchemy raises a driver error it has no class for."""
    return DBAPIError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout")),
        wrapped(asyncpg.exceptions.LockNotAvailableError("could not obtain lock")),
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")),
        wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
        wrapped(asyncpg.exceptions.TooManyConnectionsError("too many clients")),
        OperationalError("SELECT 1", {}, ConnectionRefusedError()),
        DBAPIError("SELECT 1", {}, RuntimeError("a driver's own words"), connection_invalidated=True),
        wrapped(
            asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
        ),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        database_unavailable(),
    ],
)
def test_away_or_timed_out(error: BaseException) -> None:
    assert database_away(error)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("duplicate key")),
        wrapped(asyncpg.exceptions.UndefinedColumnError("column does not exist")),
        OSError("timestamp out of range for platform time_t"),  # a poison entry's, not the database's
        ValueError("year 10000 is out of range"),
        NotFound("no such alert"),
    ],
)
def test_not_away(error: BaseException) -> None:
    assert not database_away(error)


def test_timeouts_say_so() -> None:
    assert database_timed_out(wrapped(asyncpg.exceptions.QueryCanceledError("statement timeout")))
    assert not database_timed_out(wrapped(asyncpg.exceptions.AdminShutdownError("terminating")))
