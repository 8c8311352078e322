"""Group commit: the records of one shard's mails that finish at about the same time go to Redis in one MULTI/EXEC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pricealert.common.redisconn import RedisClient, RedisPipeline

Ops = Callable[[RedisPipeline], None]


@dataclass(frozen=True)
class _Pending:
    ops: Ops
    delete: Sequence[str]
    ack: Sequence[str]
    done: asyncio.Future[None]


class GroupCommit:
    """Queues each caller's commands and writes everything queued in one transaction per round trip.

    A caller returns once its commands are durable in Redis (or raises what the transaction raised).
    While one transaction is on the wire the next callers queue up behind it, so under load one round
    trip records many mails, and when idle a mail is recorded at once. Keys to delete and stream
    entries to acknowledge are merged into one DEL and one XACK per transaction. Every key of the commands
    queued here must be of the shard of `ack_stream` (one slot on a Redis Cluster): ShardCommits keeps one per shard.
    """

    def __init__(self, redis: RedisClient, ack_stream: str, ack_group: str) -> None:
        self.redis = redis
        self.ack_stream = ack_stream
        self.ack_group = ack_group
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def commit(self, ops: Ops, *, delete: Sequence[str] = (), ack: Sequence[str] = ()) -> None:
        """Apply `ops`, DEL `delete` and XACK `ack` atomically (within the current group's transaction)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(ops, delete, ack, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await asyncio.shield(done)

    async def _write(self) -> None:
        await asyncio.sleep(0)  # let the mails finishing in this turn of the event loop join the group
        while self._queue:
            group, self._queue = self._queue, []
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    delete: list[str] = []
                    ack: list[str] = []
                    for pending in group:
                        pending.ops(pipe)
                        delete.extend(pending.delete)
                        ack.extend(pending.ack)
                    if delete:
                        pipe.delete(*delete)
                    if ack:
                        pipe.xack(self.ack_stream, self.ack_group, *ack)
                    await pipe.execute()
            except BaseException as exc:  # every caller of the group learns that its records did not land
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(
                            exc if isinstance(exc, Exception) else ConnectionError("commit cancelled")
                        )
                if not isinstance(exc, Exception):
                    raise
            else:
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_result(None)


class ShardCommits:
    """One GroupCommit per shard, made on first use: each transaction holds one shard's keys only."""

    def __init__(self, redis: RedisClient, ack_stream_of: Callable[[int], str], ack_group: str) -> None:
        self.redis = redis
        self.ack_stream_of = ack_stream_of
        self.ack_group = ack_group
        self._commits: dict[int, GroupCommit] = {}

    def __getitem__(self, shard: int) -> GroupCommit:
        commits = self._commits.get(shard)
        if commits is None:
            commits = self._commits[shard] = GroupCommit(self.redis, self.ack_stream_of(shard), self.ack_group)
        return commits


def nothing(pipe: RedisPipeline) -> None:
    """Ops that add no command (for commits that only delete or acknowledge)."""
