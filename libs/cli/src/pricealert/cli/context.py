"""What every command of the CLI shares: the global options, the --json flag, Redis, a clean failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, TypeVar

import typer

from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient, connect_to
from pricealert.common.shards import DEFAULT_SHARDS

T = TypeVar("T")
REDIS_TIMEOUT_S = 5.0

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@dataclass
class Options:
    """Global options, shared by every command."""

    redis_url: str
    json: bool
    redis_cluster_url: str = ""  # seed URLs of a Redis Cluster: used instead of redis_url when set
    shards: int = DEFAULT_SHARDS  # the shard count assumed until a worker has recorded it in Redis


def options_of(ctx: typer.Context, json_flag: bool) -> Options:
    """The global options, with a command's own --json."""
    options: Options = ctx.obj
    return replace(options, json=options.json or json_flag)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say why on stderr; raise what this returns."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def with_redis(
    url: str,
    work: Callable[[RedisClient], Awaitable[T]],
    *,
    cluster_url: str = "",
    timeout_s: float = REDIS_TIMEOUT_S * 6,
) -> T:
    """Run `work` with a client of `url` (or of the cluster of `cluster_url`); Redis being away is a clean error."""

    async def run() -> T:
        redis = connect_to(url, cluster_url)
        try:
            async with asyncio.timeout(timeout_s):
                return await work(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (*TRANSIENT_REDIS_ERRORS, TimeoutError) as exc:
        where = "the Redis Cluster at " + safe_url(cluster_url) if cluster_url.strip() else "Redis at " + safe_url(url)
        raise fail(f"{where} is not reachable: {exc}") from exc


def redis_of(options: Options, work: Callable[[RedisClient], Awaitable[T]]) -> T:
    """`with_redis` on the Redis (or cluster) the global options name."""
    return with_redis(options.redis_url, work, cluster_url=options.redis_cluster_url)


def safe_url(url: str) -> str:
    """`url` (or comma-separated urls) without user and password."""
    return ",".join(part.split("@")[-1] for part in url.split(","))
