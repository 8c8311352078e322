"""Limits of self-service sign-up in Redis: registrations and verification mails per address and per account."""

from __future__ import annotations

from dataclasses import dataclass

from pricealert.common import names
from pricealert.common.errors import ServiceUnavailable, TooManyRequests
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.common.scripts import lua

ADDRESS = "address"
RESEND = "resend"

# Count first, compare after, in one step: N parallel requests cannot all read a count below the limit.
# A counter gets its expiry in the same step, so a crash can never leave one without.
_COUNT_SIGNUP_REQUESTS = lua("pricealert.auth", "count_signup_requests")


@dataclass(frozen=True)
class SignupLimits:
    """How many registrations (and verification mails) each scope may ask for within one window."""

    window_s: int
    per_address: int
    resends_per_account: int


def unavailable() -> ServiceUnavailable:
    """The answer while Redis, which every sign-up step needs, is away."""
    return ServiceUnavailable("Registration is unavailable right now; try again shortly.")


class SignupLimiter:
    """Counts sign-up requests atomically before any costly work, and refuses those over a limit."""

    def __init__(self, redis: RedisClient, limits: SignupLimits) -> None:
        self.limits = limits
        self._count = redis.register_script(_COUNT_SIGNUP_REQUESTS)

    async def count_registration(self, address: str) -> None:
        """Count one registration from `address`; 429 when the address is over its limit."""
        await self._check(
            [(names.signup_counter_key(ADDRESS, address), self.limits.per_address)],
            "Too many registrations from this address; try again later.",
            "too_many_registrations",
        )

    async def count_resend(self, address: str, email: str) -> None:
        """Count one verification-mail request, against the address and the (possibly unknown) account."""
        await self._check(
            [
                (names.signup_counter_key(ADDRESS, address), self.limits.per_address),
                (names.signup_counter_key(RESEND, email), self.limits.resends_per_account),
            ],
            "Too many verification mails asked for; try again later.",
            "too_many_verification_requests",
        )

    async def _check(self, scopes: list[tuple[str, int]], message: str, code: str) -> None:
        try:
            replies = await self._count(keys=[key for key, _ in scopes], args=[self.limits.window_s])
        except TRANSIENT_REDIS_ERRORS as exc:
            raise unavailable() from exc
        for index, (_, limit) in enumerate(scopes):
            count, ttl = int(replies[2 * index]), int(replies[2 * index + 1])
            if count > limit:
                raise TooManyRequests.retry_after(message, code=code, seconds=ttl)
