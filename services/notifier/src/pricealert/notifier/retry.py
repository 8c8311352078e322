"""The retry queues, one per shard: deliveries (a trigger on one channel) waiting for another attempt, due on a
jittered exponential schedule."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pricealert.common import names
from pricealert.common.channels import ACCOUNT_EMAIL
from pricealert.common.events import Fields, decode_fields
from pricealert.common.redisconn import RedisClient, RedisPipeline
from pricealert.common.scripts import lua

META_PREFIX = "retry_"

# Take the due ids and push their score forward by the claim time in one step, so that two replicas
# never take the same id, and a replica that dies holding it only delays it by the claim time.
_CLAIM_DUE_RETRIES = lua("pricealert.notifier", "claim_due_retries")


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Delay after failed attempt `attempt` (1-based): between half and all of min(max, base * 2^(attempt-1))."""
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, 60))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Retrying:
    """A delivery taken from the retry queue (the trigger's fields and its channel), with what earlier attempts left
    behind; items queued before channels existed are the account email's, under the trigger id."""

    delivery_id: str
    channel_id: str
    fields: Fields
    attempts: int
    first_failed_ms: int
    entry_id: str
    last_error: str


class RetryQueue:
    """Per shard, the sorted set of due times plus one hash per waiting delivery; every change is part of a caller's
    MULTI, all of whose keys are of the trigger's shard."""

    def __init__(self, redis: RedisClient, claim_ms: int) -> None:
        self.redis = redis
        self.claim_ms = claim_ms
        self._claim = redis.register_script(_CLAIM_DUE_RETRIES)

    async def claim_due(self, shard: int, now_ms: int, limit: int) -> tuple[list[Retrying], float | None]:
        """Take up to `limit` of `shard`'s deliveries whose time has come (they return after claim_ms unless settled).

        Also returns, when none was due, the seconds until the earliest one is (None if the queue is empty).
        """
        queue = names.notifier_retry_queue_key(shard)
        reply = await self._claim(keys=[queue], args=[now_ms, now_ms + self.claim_ms, limit])
        head, *ids = [i.decode() if isinstance(i, bytes) else str(i) for i in reply]
        until_next = max(0.0, (float(head) - now_ms) / 1000) if head else None
        if not ids:
            return [], until_next
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in ids:
                pipe.hgetall(names.notifier_retry_key(shard, delivery_id))
            hashes = await pipe.execute()
        out: list[Retrying] = []
        orphans: list[str] = []
        for delivery_id, raw in zip(ids, hashes, strict=True):
            if not raw:  # settled between the claim and the read
                orphans.append(delivery_id)
                continue
            fields = decode_fields(raw)
            meta = {k: fields.pop(k) for k in [k for k in fields if k.startswith(META_PREFIX)]}
            out.append(
                Retrying(
                    delivery_id=delivery_id,
                    channel_id=meta.get("retry_channel_id", ACCOUNT_EMAIL),
                    fields=fields,
                    attempts=int(meta.get("retry_attempts", "0")),
                    first_failed_ms=int(meta.get("retry_first_failed_ms", str(now_ms))),
                    entry_id=meta.get("retry_entry_id", ""),
                    last_error=meta.get("retry_last_error", ""),
                )
            )
        if orphans:
            await self.redis.zrem(queue, *orphans)
        return out, None

    @staticmethod
    def schedule(pipe: RedisPipeline, shard: int, item: Retrying, due_ms: int) -> None:
        """Add to `pipe`: keep `item` (its fields and attempt count) in `shard`'s queue, due at `due_ms`."""
        mapping = {
            **item.fields,
            "retry_attempts": str(item.attempts),
            "retry_first_failed_ms": str(item.first_failed_ms),
            "retry_entry_id": item.entry_id,
            "retry_last_error": item.last_error[:2000],
            "retry_channel_id": item.channel_id,
        }
        key = names.notifier_retry_key(shard, item.delivery_id)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]  # redis-py's mapping keys are invariant (FieldT)
        pipe.zadd(names.notifier_retry_queue_key(shard), {item.delivery_id: due_ms})

    @staticmethod
    def forget(pipe: RedisPipeline, shard: int, delivery_id: str) -> None:
        """Add to `pipe`: drop whatever `shard`'s queue holds for `delivery_id`."""
        pipe.zrem(names.notifier_retry_queue_key(shard), delivery_id)
        pipe.delete(names.notifier_retry_key(shard, delivery_id))
