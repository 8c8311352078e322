"""A consumer run as its own process by the tests: records each entry it handles in a Redis set."""

import asyncio
import sys
from collections.abc import Sequence

from pricealert.common.consumer import ConsumerOptions, Message, StreamConsumer
from pricealert.common.logging import configure_logging
from pricealert.common.redisconn import connect
from pricealert.common.runner import run_until_signalled


async def main(redis_url: str, stream: str, consumer_name: str, delay_s: float) -> None:
    configure_logging(service="test-consumer")
    redis = connect(redis_url)

    async def handle(messages: Sequence[Message]) -> None:
        for message in messages:
            await asyncio.sleep(delay_s)
            await redis.sadd(f"{stream}:handled", message.fields["n"])
            await redis.incr(f"{stream}:handled-count")

    options = ConsumerOptions(stream=stream, group="g", consumer=consumer_name, service="test", batch_size=5)
    consumer = StreamConsumer(redis, options, handle)

    async def worker(stop: asyncio.Event) -> None:
        await redis.set(f"{stream}:started:{consumer_name}", "1")
        await consumer.run(stop)

    await run_until_signalled(worker)
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
