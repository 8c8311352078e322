"""Redis at maxmemory with noeviction (every write refused with OOM): auth answers a JSON 503 with a stable code and
Retry-After, logs the OOM, and works again once the limit is lifted."""

from __future__ import annotations

import httpx
import pytest
from auth_testkit import assert_error, login, register
from redis.asyncio import Redis
from structlog.testing import capture_logs


@pytest.fixture
def redis_url(own_redis_url: str) -> str:
    """A Redis of this test's own: its maxmemory must not reach the session's."""
    return own_redis_url


async def test_writes_refused_answer_503_with_retry_after_then_recover(client: httpx.AsyncClient, redis: Redis) -> None:
    await register(client, "before@example.com")
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")  # below what is in use: every write is refused
    with capture_logs() as logs:
        failed_login = await client.post("/auth/login", json={"email": "before@example.com", "password": "wrong!"})
        registration = await client.post("/auth/register", json={"email": "new@example.com", "password": "x" * 14})
    for response in (failed_login, registration):
        assert_error(response, 503, "redis_out_of_memory")
        assert int(response.headers["retry-after"]) >= 1
    assert any(e["event"] == "redis.out_of_memory" for e in logs)
    await redis.config_set("maxmemory", "0")
    await login(client, "before@example.com")
    await register(client, "after@example.com")
