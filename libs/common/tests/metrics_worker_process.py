"""A worker run by the tests through run_worker_process: one consumer, metrics on METRICS_PORT when set."""

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer
from pricealert.common.runner import run_worker_process
from pricealert.common.settings import ServiceSettings


async def run(redis: Redis, settings: ServiceSettings, stop: asyncio.Event) -> None:
    async def handle(messages: Sequence[Message]) -> None:
        return None

    options = ConsumerOptions(stream="test:worker-metrics", group="g", consumer="w", service="test", block_ms=50)
    await StreamConsumer(redis, options, handle).run(stop)


if __name__ == "__main__":
    run_worker_process("test-worker", ServiceSettings(_env_file=None), run)
