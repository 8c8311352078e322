"""A Redis connection reset (RST, through the chaos proxy) is a redis ConnectionError on uvloop too (the alerts
API's loop), never the RuntimeError uvloop raises on a write to a closed transport (which answered 500)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # chaos is a package at the repository root

from chaos.proxy import ChaosProxy
from pricealert.common.redisconn import connect


def test_a_reset_connection_fails_as_a_connection_error_then_reconnects(redis_server_url: str) -> None:
    port = int(redis_server_url.rsplit(":", 1)[1].split("/")[0])

    async def reset_then_used() -> bytes | None:
        proxy = await ChaosProxy("127.0.0.1", port).start()
        client = connect(f"redis://127.0.0.1:{proxy.port}/0")
        try:
            await client.set("test:reset", "before")
            assert proxy.reset_all() == 1
            await asyncio.sleep(0.2)  # the loop has seen the RST and closed the client's transport
            with pytest.raises(RedisConnectionError):
                await client.set("test:reset", "lost")
            await client.set("test:reset", "after")  # a new connection
            return await client.get("test:reset")  # type: ignore[no-any-return]  # redis-py's reply types are loose
        finally:
            await client.aclose()
            await proxy.stop()

    assert uvloop.run(reset_then_used()) == b"after"
