"""Send leases: one script per batch of a shard says which deliveries are settled and takes the rest.

The rule, for alert deliveries (a batch; one per trigger and channel, keyed by the delivery id: the trigger id for
the account email) and account mails (one at a time): a delivery marked sent is settled; else whoever sets its lease
key (NX, with an expiry) sends it; everyone else leaves it to the holder. Every key a delivery's rule touches lives
in its trigger's shard (tag {s<k>}); an account mail's keys carry the tag {auth}.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from pricealert.common import names
from pricealert.common.redisconn import RedisClient
from pricealert.common.scripts import lua

_LEASE_BATCH = lua("pricealert.notifier", "lease_batch")
# Run at maxmemory too: a mail sent waits for its record there, and its lease must outlast the refusal.
_RENEW_LEASE = lua("pricealert.notifier", "renew_lease", flags="allow-oom")
_TAKE_LEASE = lua("pricealert.notifier", "take_lease")
_RELEASE_LEASE = lua("pricealert.notifier", "release_lease")


class LeaseState(IntEnum):
    """What the precheck found for one delivery."""

    LEASED = 0  # ours now: send it
    SENT = 1  # sent already
    QUEUED = 2  # waits in the retry queue, which stands for this stream copy
    HELD = 3  # another sender holds it
    UNVERIFIED = 4  # its user's address is not verified: no mail goes to it (the lease is ours, to drop)


def delivery_keys(shard: int, delivery_id: str) -> list[str]:
    """The sent, lease and retry keys of one delivery, in its shard (the order lease_batch.lua reads them in)."""
    return [
        names.notifier_sent_key(shard, delivery_id),
        names.notifier_lease_key(shard, delivery_id),
        names.notifier_retry_key(shard, delivery_id),
    ]


class Leases:
    """Takes and renews the per-delivery leases that keep two senders off one delivery."""

    def __init__(self, redis: RedisClient, consumer_name: str, lease_ms: int) -> None:
        self.redis = redis
        self.lease_ms = lease_ms
        self._lease_batch = redis.register_script(_LEASE_BATCH)
        self._renew = redis.register_script(_RENEW_LEASE)
        self._take = redis.register_script(_TAKE_LEASE)
        self._release = redis.register_script(_RELEASE_LEASE)
        self._tokens = itertools.count()
        self._prefix = f"{consumer_name}:{os.getpid()}:{time.monotonic_ns() % 1_000_000}"

    def new_token(self) -> str:
        """A token no other lease of any replica carries."""
        return f"{self._prefix}:{next(self._tokens)}"

    async def take(
        self,
        shard: int,
        delivery_ids: Sequence[str],
        tokens: Sequence[str],
        queued: Sequence[bool],
        user_ids: Sequence[str | None],
    ) -> list[LeaseState]:
        """One round trip for a batch of `shard`'s deliveries; `queued` marks the copies taken from the retry queue,
        `user_ids` the account whose verified address a delivery needs (None: it needs none)."""
        keys = [key for delivery_id in delivery_ids for key in delivery_keys(shard, delivery_id)]
        users = sorted({user for user in user_ids if user is not None})
        # The unverified set carries the tag {auth}, so it cannot join the shard's script: it is asked at the same
        # time, not atomically with it. Auth verifying an address between the check and the send only withholds
        # or sends that user's mail by a few ms; the sent mark and the lease alone decide who sends, so no mail is
        # ever sent twice.
        asked = self.redis.smismember(names.ACCOUNTS_UNVERIFIED, users) if users else _no_flags()
        replies: tuple[Any, Any] = await asyncio.gather(
            self._lease_batch(keys=keys, args=[self.lease_ms, *tokens, *("1" if q else "0" for q in queued)]),
            asked,
            return_exceptions=True,
        )
        states, flags = replies
        if isinstance(states, BaseException):
            raise states
        if isinstance(flags, BaseException):
            # Leases kept for a failed batch would hold its triggers up until they lapse: give them back.
            taken = [(d, token) for d, token, s in zip(delivery_ids, tokens, states, strict=True) if int(s) == 0]
            await asyncio.gather(
                *(self.release(names.notifier_lease_key(shard, t), token) for t, token in taken),
                return_exceptions=True,
            )
            raise flags
        unverified = {user for user, flag in zip(users, flags, strict=True) if int(flag)}
        out: list[LeaseState] = []
        for raw, user_id in zip(states, user_ids, strict=True):
            state = LeaseState(int(raw))
            # Sent, queued or held: whoever settles the delivery checks again; a lease taken here is dropped by
            # the commit that records the refusal.
            out.append(LeaseState.UNVERIFIED if state is LeaseState.LEASED and user_id in unverified else state)
        return out

    async def renew(self, shard: int, delivery_id: str, token: str) -> bool:
        """Keep our lease (or take it back if it lapsed unclaimed); False if it is no longer ours to send."""
        renewed = await self._renew(
            keys=[names.notifier_lease_key(shard, delivery_id), names.notifier_sent_key(shard, delivery_id)],
            args=[token, self.lease_ms],
        )
        return bool(renewed == 1)

    async def take_one(self, sent_key: str, lease_key: str, token: str) -> LeaseState:
        """The rule for one mail under its own keys: SENT, LEASED (ours now, under `token`) or HELD."""
        return LeaseState(int(await self._take(keys=[sent_key, lease_key], args=[token, self.lease_ms])))

    async def release(self, lease_key: str, token: str) -> None:
        """Drop our lease after a failed send, so a retry need not wait for it to lapse; never someone else's."""
        await self._release(keys=[lease_key], args=[token])


async def _no_flags() -> list[int]:
    """The unverified flags of a batch none of whose deliveries needs a verified account address."""
    return []
