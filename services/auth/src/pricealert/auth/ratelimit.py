"""Failed-login counters in Redis, per account and per client address (fixed windows)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.errors import ServiceUnavailable, TooManyRequests
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS

ACCOUNT = "account"
ADDRESS = "address"

# INCR and start the window in one step, so a crash can never leave a counter without expiry.
_RECORD_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@dataclass(frozen=True)
class LoginLimits:
    """How many failures each scope may collect within one window."""

    window_s: int
    per_account: int
    per_address: int


class LoginLimiter:
    """Refuses logins for an account or address that failed too often; counts failures."""

    def __init__(self, redis: Redis, limits: LoginLimits) -> None:
        self.redis = redis
        self.limits = limits

    def _keys(self, email: str, address: str) -> list[tuple[str, int]]:
        return [
            (names.login_failures_key(ACCOUNT, email), self.limits.per_account),
            (names.login_failures_key(ADDRESS, address), self.limits.per_address),
        ]

    async def check(self, email: str, address: str) -> None:
        """Raise TooManyRequests (with Retry-After) when either scope is over its limit."""
        keys = self._keys(email, address)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, _ in keys:
                    pipe.get(key)
                    pipe.ttl(key)
                replies = await pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:
            raise ServiceUnavailable("Login is unavailable right now; try again shortly.") from exc
        for index, (_, limit) in enumerate(keys):
            count, ttl = replies[2 * index], replies[2 * index + 1]
            if count is not None and int(count) >= limit:
                retry_after = max(int(ttl), 1)
                raise TooManyRequests(
                    "Too many failed logins; try again later.", code="too_many_login_attempts",
                    details={"retry_after_s": retry_after}, headers={"Retry-After": str(retry_after)},
                )

    async def record_failure(self, email: str, address: str) -> None:
        """Count one failed login against the account and the address."""
        try:
            for key, _ in self._keys(email, address):
                await self.redis.eval(_RECORD_FAILURE, 1, key, str(self.limits.window_s))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise ServiceUnavailable("Login is unavailable right now; try again shortly.") from exc

    async def reset_account(self, email: str) -> None:
        """Forget an account's failures after a successful login."""
        try:
            await self.redis.delete(names.login_failures_key(ACCOUNT, email))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise ServiceUnavailable("Login is unavailable right now; try again shortly.") from exc
