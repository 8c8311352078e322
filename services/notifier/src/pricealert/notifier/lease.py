"""Send leases: one script per batch says which triggers are settled or go to no verified address, takes the rest.

The rule, for alert mails (a batch) and account mails (one at a time): a mail marked sent is settled; else
whoever sets its lease key (NX, with an expiry) sends it; everyone else leaves it to the holder.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from enum import IntEnum

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.scripts import lua

_LEASE_BATCH = lua("pricealert.notifier", "lease_batch")
_RENEW_LEASE = lua("pricealert.notifier", "renew_lease")
_TAKE_LEASE = lua("pricealert.notifier", "take_lease")
_RELEASE_LEASE = lua("pricealert.notifier", "release_lease")


class LeaseState(IntEnum):
    """What the precheck found for one trigger."""

    LEASED = 0  # ours now: send it
    SENT = 1  # sent already
    QUEUED = 2  # waits in the retry queue, which stands for this stream copy
    HELD = 3  # another sender holds it
    UNVERIFIED = 4  # its user's address is not verified: no mail goes to it


class Leases:
    """Takes and renews the per-trigger leases that keep two senders off one mail."""

    def __init__(self, redis: Redis, consumer_name: str, lease_ms: int) -> None:
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
        self, trigger_ids: Sequence[str], tokens: Sequence[str], queued: Sequence[bool], user_ids: Sequence[str]
    ) -> list[LeaseState]:
        """One round trip for the whole batch; `queued` marks the copies taken from the retry queue."""
        keys: list[str] = [names.ACCOUNTS_UNVERIFIED]
        for trigger_id in trigger_ids:
            keys += [
                names.notifier_sent_key(trigger_id),
                names.notifier_lease_key(trigger_id),
                names.notifier_retry_key(trigger_id),
            ]
        states = await self._lease_batch(
            keys=keys, args=[self.lease_ms, *tokens, *("1" if q else "0" for q in queued), *user_ids]
        )
        return [LeaseState(int(s)) for s in states]

    async def renew(self, trigger_id: str, token: str) -> bool:
        """Keep our lease (or take it back if it lapsed unclaimed); False if it is no longer ours to send."""
        renewed = await self._renew(
            keys=[names.notifier_lease_key(trigger_id), names.notifier_sent_key(trigger_id)],
            args=[token, self.lease_ms],
        )
        return bool(renewed == 1)

    async def take_one(self, sent_key: str, lease_key: str, token: str) -> LeaseState:
        """The rule for one mail under its own keys: SENT, LEASED (ours now, under `token`) or HELD."""
        return LeaseState(int(await self._take(keys=[sent_key, lease_key], args=[token, self.lease_ms])))

    async def release(self, lease_key: str, token: str) -> None:
        """Drop our lease after a failed send, so a retry need not wait for it to lapse; never someone else's."""
        await self._release(keys=[lease_key], args=[token])
