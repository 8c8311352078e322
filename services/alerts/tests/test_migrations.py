"""The migrations: a fresh database and one made by the migrations of before functions.sql end up the same."""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from pricealert.alerts.maintenance import MIGRATIONS, VERSION_TABLE
from pricealert.alerts.sqlfunctions import definitions
from pricealert.common.db import async_url
from pricealert.devstack.servers import create_database

FUNCTIONS = {"alerts_create", "alerts_outbox_take", "alerts_count_status", "alerts_count_statement"}
# Each function and trigger of the schema, as Postgres prints it back.
SCHEMA = """
SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proname LIKE 'alerts%'
UNION ALL
SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal
"""
# alerts_create as the migrations of before functions.sql left it at 0003 and 0004 (it read the counts only).
OLD_CREATE = """
CREATE OR REPLACE FUNCTION alerts_create(
    p_lock text, p_limit integer, p_id varchar, p_user_id varchar, p_email varchar, p_symbol varchar,
    p_condition varchar, p_target_price varchar, p_name varchar, p_now timestamptz, p_expires_at timestamptz,
    p_stream varchar, p_fields text
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_active integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_lock));
    SELECT n INTO v_active FROM alerts_status_counts WHERE user_id = p_user_id AND status = 'active';
    IF v_active >= p_limit THEN
        RETURN v_active;
    END IF;
    INSERT INTO alerts (id, user_id, email, symbol, condition, target_price, name, status, created_at,
                        updated_at, expires_at)
    VALUES (p_id, p_user_id, p_email, p_symbol, p_condition, p_target_price, p_name, 'active', p_now, p_now,
            p_expires_at);
    INSERT INTO alerts_outbox (stream, fields, created_at) VALUES (p_stream, p_fields, p_now);
    RETURN NULL;
END
$$
"""


def config(url: str) -> Config:
    result = Config()
    result.set_main_option("script_location", str(MIGRATIONS))
    result.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    result.attributes["version_table"] = VERSION_TABLE
    return result


async def schema(url: str) -> dict[str, str]:
    connection = await asyncpg.connect(url)
    try:
        return {name: definition for name, definition in await connection.fetch(SCHEMA)}
    finally:
        await connection.close()


async def execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def test_functions_sql_defines_each_function_once() -> None:
    assert set(definitions()) == FUNCTIONS
    for name, statement in definitions().items():
        assert f"CREATE OR REPLACE FUNCTION {name}(" in statement


def test_migration_files_are_named_by_number_and_what_they_do() -> None:
    files = sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py"))
    revisions = {s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    assert files == sorted(f"{r[:4]}_{r.removeprefix(r[:5]).removeprefix('alerts_')}.py" for r in revisions)


async def test_a_fresh_upgrade_has_the_functions_of_functions_sql(postgres_url: str) -> None:
    await asyncio.to_thread(command.upgrade, config(postgres_url), "head")

    found = await schema(postgres_url)

    assert set(found) >= FUNCTIONS
    assert "to_regclass('alerts_status_counts')" in found["alerts_create"]


async def test_an_existing_database_upgrades_to_the_same_schema_as_a_fresh_one(
    postgres_url: str, postgres_admin_url: str
) -> None:
    fresh = create_database(postgres_admin_url, f"{postgres_url.rsplit('/', 1)[1]}_fresh")
    await asyncio.to_thread(command.upgrade, config(fresh), "head")
    # A database the earlier migrations brought to 0004: the create function as they wrote it.
    await asyncio.to_thread(command.upgrade, config(postgres_url), "0004_alerts_counts_per_statement")
    await execute(postgres_url, OLD_CREATE)
    await asyncio.to_thread(command.upgrade, config(postgres_url), "head")

    assert await schema(postgres_url) == await schema(fresh)
