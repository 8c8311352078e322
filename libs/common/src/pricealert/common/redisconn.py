"""Redis connections with timeouts that suit blocking stream reads, and waiting for Redis to appear."""

from __future__ import annotations

import asyncio
import random
from typing import Any, TypeAlias, TypeVar, cast
from urllib.parse import urlsplit

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import AbstractStrategy, ClusterNode, ClusterPipeline, RedisCluster, TransactionStrategy
from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import (
    ClusterError,
    OutOfMemoryError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger()

# Blocking reads use BLOCK of at most this many ms; the socket timeout must stay clearly larger
# (redis-py 8 defaults to a 5 s socket timeout, which kills longer blocking reads).
MAX_BLOCK_MS = 2_000
SOCKET_TIMEOUT_S = 10.0

# One Redis (connect) or a Redis Cluster (connect_cluster): both speak the same single-slot commands.
RedisClient: TypeAlias = Redis | RedisCluster
AnyConnection = TypeVar("AnyConnection", bound=AbstractConnection)
RedisPipeline: TypeAlias = Pipeline | ClusterPipeline

# What a later attempt may get past. On a cluster: CLUSTERDOWN and MASTERDOWN, or redirections the cluster
# client gave up following (ClusterError), TRYAGAIN, a slot no known node serves: all of them happen while a
# master fails over or slots move, and end when the cluster settles. Not MOVED or ASK themselves: the cluster
# client follows them, and a one-Redis client that meets one points at a cluster node (a misconfiguration that
# must stop the worker with its reason, not loop). Not CROSSSLOT: a bug. OOM: a Redis at maxmemory with noeviction
# refuses writes until memory is freed; a worker backs off rather than stop.
TRANSIENT_REDIS_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
    OutOfMemoryError,
)


class ClusterUnreachable(RedisConnectionError):
    """No node of the cluster answers (or those that answer do not serve every slot): like a Redis that is down."""


class _QueueingTransaction(TransactionStrategy):
    """A cluster MULTI that works out a queued command's slot in place when its key is its first argument.

    redis-py 8's cluster transaction runs every queued command through a thread with an event loop of its own, which
    blocks ours (~1 ms a command: a 200-command group commit took 170 ms, 10 ms this way). Other commands, WATCH
    and those before the client knows the cluster take the stock path; Redis still refuses a cross-slot MULTI.
    """

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Queue the command, recording its slot without a round trip when it is a first-key command."""
        client = self._pipe.cluster_client
        spec: Any = None if client._initialize else client.commands_parser.commands.get(str(args[0]).lower())
        if (
            self._watching
            or args[0] in self.IMMEDIATE_EXECUTE_COMMANDS
            or not isinstance(spec, dict)
            or spec.get("first_key_pos") != 1
            or "movablekeys" in spec.get("flags", ())
            or len(args) < 2
        ):
            return super().execute_command(*args, **kwargs)
        self._pipeline_slots.add(key_slot(client.encoder.encode(args[1])))  # type: ignore[no-untyped-call]  # redis-py's Encoder.encode is unannotated
        return AbstractStrategy.execute_command(self, *args, **kwargs)


def _stream_keys(args: tuple[Any, ...]) -> list[Any]:
    """The stream names of an XREAD / XREADGROUP: the first half of what follows STREAMS."""
    for position, arg in enumerate(args):
        if (
            isinstance(arg, str | bytes)
            and (arg.upper() if isinstance(arg, str) else arg.upper().decode()) == "STREAMS"
        ):
            rest = args[position + 1 :]
            return list(rest[: len(rest) // 2])
    return []


# redis-py raises a bare RedisClusterException when it cannot learn the layout (every seed down, slots not all
# served), which nothing retries: a consumer would die of a restart of the whole cluster.
class _RedisCluster(RedisCluster):
    """The cluster client, except that failing to learn the cluster's layout is a ConnectionError, and that its
    connections are `_reset_aware`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        aware = _reset_aware(self.connection_kwargs["connection_class"])
        self.connection_kwargs["connection_class"] = aware  # the nodes it learns later (the same dict as its manager's)
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = aware

    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> RedisCluster:
        """Learn the nodes and slots, as RedisCluster does; ClusterUnreachable when no seed tells them."""
        try:
            return await super().initialize(additional_startup_nodes_info, last_failed_node_name)
        except RedisClusterException as exc:
            if "not enabled" in str(exc):  # a one-Redis server named as a seed: a misconfiguration, not an outage
                raise
            raise ClusterUnreachable(str(exc)) from exc

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run one command as RedisCluster does; a connection torn down under it during a failover is a
        ConnectionError (redis-py 8 lets an AttributeError on the closed connection's None writer escape)."""
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            if "NoneType" not in str(exc):
                raise
            raise ClusterUnreachable(f"connection lost during a cluster change: {exc}") from exc

    async def _determine_slot(self, command: str, *args: Any) -> int:
        """The command's slot; for stream reads from the STREAMS names here, not by a COMMAND GETKEYS round trip."""
        if str(command).upper() in ("XREADGROUP", "XREAD"):
            slots = {self.keyslot(key) for key in _stream_keys(args)}
            if len(slots) == 1:
                return slots.pop()
        return await super()._determine_slot(command, *args)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        """A pipeline, or a MULTI that queues its commands without a thread per command (_QueueingTransaction)."""
        pipe = super().pipeline(transaction, shard_hint)
        if transaction:
            pipe._execution_strategy = _QueueingTransaction(pipe)
        return pipe


_RESET_AWARE: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _reset_aware(kind: type[AnyConnection]) -> type[AnyConnection]:
    """`kind` whose write to a connection the peer reset raises ConnectionError, and whose write never loses its
    task's cancellation.

    uvloop (the alerts API's loop) raises RuntimeError on a reset connection, which redis-py passes on as it is, and
    a request answered 500. Python 3.11's asyncio.wait_for, around redis-py's write, returns the write's result and
    drops the task's cancellation when both land in one loop turn (fixed in 3.12): a task cancelled while it loops
    on Redis went on running, and an asyncio.timeout() around a command could lapse unnoticed.
    """
    if kind not in _RESET_AWARE:

        class ResetAware(kind):  # type: ignore[valid-type,misc]  # a subclass of the pool's own connection class
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                task = asyncio.current_task()
                cancels = task.cancelling() if task is not None else 0
                try:
                    await super().send_packed_command(command, check_health)
                except RuntimeError as exc:
                    if "closed" not in str(exc):
                        raise
                    raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
                if task is not None and task.cancelling() > cancels:
                    # A cancellation wait_for dropped: raise it. The command went out and its reply will never be
                    # read, so the connection cannot serve another command.
                    await self.disconnect(nowait=True)
                    raise asyncio.CancelledError

        _RESET_AWARE[kind] = ResetAware
    return cast(type[AnyConnection], _RESET_AWARE[kind])


def connect(url: str) -> Redis:
    """A Redis client for `url`; nothing is sent until first use."""
    client = Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
        decode_responses=False,
    )
    pool = client.connection_pool
    pool.connection_class = _reset_aware(pool.connection_class)
    return client


def connect_to(url: str, cluster_url: str = "") -> RedisClient:
    """The one factory: a cluster client for `cluster_url` (seed URLs) when it is set, else a client for `url`."""
    return connect_cluster(cluster_url) if cluster_url.strip() else connect(url)


def connect_cluster(seeds: str) -> RedisCluster:
    """A Redis Cluster client for `seeds` (comma-separated redis:// URLs of any nodes); nothing is sent until use.

    The first seed's user, password and TLS apply to every node; the client learns the others from CLUSTER SLOTS.
    """
    urls = [url.strip() for url in seeds.split(",") if url.strip()]
    if not urls:
        raise ValueError("the cluster seed list names no node")
    others = [urlsplit(url) for url in urls[1:]]
    startup = [ClusterNode(str(part.hostname), part.port or 6379) for part in others]
    return _RedisCluster.from_url(
        urls[0],
        startup_nodes=startup,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
        decode_responses=False,
    )


async def _ping(redis: RedisClient) -> None:
    if isinstance(redis, RedisCluster):
        # Any node answers for the cluster once the client knows its slots (PING would ask every node, and a
        # failed master stays in the client's list until its next refresh).
        await redis.ping(target_nodes=RedisCluster.RANDOM)
    else:
        await redis.ping()


async def wait_for_redis(redis: RedisClient, *, stop: asyncio.Event | None = None, max_delay: float = 5.0) -> None:
    """Ping until Redis answers, backing off with jitter; returns early if `stop` is set."""
    delay = 0.1
    while True:
        try:
            await _ping(redis)
            return
        except TRANSIENT_REDIS_ERRORS as exc:
            log.warning("redis.unavailable", error=str(exc), retry_in=round(delay, 2))
        pause = delay * random.uniform(0.5, 1.0)
        if stop is None:
            await asyncio.sleep(pause)
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=pause)
                return
            except TimeoutError:
                pass
        delay = min(delay * 2, max_delay)
