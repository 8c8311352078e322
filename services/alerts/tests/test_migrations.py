"""The migrations: a fresh database and one made by the migrations of before functions.sql end up the same;
0006 keeps v1 alerts (and their firing) on SQLite and Postgres, and goes back down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from pricealert.alerts.maintenance import MIGRATIONS, VERSION_TABLE
from pricealert.alerts.models import Alert, Firing
from pricealert.alerts.sqlfunctions import definitions
from pricealert.common.db import UtcDateTime, async_url
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


V1_ALERTS = sa.table(
    "alerts",
    *(sa.column(name, sa.String) for name in ("id", "user_id", "email", "symbol", "condition", "target_price")),
    *(sa.column(name, sa.String) for name in ("status", "trigger_id", "triggered_price", "delivery_status")),
    *(
        sa.column(name, UtcDateTime())
        for name in ("created_at", "updated_at", "triggered_at", "triggered_exchange_time")
    ),
    sa.column("delivery_attempts", sa.Integer),
)
FIRED_AT = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def v1_alert(alert_id: str, status: str, **fired: Any) -> dict[str, Any]:
    base = {"triggered_at": None, "triggered_exchange_time": None, "triggered_price": None, "trigger_id": None}
    base |= {"delivery_status": None, "delivery_attempts": None}
    return {
        "id": alert_id,
        "user_id": "u1",
        "email": "u1@example.com",
        "symbol": "BTCUSDT",
        "condition": "above",
        "target_price": "100000",
        "status": status,
        "created_at": FIRED_AT,
        "updated_at": FIRED_AT,
        **base,
        **fired,
    }


async def run(url: str, *statements: Any) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(statement)
    finally:
        await engine.dispose()


async def read(url: str, statement: Any) -> list[Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with AsyncSession(engine) as session:
            return list((await session.execute(statement)).scalars().all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_0006_keeps_v1_alerts_and_their_firing_and_downgrades(
    dialect: str, sqlite_url: str, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url if dialect == "sqlite" else request.getfixturevalue("postgres_url")
    await asyncio.to_thread(command.upgrade, config(url), "0005_alerts_functions_from_file")
    fired = {
        "triggered_at": FIRED_AT,
        "triggered_exchange_time": FIRED_AT,
        "triggered_price": "100001.5",
        "trigger_id": "t-1",
        "delivery_status": "sent",
        "delivery_attempts": 1,
    }
    await run(
        url, sa.insert(V1_ALERTS).values([v1_alert("a-active", "active"), v1_alert("a-fired", "triggered", **fired)])
    )

    await asyncio.to_thread(command.upgrade, config(url), "head")

    alerts = {a.id: a for a in await read(url, sa.select(Alert))}
    assert (alerts["a-active"].frequency, alerts["a-active"].version, alerts["a-active"].firing_count) == ("once", 1, 0)
    assert (alerts["a-fired"].firing_count, alerts["a-fired"].last_fired_at) == (1, FIRED_AT)
    assert alerts["a-active"].target_price == Decimal("100000") and alerts["a-active"].percent is None
    (kept,) = await read(url, sa.select(Firing))
    assert (kept.trigger_id, kept.alert_id, kept.firing, kept.fired_at, kept.price) == (
        "t-1",
        "a-fired",
        1,
        FIRED_AT,
        Decimal("100001.5"),
    )
    assert (kept.trade_id, kept.exchange_time, kept.version, kept.paused) == (None, FIRED_AT, 1, False)
    assert (kept.delivery_status, kept.delivery_attempts) == ("sent", 1)
    # What v1 cannot hold: an alert without a target price (dropped), a paused one (active again).
    await run(
        url,
        sa.update(Alert).where(Alert.id == "a-active").values(status="paused", paused_reason="by you"),
        sa.insert(Alert).values(
            id="a-pct", user_id="u1", email="u1@example.com", symbol="BTCUSDT", condition="pct_move",
            percent=Decimal("5"), window="1h", name=None, status="active", created_at=FIRED_AT, updated_at=FIRED_AT,
        ),
    )  # fmt: skip

    await asyncio.to_thread(command.downgrade, config(url), "0005_alerts_functions_from_file")

    rows = await read(url, sa.select(V1_ALERTS.c.id).order_by(V1_ALERTS.c.id))
    assert rows == ["a-active", "a-fired"]
    statuses = await read(url, sa.select(V1_ALERTS.c.status).order_by(V1_ALERTS.c.id))
    assert statuses == ["active", "triggered"]
    await asyncio.to_thread(command.upgrade, config(url), "head")
    assert {a.id: a.firing_count for a in await read(url, sa.select(Alert))} == {"a-active": 0, "a-fired": 1}


async def test_0006_takes_the_new_create_arguments_and_drops_the_old_form(postgres_url: str) -> None:
    await asyncio.to_thread(command.upgrade, config(postgres_url), "head")
    connection = await asyncpg.connect(postgres_url)
    try:
        forms = await connection.fetch("SELECT pronargs FROM pg_proc WHERE proname = 'alerts_create'")
        created = await connection.fetchval(
            "SELECT alerts_create('alerts:u', 5, 'id-1', 'u', 'u@example.com', 'BTCUSDT', 'pct_up', NULL, NULL, "
            "now(), NULL, 'stream', '{}', NULL, NULL, '5', '1h', 'every_time', 300, 'hi {{price}}')"
        )
        v1 = await connection.fetchval(
            "SELECT alerts_create('alerts:u', 5, 'id-2', 'u', 'u@example.com', 'BTCUSDT', 'above', '1', NULL, "
            "now(), NULL, 'stream', '{}')"
        )
        rows = await connection.fetch(
            'SELECT id, condition, target_price, percent, "window", frequency, cooldown_s, message, version, '
            "firing_count FROM alerts ORDER BY id"
        )
    finally:
        await connection.close()
    assert [f["pronargs"] for f in forms] == [21]  # 0007 added the channel ids (test_channels_alerts.py)
    assert created is None and v1 is None
    assert [tuple(r) for r in rows] == [
        ("id-1", "pct_up", None, "5", "1h", "every_time", 300, "hi {{price}}", 1, 0),
        ("id-2", "above", "1", None, None, "once", None, None, 1, 0),
    ]


async def test_0007_takes_the_channel_ids_and_gives_them_back_on_downgrade(postgres_url: str) -> None:
    await asyncio.to_thread(command.upgrade, config(postgres_url), "head")
    create = (
        "SELECT alerts_create('alerts:u', 5, $1, 'u', 'u@example.com', 'BTCUSDT', 'above', '1', NULL, now(), NULL, "
        "'stream', '{}'"
    )
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.fetchval(f"{create}, NULL, NULL, NULL, NULL, 'once', NULL, NULL, 'c-1,email')", "id-1")
        await connection.fetchval(f"{create})", "id-2")
        stored = await connection.fetch("SELECT id, channel_ids FROM alerts ORDER BY id")
    finally:
        await connection.close()
    assert [tuple(r) for r in stored] == [("id-1", "c-1,email"), ("id-2", None)]

    await asyncio.to_thread(command.downgrade, config(postgres_url), "0006_alerts_definitions_firings")

    connection = await asyncpg.connect(postgres_url)
    try:
        forms = await connection.fetch("SELECT pronargs FROM pg_proc WHERE proname = 'alerts_create'")
        await connection.fetchval(f"{create}, NULL, NULL, NULL, NULL, 'once', NULL, NULL)", "id-3")
        kept = await connection.fetch("SELECT id FROM alerts ORDER BY id")
    finally:
        await connection.close()
    assert [f["pronargs"] for f in forms] == [20]
    assert [r["id"] for r in kept] == ["id-1", "id-2", "id-3"]
