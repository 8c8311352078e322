"""Auth's stream producers.

Consumes: no stream.

Produces: pricealert:signing-keys (SigningKey): publish_public_keys, called every AUTH_KEY_PUBLISH_INTERVAL_S by the
          key-maintenance loop (bootstrap.maintain_keys);
          pricealert:{auth}:account-events (AccountEvent): AccountEvents, each event with the change to the
          unverified-accounts set it stands for.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pricealert.auth.keys import KeyPair
from pricealert.auth.signup_limits import unavailable
from pricealert.common import names
from pricealert.common.events import AccountEvent, AccountEventType, SigningKey, utc_now
from pricealert.common.publisher import append, maxlen_for, publish_many
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient, RedisPipeline
from pricealert.common.scripts import lua

# A notice at most once per key and window: mark and append in one step, so a failure leaves neither.
_NOTICE_ONCE = lua("pricealert.auth", "notice_once")


async def publish_public_keys(
    redis: RedisClient, pairs: Sequence[KeyPair], root: Ed25519PrivateKey, *, validity: timedelta
) -> list[str]:
    """Append a root-signed statement for each key, valid for `validity` from now (one round trip).

    Verifiers drop a key that stops being re-published once its last statement lapses.
    """
    now = datetime.now(UTC)
    await publish_many(redis, SigningKey.stream, [pair.statement(root, now=now, validity=validity) for pair in pairs])
    return [pair.kid for pair in pairs]


def account_event(
    kind: AccountEventType,
    email: str,
    *,
    user_id: uuid.UUID | None = None,
    username: str | None = None,
    token: str | None = None,
    expires_at: datetime | None = None,
) -> AccountEvent:
    """A new account event with its own id."""
    return AccountEvent(
        type=kind,
        event_id=uuid.uuid4().hex,
        user_id=str(user_id) if user_id else None,
        email=email,
        username=username,
        token=token,
        expires_at=expires_at,
        occurred_at=utc_now(),
    )


class AccountEvents:
    """Appends account events; Redis being away is a 503, and the caller's transaction then rolls back."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._notice_once = redis.register_script(_NOTICE_ONCE)

    async def unverified(self, event: AccountEvent) -> None:
        """Append a registration or resent-link event and mark its account unverified, atomically."""
        await self._transaction(event, lambda pipe: pipe.sadd(names.ACCOUNTS_UNVERIFIED, str(event.user_id)))

    async def verified(self, event: AccountEvent) -> None:
        """Append `account.verified` and clear the account's unverified mark, atomically."""
        await self._transaction(event, lambda pipe: pipe.srem(names.ACCOUNTS_UNVERIFIED, str(event.user_id)))

    async def notice_once(self, key: str, window_s: int, event: AccountEvent) -> bool:
        """Append a notice unless one went out under `key` within the window; True if this one did."""
        fields = [part for pair in event.to_fields().items() for part in pair]
        try:
            sent = await self._notice_once(
                keys=[key, AccountEvent.stream], args=[window_s, maxlen_for(AccountEvent.stream), *fields]
            )
        except TRANSIENT_REDIS_ERRORS as exc:
            raise unavailable() from exc
        return bool(sent)

    async def _transaction(self, event: AccountEvent, mark: Callable[[RedisPipeline], object]) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                append(pipe, AccountEvent.stream, event)
                mark(pipe)
                await pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:
            raise unavailable() from exc
