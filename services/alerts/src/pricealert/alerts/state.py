"""What every process of the alerts service builds: the store for its database, Redis, the service."""

from __future__ import annotations

from pricealert.alerts.catalog import SymbolCatalog
from pricealert.alerts.channelservice import ChannelService
from pricealert.alerts.channelstore import ChannelStore
from pricealert.alerts.deps import AppState
from pricealert.alerts.pgstore import PgAlertStore
from pricealert.alerts.service import AlertService
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.shardgate import ShardGate
from pricealert.alerts.sqlstore import SqlAlertStore
from pricealert.common.db import is_sqlite
from pricealert.common.redisconn import connect_to
from pricealert.common.tokens import KeyRing


def open_store(settings: AlertsSettings, *, statement_timeout_s: float = 0.0) -> SqlAlertStore:
    """SQLAlchemy on SQLite; on Postgres the same plus asyncpg for the request paths (not connected yet).

    `statement_timeout_s` bounds each statement on Postgres (0: none): the API's, which answer 503 past it.
    """
    if is_sqlite(settings.database_url):
        return SqlAlertStore(
            settings.database_url,
            shards=settings.shards,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
    return PgAlertStore(
        settings.database_url,
        shards=settings.shards,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pg_pool_size=settings.pg_pool_size,
        read_url=settings.database_read_url,
        pooler=settings.database_pooler,
        statement_timeout_s=statement_timeout_s,
    )


def build_state(settings: AlertsSettings, *, statement_timeout_s: float = 0.0) -> AppState:
    """Store, Redis, key ring, catalog, shard gate and service for one process (nothing is connected yet)."""
    store = open_store(settings, statement_timeout_s=statement_timeout_s)
    redis = connect_to(settings.redis_url, settings.redis_cluster_url)
    channels = ChannelService(
        ChannelStore(store.sessions),
        redis,
        policy=settings.channel_target_policy(),
        max_per_user=settings.max_channels_per_user,
        test_timeout_s=settings.channel_test_timeout_s,
    )
    gate = ShardGate(redis, settings.shards)
    catalog = SymbolCatalog(redis, refresh_s=settings.catalog_refresh_s, min_refresh_s=settings.catalog_min_refresh_s)
    return AppState(
        settings=settings,
        store=store,
        redis=redis,
        keys=KeyRing(redis, settings.token_root_public_key_file),
        catalog=catalog,
        service=AlertService(
            store, catalog, max_active_per_user=settings.max_active_per_user, gate=gate, channels=channels.check_ids
        ),
        gate=gate,
        channels=channels,
    )


async def close_state(state: AppState) -> None:
    """Close every connection the state holds."""
    await state.store.close()
    await state.redis.aclose()
