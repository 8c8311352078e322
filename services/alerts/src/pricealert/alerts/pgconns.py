"""A few asyncpg connections for the request paths, handed out last-in first-out.

asyncpg's Pool costs about 0.1 ms of CPU per acquire and release (a proxy object, a shielded task, a reset
hook): as much as the one statement each request path runs. This keeps only what those paths need: open
connections on demand up to a bound, queue callers beyond it, and drop a connection that a failure or a
cancellation may have left in doubt. A connection the server closed (a restart, pg_terminate_backend) is
dropped, never handed out; losing one mid-statement, failing to open one, or a statement timeout is
`database_unavailable` (503).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from pricealert.common.db import UNREACHABLE
from pricealert.common.errors import database_away, database_unavailable, database_unavailable_for

T = TypeVar("T")
CLOSE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
# Unreachable, or the server ended this backend (shut down, crashed, pg_terminate_backend): not a bug here.
CONNECTION_LOST = (*UNREACHABLE, asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CrashShutdownError)


class Connections:
    """At most `max_size` connections to `dsn`; idle ones are reused newest first."""

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int,
        server_settings: dict[str, str] | None = None,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self.server_settings = server_settings or {}
        self.connect_options = connect_options or {}  # more arguments of asyncpg.connect (statement_cache_size)
        self._idle: list[Any] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    @property
    def size(self) -> int:
        """How many connections are open (idle or in use)."""
        return self._open

    async def start(self) -> None:
        """Open one connection, so that a wrong address or a database still starting fails here."""
        self.release(await self.acquire())

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connections are closed"))
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        await asyncio.gather(*(c.close(timeout=CLOSE_TIMEOUT_S) for c in idle), return_exceptions=True)

    async def acquire(self) -> Any:
        """An idle connection, a new one while below the bound, or the next one given back."""
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the connections are closed")
            if self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                connection.terminate()  # closed by the server while idle
                self._open -= 1
                continue
            if self._open < self.max_size:
                self._open += 1
                try:
                    return await asyncpg.connect(
                        self.dsn,
                        server_settings=self.server_settings,
                        timeout=CONNECT_TIMEOUT_S,
                        **self.connect_options,
                    )
                except BaseException as exc:
                    self._open -= 1
                    self._hand_over(None)
                    if isinstance(exc, CONNECTION_LOST):
                        raise database_unavailable() from exc
                    raise
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # Handed over just as this caller was cancelled: pass it on.
                    handed = waiter.result()
                    if handed is None:
                        self._hand_over(None)
                    else:
                        self.release(handed)
                raise
            if connection is not None:
                return connection
            # None: a connection was dropped, so there is room to open one.

    def release(self, connection: Any) -> None:
        """Give a connection back; one that is closed or still inside a transaction is dropped instead."""
        if self._closed or connection.is_closed() or connection.is_in_transaction():
            self.discard(connection)
        elif not self._hand_over(connection):
            self._idle.append(connection)

    def discard(self, connection: Any) -> None:
        """Close a connection whose state is in doubt (the server rolls back what it held)."""
        connection.terminate()
        self._open -= 1
        self._hand_over(None)

    def _hand_over(self, connection: Any) -> bool:
        """Wake the longest waiter with `connection` (None: open one yourself); False when none waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def run(self, statement: Callable[[Any], Awaitable[T]]) -> T:
        """Run `statement` on a connection and give it back (dropped if cancelled mid-statement)."""
        connection = await self.acquire()
        try:
            result = await statement(connection)
        except Exception as exc:
            if isinstance(exc, CONNECTION_LOST) or connection.is_closed():
                self.discard(connection)
                raise database_unavailable() from exc
            self.release(connection)
            if database_away(exc):  # a statement or lock timeout: the connection itself is fine
                raise database_unavailable_for(exc) from exc
            raise
        except BaseException:
            # A cancelled statement may still be running on the server: the connection is not reusable yet.
            self.discard(connection)
            raise
        self.release(connection)
        return result

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """The rows of `query`."""
        return await self.run(lambda c: c.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Any:
        """The first row of `query`, or None."""
        return await self.run(lambda c: c.fetchrow(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        """The first value of the first row of `query`, or None."""
        return await self.run(lambda c: c.fetchval(query, *args))
