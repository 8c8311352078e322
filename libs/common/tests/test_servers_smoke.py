"""The fixtures really start servers."""

from redis.asyncio import Redis
from sqlalchemy import text

from pricealert.common.db import create_engine


async def test_redis_fixture_is_a_real_server(redis: Redis) -> None:
    await redis.xadd("s", {"a": "1"})
    assert await redis.xlen("s") == 1


async def test_database_fixture_answers_sql(database_url: str) -> None:
    engine = create_engine(database_url, application_name="test")
    async with engine.connect() as connection:
        assert (await connection.execute(text("select 1"))).scalar() == 1
    await engine.dispose()
