"""Business rules of channels: create, change, rotate, delete, verify, test; each change reaches the registry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from redis.exceptions import RedisError

from pricealert.alerts import channelrules
from pricealert.alerts.auth import User
from pricealert.alerts.channelspec import publish_channel
from pricealert.alerts.channelstore import ChannelInUse, ChannelStore, TooManyMails
from pricealert.alerts.channeltests import send_test
from pricealert.alerts.models import Channel
from pricealert.common import names
from pricealert.common.channels import (
    ACCOUNT_EMAIL,
    MAX_CHANNELS_PER_ALERT,
    ChannelKind,
    ChannelStatus,
    ChannelTestOutcome,
)
from pricealert.common.errors import AppError, Conflict, InvalidInput, NotFound, TooManyRequests
from pricealert.common.events import AccountEvent, AccountEventType, utc_now
from pricealert.common.redisconn import RedisClient
from pricealert.common.urlguard import Resolver, TargetPolicy, system_resolver

log = structlog.get_logger()

VERIFY_TTL = timedelta(hours=24)
PREVIOUS_SECRET_TTL = timedelta(hours=24)
MAIL_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Created:
    """A new channel, and its signing secret (webhooks): shown this once."""

    channel: Channel
    secret: str | None


def _not_found(channel_id: str) -> NotFound:
    return NotFound(f"Channel {channel_id} does not exist.", code="channel_not_found", details={"id": channel_id})


class ChannelService:
    """Channel operations on the channels table; every change is written to the notifier's registry after its commit."""

    def __init__(
        self,
        store: ChannelStore,
        redis: RedisClient,
        *,
        policy: TargetPolicy,
        max_per_user: int,
        test_timeout_s: float = 15.0,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.store = store
        self.redis = redis
        self.policy = policy
        self.max_per_user = max_per_user
        self.test_timeout_s = test_timeout_s
        self.resolver = resolver

    async def publish(self, channel: Channel) -> None:
        """Write the channel to the registry; a failure is healed by the worker's resync, so it is only logged."""
        try:
            await publish_channel(self.redis, channel)
        except (RedisError, OSError) as exc:
            log.warning("channel.publish.failed", channel_id=channel.id, error=f"{type(exc).__name__}: {exc}")

    async def _account_verified(self, user: User) -> bool:
        """Whether auth counts the account's address as verified (its set of unverified accounts lacks the user)."""
        try:
            return not await self.redis.sismember(names.ACCOUNTS_UNVERIFIED, user.id)
        except (RedisError, OSError) as exc:  # unknown: the address is verified by mail like any other
            log.warning("channel.account_check.failed", user_id=user.id, error=f"{type(exc).__name__}: {exc}")
            return False

    async def create(
        self, user: User, kind: ChannelKind, *, name: str | None, address: str | None, url: str | None
    ) -> Created:
        """Check the target, store the channel (a verification mail staged with it), publish it."""
        target = channelrules.target_of(kind, address, url)
        now = utc_now()
        channel = Channel(
            id=str(uuid.uuid4()),
            user_id=user.id,
            kind=kind.value,
            name=name,
            status=ChannelStatus.ACTIVE.value,
            version=1,
            created_at=now,
            updated_at=now,
        )
        mail: AccountEvent | None = None
        secret: str | None = None
        if kind is ChannelKind.EMAIL:
            target = channelrules.normal_address(target)
            own = target.lower() == user.email.strip().lower()
            if not (own and await self._account_verified(user)):
                token = channelrules.new_token()
                channel.status = ChannelStatus.UNVERIFIED.value
                channel.verify_token_hash = channelrules.token_hash(token)
                channel.verify_expires_at = now + VERIFY_TTL
                mail = AccountEvent(
                    type=AccountEventType.CHANNEL_VERIFICATION,
                    event_id=str(uuid.uuid4()),
                    user_id=user.id,
                    email=target,
                    token=token,
                    expires_at=channel.verify_expires_at,
                    occurred_at=now,
                )
        else:
            await channelrules.check_url(kind, target, self.policy, self.resolver)
            if kind is ChannelKind.WEBHOOK:
                secret = channel.secret = channelrules.new_secret()
        channel.target = target
        try:
            count = await self.store.create(channel, limit=self.max_per_user, mail=mail, mails_since=now - MAIL_WINDOW)
        except TooManyMails as exc:
            raise TooManyRequests.retry_after(
                "Too many email channels added within an hour; try again later.",
                code="too_many_verification_mails",
                seconds=int(MAIL_WINDOW.total_seconds()),
            ) from exc
        if count is not None:
            raise Conflict(
                f"You already hold {count} channels, the most allowed.",
                code="channel_limit_reached",
                details={"limit": self.max_per_user},
            )
        await self.publish(channel)
        log.info("channel.created", channel_id=channel.id, user_id=user.id, kind=kind.value, status=channel.status)
        return Created(channel, secret)

    async def get(self, user: User, channel_id: str) -> Channel:
        """One of the user's channels."""
        channel = await self.store.get(channel_id, user.id)
        if channel is None:
            raise _not_found(channel_id)
        return channel

    async def list_channels(self, user: User) -> Sequence[Channel]:
        """The user's channels, oldest first."""
        return await self.store.list_of(user.id)

    async def update(
        self, user: User, channel_id: str, *, fields: set[str], name: str | None, status: str | None
    ) -> Channel:
        """Rename, disable or enable a channel (an unverified one is activated by its link only)."""
        now = utc_now()

        def plan(channel: Channel) -> bool:
            wanted: dict[str, object] = {}
            if "name" in fields:
                wanted["name"] = name
            if status is not None and status != channel.status:
                if channel.status == ChannelStatus.UNVERIFIED.value:
                    raise Conflict(
                        "An unverified channel is activated by the link mailed to its address.",
                        code="channel_unverified",
                        details={"id": channel.id},
                    )
                wanted.update(status=status, disabled_reason=None)
            changes = {k: v for k, v in wanted.items() if getattr(channel, k) != v}
            for key, value in changes.items():
                setattr(channel, key, value)
            if changes:
                channel.version += 1
                channel.updated_at = now
            return bool(changes)

        channel, changed = await self.store.update(channel_id, user.id, plan)
        if channel is None:
            raise _not_found(channel_id)
        if changed:
            await self.publish(channel)
            log.info("channel.updated", channel_id=channel.id, user_id=user.id, status=channel.status)
        return channel

    async def rotate(self, user: User, channel_id: str) -> Created:
        """A new signing secret for a webhook; the current one keeps signing for PREVIOUS_SECRET_TTL."""
        now = utc_now()
        secret = channelrules.new_secret()

        def plan(channel: Channel) -> bool:
            if channel.kind != ChannelKind.WEBHOOK.value:
                raise Conflict(
                    "Only webhook channels have a signing secret.",
                    code="channel_has_no_secret",
                    details={"id": channel.id, "kind": channel.kind},
                )
            channel.previous_secret, channel.previous_secret_until = channel.secret, now + PREVIOUS_SECRET_TTL
            channel.secret = secret
            channel.version += 1
            channel.updated_at = now
            return True

        channel, _ = await self.store.update(channel_id, user.id, plan)
        if channel is None:
            raise _not_found(channel_id)
        await self.publish(channel)
        log.info("channel.secret.rotated", channel_id=channel.id, user_id=user.id)
        return Created(channel, secret)

    async def delete(self, user: User, channel_id: str) -> None:
        """Delete a channel no active or paused alert lists."""
        try:
            channel = await self.store.delete(channel_id, user.id, utc_now())
        except ChannelInUse as exc:
            raise Conflict(
                "Alerts still notify this channel; change or delete them first.",
                code="channel_in_use",
                details={"id": channel_id, "alert_ids": exc.alert_ids},
            ) from exc
        if channel is None:
            raise _not_found(channel_id)
        await self.publish(channel)
        log.info("channel.deleted", channel_id=channel_id, user_id=user.id)

    async def verify(self, token: str) -> Channel:
        """Activate the channel the mailed link names."""
        channel, expired = await self.store.verify(channelrules.token_hash(token), utc_now())
        if channel is None:
            raise AppError(
                "This verification link is unknown or was already used.",
                code="invalid_verification_token",
                status_code=400,
            )
        if expired:
            raise AppError(
                "This verification link has expired; delete the channel and add it again for a new one.",
                code="verification_token_expired",
                status_code=410,
            )
        await self.publish(channel)
        log.info("channel.verified", channel_id=channel.id, user_id=channel.user_id)
        return channel

    async def check_ids(self, user: User, ids: list[str]) -> None:
        """The channels an alert names: at most MAX_CHANNELS_PER_ALERT, no repeats, each `email` or the user's."""
        if not ids:
            raise InvalidInput("channels needs at least one channel id (or leave it out).", code="no_channels")
        if len(ids) > MAX_CHANNELS_PER_ALERT:
            raise InvalidInput(
                f"An alert notifies at most {MAX_CHANNELS_PER_ALERT} channels.",
                code="too_many_channels",
                details={"max": MAX_CHANNELS_PER_ALERT},
            )
        if len(set(ids)) != len(ids):
            raise InvalidInput("A channel is named twice.", code="duplicate_channel", details={"channels": ids})
        known = await self.store.known(user.id, [i for i in ids if i != ACCOUNT_EMAIL])
        for channel_id in ids:
            if channel_id != ACCOUNT_EMAIL and channel_id not in known:
                raise InvalidInput(
                    f"No channel {channel_id} of yours.", code="unknown_channel", details={"id": channel_id}
                )

    async def test(self, user: User, channel_id: str) -> ChannelTestOutcome:
        """Ask the notifier for a test delivery on the channel (or `email`) and wait for its outcome (504 without)."""
        if channel_id != ACCOUNT_EMAIL:
            await self.get(user, channel_id)
        outcome = await send_test(
            self.redis, channel_id=channel_id, user_id=user.id, email=user.email, timeout_s=self.test_timeout_s
        )
        log.info("channel.tested", channel_id=channel_id, user_id=user.id, delivered=outcome.delivered)
        return outcome
