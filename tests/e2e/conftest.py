"""Fixtures of the end-to-end tests: the fake exchange and every service running as its own process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2e_stack import CLUSTER_REPLICAS, Stack, stack_environment

from pricealert.devstack.fakeexchange.server import FakeExchange
from pricealert.devstack.smtp import MailboxServer


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    """The fake exchange on a free port."""
    async with FakeExchange() as fake:
        yield fake


@pytest.fixture
async def stack(
    tmp_path: Path, redis_url: str, database_url: str, smtp_server: MailboxServer, exchange: FakeExchange
) -> AsyncIterator[Stack]:
    """Every service as a process, its log in tmp_path/<service>.log; stopped cleanly afterwards."""
    env = stack_environment(
        tmp_path,
        redis_url=redis_url,
        database_url=database_url,
        smtp_port=smtp_server.port,
        exchange_ws_url=exchange.ws_url,
        exchange_rest_url=exchange.rest_url,
    )
    running = Stack(tmp_path, env)
    running.start()
    try:
        await running.wait_ready()
        yield running
    finally:
        codes = await asyncio.to_thread(running.stop)
        print(running.logs())  # noqa: T201 - pytest shows captured output only when the test fails
        # uvicorn re-raises SIGTERM after its clean shutdown, so the APIs end "killed by SIGTERM".
        assert all(code in (0, -signal.SIGTERM) for code in codes.values()), f"unclean exits: {codes}"


@pytest.fixture
async def cluster_stack(
    tmp_path: Path, redis_cluster_url: str, sqlite_url: str, smtp_server: MailboxServer, exchange: FakeExchange
) -> AsyncIterator[Stack]:
    """Every service on the session's 3-master Redis Cluster, with 2 replicas of ingest, evaluator and notifier."""
    env = stack_environment(
        tmp_path,
        redis_url=redis_cluster_url.split(",")[0],
        database_url=sqlite_url,
        smtp_port=smtp_server.port,
        exchange_ws_url=exchange.ws_url,
        exchange_rest_url=exchange.rest_url,
    )
    running = Stack(tmp_path, env | {"REDIS_CLUSTER_URL": redis_cluster_url})
    running.start("auth", "alerts", "alerts-worker", "gateway")
    for service, count in CLUSTER_REPLICAS.items():
        for n in range(1, count + 1):
            running.start_replica(service, n)
    try:
        await running.wait_ready()
        yield running
    finally:
        codes = await asyncio.to_thread(running.stop)
        print(running.logs())  # noqa: T201 - pytest shows captured output only when the test fails
        assert all(code in (0, -signal.SIGTERM) for code in codes.values()), f"unclean exits: {codes}"
