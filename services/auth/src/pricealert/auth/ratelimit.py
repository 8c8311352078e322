"""Login limits in Redis: every attempt is counted before the password check, in one atomic step.

Three fixed-window counters: one account from one client address, one client address, one account
from everywhere. The last one is skipped for an address the account logged in from before (a
"known address"), so a stranger's failures slow guessing without locking the owner out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pricealert.common import names
from pricealert.common.errors import ServiceUnavailable, TooManyRequests
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.common.scripts import lua

ACCOUNT = "account"
ADDRESS = "address"
# Most addresses remembered per account (the newest win): bounds the set of a roaming user.
MAX_KNOWN_ADDRESSES = 50

# Checking and counting in one script is what stops N parallel guesses from all passing the check.
_COUNT_LOGIN_ATTEMPT = lua("pricealert.auth", "count_login_attempt")
# The attempt was counted up front; a right password gives it back and forgets this pair's failures.
_RECORD_LOGIN_SUCCESS = lua("pricealert.auth", "record_login_success")


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

    def __init__(self, redis: RedisClient, limits: LoginLimits) -> None:
        self.redis = redis
        self.limits = limits
        self._count_attempt = redis.register_script(_COUNT_LOGIN_ATTEMPT)
        self._record_success = redis.register_script(_RECORD_LOGIN_SUCCESS)

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
            wait = await self._count_attempt(
                keys=self._keys(email, address),
                args=[
                    str(limits.window_s),
                    str(limits.per_account_address),
                    str(limits.per_address),
                    str(limits.per_account),
                    address,
                    str(limits.known_address_ttl_s * 1000),
                ],
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
            await self._record_success(
                keys=self._keys(email, address),
                args=[
                    address,
                    str(self.limits.known_address_ttl_s * 1000),
                    "1" if remember else "0",
                    str(MAX_KNOWN_ADDRESSES),
                ],
            )
        except TRANSIENT_REDIS_ERRORS as exc:
            raise _unavailable() from exc
