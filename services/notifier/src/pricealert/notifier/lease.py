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

# KEYS[1] is the set of unverified accounts, then per trigger (keys sent, lease, retry): 1 if sent already,
# 4 if its user's address is not verified, 2 if a stream copy of a trigger that waits in the retry queue
# (that copy stands for it), else take the lease: 0 if taken, 3 if someone holds it.
_PRECHECK = """
local n = (#KEYS - 1) / 3
local out = {}
for i = 1, n do
  local sent, lease, retry = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  if redis.call('EXISTS', sent) == 1 then
    out[i] = 1
  elseif redis.call('SISMEMBER', KEYS[1], ARGV[1 + 2 * n + i]) == 1 then
    out[i] = 4
  elseif ARGV[1 + n + i] == '0' and redis.call('EXISTS', retry) == 1 then
    out[i] = 2
  elseif redis.call('SET', lease, ARGV[1 + i], 'NX', 'PX', ARGV[1]) then
    out[i] = 0
  else
    out[i] = 3
  end
end
return out
"""

# Extend our lease, or take it again if it lapsed and nobody else took it; never once the mail is sent.
_RENEW = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# The rule for one mail: 1 if sent already, else take the lease: 0 if taken, 3 if someone holds it.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
return 3
"""

# Drop our lease (after a failure) unless someone else took it meanwhile.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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
        self._precheck = redis.register_script(_PRECHECK)
        self._renew = redis.register_script(_RENEW)
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
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
        states = await self._precheck(
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
