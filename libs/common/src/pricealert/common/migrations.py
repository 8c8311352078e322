"""The body of every service's Alembic env.py: async engine, per-service version table, one migrator at a time."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pricealert.common.db import NO_STATEMENT_CACHE

# The first of the two-integer advisory keys (a key space of its own), the second the version table's hash.
MIGRATION_LOCK_CLASS = 0x70A1E28


def run_migrations(target_metadata: MetaData) -> None:
    """Run the pending migrations against the URL set in the Alembic config."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set in the Alembic config")
    version_table = config.attributes.get("version_table", "alembic_version")

    def _run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas start together: one migrates, the others wait here and then find the schema at head.
                # A transaction-level lock, released by the commit: no session state, so a transaction pooler
                # (PgBouncer) in between is no obstacle. Alembic reads the version after it.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:class, hashtext(:table))"),
                    {"class": MIGRATION_LOCK_CLASS, "table": version_table},
                )
            context.run_migrations()

    async def _main() -> None:
        # On Postgres no prepared-statement caches: they save nothing here, and would not survive a transaction pooler.
        postgres = make_url(url).get_backend_name() == "postgresql"
        connect_args = {**NO_STATEMENT_CACHE, "prepared_statement_cache_size": 0} if postgres else {}
        engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
        async with engine.connect() as connection:
            await connection.run_sync(_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, version_table=version_table, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_main())
