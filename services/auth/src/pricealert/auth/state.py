"""What the auth app holds while it runs: engine, Redis, keys, hasher, limiters, account events, readiness."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pricealert.auth.handlers import AccountEvents
from pricealert.auth.keys import DiskKeyRing
from pricealert.auth.ratelimit import LoginLimiter
from pricealert.auth.registration import SignupPolicy
from pricealert.auth.security import PasswordHasher
from pricealert.auth.service import TokenPolicy
from pricealert.auth.settings import AuthSettings
from pricealert.auth.signup_limits import SignupLimiter
from pricealert.common.redisconn import RedisClient


@dataclass
class AuthState:
    """The app's long-lived resources, built in the lifespan."""

    settings: AuthSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    keyring: DiskKeyRing
    hasher: PasswordHasher
    limiter: LoginLimiter
    policy: TokenPolicy
    signup_limiter: SignupLimiter
    account_events: AccountEvents
    signup_policy: SignupPolicy
    database_ready: asyncio.Event = field(default_factory=asyncio.Event)
    keys_published: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early once shutdown begins."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
