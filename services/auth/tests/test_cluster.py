"""Auth on a Redis Cluster (3 masters): every script and MULTI touches {auth} keys only, so each runs in one slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from auth_testkit import PASSWORD, account_events, assert_error, client_for, make_settings, register, running_app

from pricealert.common import names
from pricealert.common.events import AccountEventType
from pricealert.common.redisconn import RedisClient, connect_cluster


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisClient]:
    """A client of the emptied 3-master cluster."""
    client = connect_cluster(redis_cluster_url)
    yield client
    await client.aclose()


async def test_sign_up_login_limits_and_account_events_run_on_a_cluster(
    sqlite_url: str, redis_cluster_url: str, cluster: RedisClient, tmp_path: Path
) -> None:
    settings = make_settings(
        sqlite_url,
        "redis://127.0.0.1:1/0",
        tmp_path,
        redis_cluster_url=redis_cluster_url,
        login_max_failures_account_address=2,
    )
    async with running_app(settings) as app, client_for(app) as client:
        user = await register(client, "ada@example.com")  # the MULTI: account-events + unverified set
        assert await cluster.sismember(names.ACCOUNTS_UNVERIFIED, user["id"])
        again = await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
        assert again.status_code == 202  # notice_once: its notice key + account-events
        resend = await client.post("/auth/verify/resend", json={"email": "ada@example.com"})
        assert resend.status_code == 202  # count_signup_requests: the address's and the account's counters
        [link] = [e for e in await account_events(cluster) if e.type is AccountEventType.VERIFICATION_RESENT]
        assert (await client.post("/auth/verify", json={"token": link.token})).status_code == 200
        assert not await cluster.sismember(names.ACCOUNTS_UNVERIFIED, user["id"])
        types = [e.type for e in await account_events(cluster)]
        assert types == [
            AccountEventType.REGISTERED,
            AccountEventType.REGISTRATION_REPEATED,
            AccountEventType.VERIFICATION_RESENT,
            AccountEventType.VERIFIED,
        ]
        # count_login_attempt and record_login_success: the pair's, address's, account's counters, known addresses
        right = {"email": "ada@example.com", "password": PASSWORD}
        assert (await client.post("/auth/login", json=right)).status_code == 200
        assert await cluster.zrange(names.login_known_addresses_key("ada@example.com"), 0, -1) == [b"127.0.0.1"]
        wrong = {"email": "ada@example.com", "password": "not the password"}
        replies = [await client.post("/auth/login", json=wrong) for _ in range(4)]
        assert [r.status_code for r in replies] == [401, 401, 429, 429]
        assert_error(replies[-1], 429, "too_many_login_attempts")
