"""`pricealert health`: a worker replica's heartbeat key in Redis, or an API's readiness URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cli_testkit import json_of, run_cli
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer


async def _beat(redis: Redis, service: str, consumer: str) -> None:
    """One round of the real consumer loop, which refreshes the replica's health key."""

    async def accept(messages: Sequence[Message]) -> None:
        return None

    loop = StreamConsumer(
        redis, ConsumerOptions(names.ticks_stream(0), service, consumer, service=service, block_ms=10), accept
    )
    await loop.ensure_group()
    await loop.poll_once()


async def test_a_replica_with_a_fresh_heartbeat_is_healthy(redis: Redis, cli_env: dict[str, str]) -> None:
    await _beat(redis, "evaluator", "evaluator-7f3a")

    by_option = await run_cli("health", "evaluator", "--consumer", "evaluator-7f3a", env=cli_env)
    by_env = await run_cli("health", "evaluator", "--json", env={**cli_env, "CONSUMER_NAME": "evaluator-7f3a"})

    assert by_option.exit_code == 0, by_option.output
    assert "evaluator (evaluator-7f3a): healthy" in by_option.stdout
    assert by_env.exit_code == 0, by_env.output
    report = json_of(by_env)
    assert report["healthy"] is True and report["consumer"] == "evaluator-7f3a"
    assert 0 < report["ttl_s"] <= 30


async def test_another_replica_or_an_expired_heartbeat_is_unhealthy(redis: Redis, cli_env: dict[str, str]) -> None:
    await _beat(redis, "notifier", "notifier-1")

    other = await run_cli("health", "notifier", "--consumer", "notifier-2", env=cli_env)
    assert other.exit_code == 1 and "UNHEALTHY" in other.stdout

    await redis.delete(names.health_key("notifier", "notifier-1"))  # what the 30 s TTL does to a stuck loop
    gone = await run_cli("health", "notifier", "--consumer", "notifier-1", "--json", env=cli_env)
    assert gone.exit_code == 1
    assert json_of(gone) == {"service": "notifier", "consumer": "notifier-1", "healthy": False}


async def test_without_a_service_every_live_worker_is_listed(redis: Redis, cli_env: dict[str, str]) -> None:
    await _beat(redis, "evaluator", "evaluator-a")
    await _beat(redis, "evaluator", "evaluator-b")
    await _beat(redis, "notifier", "host:with:colons")

    result = await run_cli("health", "--json", env=cli_env)

    assert result.exit_code == 0, result.output
    workers = [(w["service"], w["consumer"]) for w in json_of(result)["workers"]]
    assert workers == [("evaluator", "evaluator-a"), ("evaluator", "evaluator-b"), ("notifier", "host:with:colons")]


async def test_redis_away_is_unhealthy_not_a_crash() -> None:
    from pricealert.devstack.ports import free_port

    result = await run_cli("health", "ingest", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})

    assert result.exit_code == 1 and "not reachable" in result.stderr


class _Readiness(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"status": "ready"}' if self.status == 200 else b'{"status": "not_ready"}'
        self.send_response(self.status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def readiness_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readiness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_http_readiness(readiness_server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{readiness_server.server_address[1]}/readyz"

    _Readiness.status = 200
    ready = await run_cli("health", "alerts", "--http", url)
    _Readiness.status = 503
    not_ready = await run_cli("health", "alerts", "--http", url, "--json")

    assert ready.exit_code == 0, ready.output
    assert not_ready.exit_code == 1
    assert json_of(not_ready)["detail"].startswith("503")
