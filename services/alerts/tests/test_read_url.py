"""ALERTS_DATABASE_READ_URL: listings read from it; writes and reads right after a write stay on the primary.

No real replica: the read URL reaches the same database through a PgBouncer of its own, which a test stops to
see which requests needed it.
"""

from __future__ import annotations

import httpx
import pytest
from alerts_testkit import TokenRoot, Tokens, client_of, running
from fastapi import FastAPI
from pydantic import ValidationError

from pricealert.alerts.pgstore import PgAlertStore
from pricealert.alerts.settings import AlertsSettings
from pricealert.devstack.pgbouncer import PgBouncerServer

from .test_fast_paths import test_listing_pages_and_totals_past_the_end
from .test_listing import test_filters_by_status_and_symbol, test_pages_are_newest_first_with_links
from .test_routes_alerts import test_create_returns_the_alert, test_delete_is_soft_and_idempotent

__all__ = [
    "test_create_returns_the_alert",
    "test_delete_is_soft_and_idempotent",
    "test_filters_by_status_and_symbol",
    "test_listing_pages_and_totals_past_the_end",
    "test_pages_are_newest_first_with_links",
]

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """The primary: the test's Postgres database, directly."""
    return postgres_url


@pytest.fixture
def settings(settings: AlertsSettings, own_pgbouncer: PgBouncerServer, postgres_url: str) -> AlertsSettings:
    """The test settings, listings reading the same database through the test's own PgBouncer."""
    read_url = own_pgbouncer.url_for(postgres_url)
    # The read URL goes through a transaction pooler: no statement caches (on the primary's connections too).
    return settings.model_copy(update={"database_read_url": read_url, "database_pooler": "pgbouncer"})


def store_of(app: FastAPI) -> PgAlertStore:
    store = app.state.alerts.store
    assert isinstance(store, PgAlertStore)
    return store


async def test_listings_need_the_read_url_and_nothing_else_does(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, own_pgbouncer: PgBouncerServer
) -> None:
    headers = tokens.headers("u1")
    assert store_of(app).reads is not store_of(app).pool
    first = await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=headers)
    assert first.status_code == 201
    listed = await client.get("/alerts", headers=headers)
    assert [a["id"] for a in listed.json()["items"]] == [first.json()["id"]]

    own_pgbouncer.stop()  # the "replica" is gone: only listings fail

    created = await client.post("/alerts", json={"symbol": "ETHUSDT", "target_price": "2"}, headers=headers)
    assert created.status_code == 201
    alert_id = created.json()["id"]
    assert (await client.get(f"/alerts/{alert_id}", headers=headers)).json() == created.json()
    assert (await client.delete(f"/alerts/{alert_id}", headers=headers)).status_code == 204
    for query in ("", "?page=1&page_size=5", "?unknown=1"):  # the fast path and FastAPI's route
        response = await client.get(f"/alerts{query}", headers=headers)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"


async def test_without_a_read_url_listings_read_the_primary(
    postgres_url: str, redis_url: str, tokens: Tokens, token_root: TokenRoot
) -> None:
    settings = AlertsSettings(
        database_url=postgres_url,
        redis_url=redis_url,
        consumer_name="alerts-test",
        token_root_public_key_file=token_root.public_key_file,
        catalog_min_refresh_s=0,
        consumers_enabled=False,
        expiry_enabled=False,
    )
    assert settings.database_read_url is None
    async with running(settings) as app, client_of(app) as client:
        assert store_of(app).reads is store_of(app).pool
        headers = tokens.headers("u1")
        created = await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=headers)
        listed = await client.get("/alerts", headers=headers)
        assert [a["id"] for a in listed.json()["items"]] == [created.json()["id"]]


@pytest.mark.parametrize(
    ("primary", "replica"),
    [("sqlite:///x.db", "postgresql://h/db"), ("postgresql://h/db", "sqlite:///y.db")],
)
def test_a_read_url_needs_postgres_on_both_sides(primary: str, replica: str) -> None:
    with pytest.raises(ValidationError, match="ALERTS_DATABASE_READ_URL"):
        AlertsSettings(database_url=primary, database_read_url=replica)


async def test_the_api_starts_while_the_replica_is_away(
    settings: AlertsSettings, tokens: Tokens, own_pgbouncer: PgBouncerServer
) -> None:
    own_pgbouncer.stop()  # away before the API starts: creating still works, listings answer 503
    async with running(settings) as app, client_of(app) as client:
        headers = tokens.headers("u1")
        created = await client.post("/alerts", json={"symbol": "BTCUSDT", "target_price": "1"}, headers=headers)
        assert created.status_code == 201
        listed = await client.get("/alerts", headers=headers)
        assert listed.status_code == 503, listed.text
