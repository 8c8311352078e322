"""One cancellation stops a task looping on Redis, though Python 3.11's wait_for (redis-py's write) may drop it.

asyncio.wait_for returns the inner result and forgets the outer task's cancellation when both land in the same loop
turn (fixed in 3.12); redis-py wraps every command's write in it. The connections of our clients (one Redis or a
cluster) raise it again.
"""

from __future__ import annotations

import asyncio
import random

from pricealert.common.redisconn import RedisClient, connect, connect_cluster
from pricealert.common.tasks import cancel_and_wait

TRIALS = 100  # a plain redis-py client on Python 3.11 kept running in most of them (15 of 20)


async def still_running_after_one_cancel(redis: RedisClient) -> int:
    """How many of TRIALS tasks, each looping on SET and cancelled once at a random moment, went on running."""

    async def loop_on_redis(n: int) -> None:
        while True:
            await redis.set(f"cancel-test-{n}", n)

    kept_running = 0
    for n in range(TRIALS):
        task = asyncio.create_task(loop_on_redis(n))
        await asyncio.sleep(random.uniform(0, 0.003))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        if not done:
            kept_running += 1
            await cancel_and_wait(task)
    return kept_running


async def replies_match(redis: RedisClient) -> bool:
    """Whether each command reads its own reply: a command cut off by its cancellation left none behind."""
    for n in range(50):
        await redis.set("cancel-test-check", n)
        if await redis.get("cancel-test-check") != str(n).encode():
            return False
    return True


async def test_one_cancellation_stops_a_task_looping_on_redis(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        assert await still_running_after_one_cancel(redis) == 0
        assert await replies_match(redis)
    finally:
        await redis.aclose()


async def test_one_cancellation_stops_a_task_looping_on_a_cluster(redis_cluster_url: str) -> None:
    redis = connect_cluster(redis_cluster_url)
    try:
        await redis.initialize()
        assert await still_running_after_one_cancel(redis) == 0
        assert await replies_match(redis)
    finally:
        await redis.aclose()
