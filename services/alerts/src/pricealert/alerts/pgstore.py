"""The alert store on Postgres: create, list, get and the relay's take through asyncpg, one round trip each.

SQLAlchemy's session costs about a millisecond of CPU per transaction here (BEGIN, statement, ROLLBACK or
COMMIT, each with its own overhead); these paths answer most API calls. The other writes (deletes, triggers,
deliveries, expiry, resync) are rarer and keep SqlAlertStore's. Listings may read from a replica (`read_url`);
everything else, reads right after a write included, goes to the primary.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pricealert.alerts.models import NewAlert
from pricealert.alerts.outbox import alert_event, alert_events_stream
from pricealert.alerts.pgconns import Connections
from pricealert.alerts.pgrows import COLUMNS, AlertRow, list_statement
from pricealert.alerts.sqlstore import SqlAlertStore
from pricealert.alerts.store import OutboxRow
from pricealert.common.db import NO_STATEMENT_CACHE, server_settings
from pricealert.common.events import AlertEventType
from pricealert.common.settings import Pooler

# The relays' advisory lock (one at a time keeps the stream in id order): any constant, the same in every replica.
RELAY_LOCK_KEY = 0x70A1E27
CREATE_STATEMENT = "SELECT alerts_create($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
# The same with the definition's fields beyond a target price (functions.sql).
CREATE_FULL_STATEMENT = (
    "SELECT alerts_create($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
    "$21)"
)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def is_v1(alert: NewAlert) -> bool:
    """A level alert that fires once, without a message, to the account's email: 13 arguments say it all."""
    return (
        alert.target_price is not None
        and alert.frequency == "once"
        and alert.message is None
        and alert.channel_ids is None
    )


def _pg_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg from a SQLAlchemy URL (drops any "+driver")."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PgAlertStore(SqlAlertStore):
    """The SQLAlchemy store plus a few asyncpg connections for the request paths and the relay's take."""

    def __init__(
        self,
        url: str,
        *,
        shards: int,
        pool_size: int = 10,
        max_overflow: int = 10,
        pg_pool_size: int = 16,
        read_url: str | None = None,
        pooler: Pooler = "none",
        statement_timeout_s: float = 0.0,
    ) -> None:
        super().__init__(
            url,
            shards=shards,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pooler=pooler,
            statement_timeout_s=statement_timeout_s,
        )
        self.statement_timeout_s = statement_timeout_s
        self.dsn = _pg_dsn(url)
        self.read_dsn = None if read_url is None else _pg_dsn(read_url)
        self.pg_pool_size = pg_pool_size
        self.pooler = pooler
        self._connections: Connections | None = None
        self._reads: Connections | None = None

    def _connections_to(self, dsn: str) -> Connections:
        return Connections(
            dsn,
            max_size=self.pg_pool_size,
            server_settings=server_settings("pricealert-alerts", self.statement_timeout_s, self.pooler),
            connect_options=NO_STATEMENT_CACHE if self.pooler == "pgbouncer" else None,
        )

    async def start(self) -> None:
        """Open the first connection (after migrations: the functions the statements call come from them)."""
        connections = self._connections_to(self.dsn)
        await connections.start()
        self._connections = self._reads = connections
        if self.read_dsn is not None:
            # Opened on the first listing, not here: a replica that is away fails listings (503), never start-up.
            self._reads = self._connections_to(self.read_dsn)

    async def close(self) -> None:
        """Close the connections and the engine."""
        connections, reads = self._connections, self._reads
        self._connections = self._reads = None
        if reads is not None and reads is not connections:
            await reads.close()
        if connections is not None:
            await connections.close()
        await super().close()

    @property
    def pool(self) -> Connections:
        """The open connections to the primary."""
        if self._connections is None:
            raise RuntimeError("PgAlertStore.start() was not awaited")
        return self._connections

    @property
    def reads(self) -> Connections:
        """The connections listings read through: the replica's when a read URL is set, else the primary's."""
        if self._reads is None:
            raise RuntimeError("PgAlertStore.start() was not awaited")
        return self._reads

    async def create(self, alert: NewAlert, *, limit: int) -> int | None:
        """Insert the alert and alert.created unless the user holds `limit` active ones; returns their count then."""
        fields = alert_event(alert, AlertEventType.CREATED).to_fields()
        arguments = [
            f"alerts:{alert.user_id}",
            limit,
            alert.id,
            alert.user_id,
            alert.email,
            alert.symbol,
            alert.condition,
            _text(alert.target_price),
            alert.name,
            alert.created_at,
            alert.expires_at,
            alert_events_stream(alert.symbol, self.shards),
            json.dumps(fields, separators=(",", ":")),
        ]
        if is_v1(alert):
            active: int | None = await self.pool.fetchval(CREATE_STATEMENT, *arguments)
            return active
        active = await self.pool.fetchval(
            CREATE_FULL_STATEMENT,
            *arguments,
            _text(alert.low),
            _text(alert.high),
            _text(alert.percent),
            alert.window,
            alert.frequency,
            alert.cooldown_s,
            alert.message,
            alert.channel_ids,
        )
        return active

    async def get(self, alert_id: str, user_id: str) -> AlertRow | None:
        """One of the user's alerts."""
        record = await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM alerts WHERE id = $1 AND user_id = $2", alert_id, user_id
        )
        return None if record is None else AlertRow.of(record)

    async def list_alerts(
        self,
        user_id: str,
        *,
        status: str | None,
        symbol: str | None,
        offset: int,
        limit: int,
        condition: str | None = None,
    ) -> tuple[list[AlertRow], int]:
        """One page of the user's alerts, newest first, and the total matching (one consistent statement).

        Read from the replica when there is one: a listing may lag the primary by the replication delay.
        """
        where, args = "user_id = $1", [user_id]
        if status is not None:
            args.append(status)
            where += f" AND status = ${len(args)}"
        # The status counts answer unless a symbol or a condition narrows the listing (then the rows are counted).
        count = f"SELECT coalesce(sum(n), 0) FROM alerts_status_counts WHERE {where}"
        for column, value in (("symbol", symbol), ("condition", condition)):
            if value is not None:
                args.append(value)
                where += f" AND {column} = ${len(args)}"
                count = f"SELECT count(*) FROM alerts WHERE {where}"
        records = await self.reads.fetch(
            list_statement(where, count, len(args)),
            *args,
            limit,
            offset,
        )
        if records:
            return [AlertRow.of(r) for r in records], int(records[0]["total"])
        # An empty page carries no total: count on its own (only past the last page, or no alerts at all).
        total = 0 if offset == 0 else int(await self.reads.fetchval(count, *args))
        return [], total

    async def outbox_has_rows(self) -> bool:
        """Whether any event waits in the outbox."""
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM alerts_outbox)"))

    def take_outbox(self, limit: int) -> PgOutboxBatch:
        """The oldest rows in one asyncpg transaction (see PgOutboxBatch)."""
        return PgOutboxBatch(self.pool, limit)


class PgOutboxBatch:
    """One relay round: take rows under the relay lock, publish, then commit (or roll back on error)."""

    def __init__(self, connections: Connections, limit: int) -> None:
        self.connections = connections
        self.limit = limit
        self._conn: Any = None
        self._tx: Any = None

    async def __aenter__(self) -> list[OutboxRow] | None:
        self._conn = await self.connections.acquire()
        try:
            self._tx = self._conn.transaction()
            await self._tx.start()
            records = await self._conn.fetch(
                "SELECT id, stream, fields FROM alerts_outbox_take($1, $2)", RELAY_LOCK_KEY, self.limit
            )
        except BaseException:
            await self._finish(commit=False)
            raise
        if records and records[0]["id"] is None:
            return None  # another relay holds the lock
        return [OutboxRow(int(i), str(s), json.loads(f)) for i, s, f in records]

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self._finish(commit=exc_type is None)

    async def _finish(self, *, commit: bool) -> None:
        connections, connection, tx = self.connections, self._conn, self._tx
        self._conn = self._tx = None
        try:
            if tx is not None:
                await (tx.commit() if commit else tx.rollback())
        except BaseException:
            connections.discard(connection)
            raise
        connections.release(connection)
