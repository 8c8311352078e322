"""Running a worker until SIGTERM/SIGINT, then letting it finish what it holds."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import structlog

from pricealert.common.collector import collect_on_a_clock, keep_collector_off_hot_paths
from pricealert.common.logging import configure_logging
from pricealert.common.metrics import serve_worker_metrics
from pricealert.common.redisconn import RedisClient, connect_to, wait_for_redis
from pricealert.common.settings import ServiceSettings
from pricealert.common.shards import agree_on_shard_count

log = structlog.get_logger()

S = TypeVar("S", bound=ServiceSettings)
Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_until_signalled(worker: Worker, *, drain_timeout_s: float = 15.0) -> None:
    """Run `worker(stop)`; a signal sets `stop`, and the worker gets `drain_timeout_s` to return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task: asyncio.Task[None] = asyncio.create_task(worker(stop))
    stopper = asyncio.create_task(stop.wait())
    clock = asyncio.create_task(collect_on_a_clock())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        log.info("worker.stopping", drain_timeout_s=drain_timeout_s)
        try:
            await asyncio.wait_for(task, timeout=drain_timeout_s)
        except TimeoutError:
            log.warning("worker.drain.timed_out")
    stopper.cancel()
    clock.cancel()
    failure = task.exception() if task.done() and not task.cancelled() else None
    if failure is not None:
        raise failure
    log.info("worker.stopped")


async def gather_until_stopped(stop: asyncio.Event, *loops: Awaitable[None]) -> None:
    """Run several loops of one worker; if one fails, stop the others and re-raise."""
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            failure = task.exception()
            if failure is not None:
                stop.set()
                raise failure
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_worker_process(
    service: str, settings: S, run: Callable[[RedisClient, S, asyncio.Event], Coroutine[Any, Any, None]]
) -> None:
    """Entry point of a worker process: logging, metrics (when METRICS_PORT is set), and `run` until SIGTERM."""
    configure_logging(service=service, level=settings.log_level, json=settings.log_json)
    serve_worker_metrics(settings.metrics_host, settings.metrics_port)
    keep_collector_off_hot_paths()

    async def main() -> None:
        redis = connect_to(settings.redis_url, settings.redis_cluster_url)

        async def checked(stop: asyncio.Event) -> None:
            # Refuse to start on another shard count than the data was written with (shards.py).
            await wait_for_redis(redis, stop=stop)
            if not stop.is_set():
                await agree_on_shard_count(redis, settings.shards)
                await run(redis, settings, stop)

        try:
            await run_until_signalled(checked)
        finally:
            await redis.aclose()

    asyncio.run(main())
