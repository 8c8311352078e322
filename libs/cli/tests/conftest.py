"""Fixtures of the CLI tests: the environment that points the CLI at the test's Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redisacl_testkit import AclRedis, apply_users

from pricealert.common.redisconn import connect
from pricealert.devstack.servers import RedisServer, temp_dir


@pytest.fixture
def cli_env(redis_url: str) -> dict[str, str]:
    """REDIS_URL of the (flushed) test Redis, as an operator would export it."""
    return {"REDIS_URL": redis_url}


@pytest.fixture(scope="module")
def acl_redis() -> Iterator[AclRedis]:
    """A Redis of the module's own with every pricealert user (ACL users outlive FLUSHALL: keep them off the
    session Redis); its `default` user is the admin."""
    server = RedisServer(temp_dir("pricealert-acl-")).start()
    try:
        yield AclRedis(server.url, asyncio.run(apply_users(server.url)))
    finally:
        server.stop()


@pytest.fixture
async def admin(acl_redis: AclRedis) -> AsyncIterator[Redis]:
    """The admin of the ACL Redis, its data flushed before the test."""
    client = connect(acl_redis.url)
    await client.flushall()
    yield client
    await client.aclose()
