"""Login limits in Redis: every attempt is counted before the password check, in one atomic step.

Three fixed-window counters: one account from one client address, one client address, one account
from everywhere. The last one is skipped for an address the account logged in from before (a
"known address"), so a stranger's failures slow guessing without locking the owner out.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.errors import ServiceUnavailable, TooManyRequests
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS

ACCOUNT = "account"
ADDRESS = "address"
# Most addresses remembered per account (the newest win): bounds the set of a roaming user.
MAX_KNOWN_ADDRESSES = 50

# KEYS: pair, address, account, known addresses. ARGV: window s, the three limits (same order),
# client address, known-address lifetime ms. Returns 0 (counted, go on) or the seconds to wait.
# Checking and counting in one script is what stops N parallel guesses from all passing the check.
_ATTEMPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seen = redis.call('ZSCORE', KEYS[4], ARGV[5])
local known = seen and tonumber(seen) >= now_ms - tonumber(ARGV[6])
local window = tonumber(ARGV[1])
local wait = 0
for i = 1, 3 do
  if i < 3 or not known then
    local count = tonumber(redis.call('GET', KEYS[i]) or '0')
    if count >= tonumber(ARGV[i + 1]) then
      local ttl = redis.call('TTL', KEYS[i])
      if ttl < 0 then redis.call('EXPIRE', KEYS[i], window); ttl = window end
      if ttl > wait then wait = ttl end
    end
  end
end
if wait > 0 then return math.max(wait, 1) end
for i = 1, 3 do
  redis.call('INCR', KEYS[i])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], window) end
end
return 0
"""

# KEYS as above. ARGV: client address, known-address lifetime ms, remember (1/0), most addresses kept.
# The attempt was counted up front; a right password gives it back and forgets this pair's failures.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
if ARGV[3] == '1' then
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local lifetime = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[4], now_ms, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now_ms - lifetime))
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[4]) + 1))
  redis.call('PEXPIRE', KEYS[4], lifetime)
end
return 0
"""


@dataclass(frozen=True)
class LoginLimits:
    """How many attempts each scope may have counted within one window, and how long an address stays known."""

    window_s: int
    per_account_address: int
    per_address: int
    per_account: int
    known_address_ttl_s: int


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("Login is unavailable right now; try again shortly.")


class LoginLimiter:
    """Counts login attempts before the password check and refuses those over a limit (429)."""

    def __init__(self, redis: Redis, limits: LoginLimits) -> None:
        self.redis = redis
        self.limits = limits

    @staticmethod
    def _keys(email: str, address: str) -> list[str]:
        return [
            names.login_pair_failures_key(email, address),
            names.login_failures_key(ADDRESS, address),
            names.login_failures_key(ACCOUNT, email),
            names.login_known_addresses_key(email),
        ]

    async def attempt(self, email: str, address: str) -> None:
        """Count one attempt, or raise TooManyRequests (with Retry-After) when a limit is reached."""
        limits = self.limits
        try:
            wait = await self.redis.eval(
                _ATTEMPT,
                4,
                *self._keys(email, address),
                str(limits.window_s),
                str(limits.per_account_address),
                str(limits.per_address),
                str(limits.per_account),
                address,
                str(limits.known_address_ttl_s * 1000),
            )
        except TRANSIENT_REDIS_ERRORS as exc:
            raise _unavailable() from exc
        if int(wait) > 0:
            raise TooManyRequests.retry_after(
                "Too many failed logins; try again later.", code="too_many_login_attempts", seconds=int(wait)
            )

    async def succeeded(self, email: str, address: str, *, remember: bool) -> None:
        """Give back a right password's attempt, forget this pair's failures and (if `remember`) know the address."""
        try:
            await self.redis.eval(
                _SUCCEEDED,
                4,
                *self._keys(email, address),
                address,
                str(self.limits.known_address_ttl_s * 1000),
                "1" if remember else "0",
                str(MAX_KNOWN_ADDRESSES),
            )
        except TRANSIENT_REDIS_ERRORS as exc:
            raise _unavailable() from exc
