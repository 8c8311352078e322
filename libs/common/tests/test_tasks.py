"""cancel_and_wait: a task that loses a cancellation (Python 3.11's wait_for, under redis-py) is stopped anyway."""

from __future__ import annotations

import asyncio
import random

from redis.asyncio import Redis

from pricealert.common.tasks import cancel_and_wait


async def test_a_task_that_swallows_its_first_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # what wait_for does when the inner future finished in the same turn
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert task.cancelled() and swallowed == 2


async def test_finished_and_failed_tasks_are_waited_for_without_a_warning() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    done = asyncio.create_task(asyncio.sleep(0))
    failed = asyncio.create_task(fail())
    await asyncio.sleep(0.01)
    await cancel_and_wait(done, failed)
    assert done.done() and isinstance(failed.exception(), ValueError)


async def test_loops_blocked_on_redis_all_stop(redis: Redis) -> None:
    async def read_forever() -> None:
        last = b"0"
        while True:
            for _, entries in await redis.xread({"tasks-test": last}, block=20) or []:
                last = entries[-1][0]

    await redis.xadd("tasks-test", {"n": "1"})
    for _ in range(40):  # a plain cancel leaves one of these running about once in 60
        task = asyncio.create_task(read_forever())
        await asyncio.sleep(random.uniform(0, 0.05))
        await asyncio.wait_for(cancel_and_wait(task), 5)
        assert task.cancelled()
