"""Channels in the alerts database through SQLAlchemy (SQLite and Postgres alike): rare writes, one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pricealert.alerts import repository
from pricealert.alerts.database import read_session, run_write
from pricealert.alerts.models import Alert, AlertStatus, Channel
from pricealert.common import names
from pricealert.common.channels import ChannelKind, ChannelStatus
from pricealert.common.events import AccountEvent

DELETED = ChannelStatus.DELETED.value
# Alerts that still deliver: a channel they list cannot be deleted.
LIVE_ALERTS = (AlertStatus.ACTIVE.value, AlertStatus.PAUSED.value)
MAILS_PER_WINDOW = 5  # email channels a user may add per window (channelservice.MAIL_WINDOW)


class TooManyMails(Exception):
    """The user added the most email channels allowed within the window (each may mail a verification link)."""


class ChannelInUse(Exception):
    """Alerts that are active or paused list the channel."""

    def __init__(self, alert_ids: list[str]) -> None:
        super().__init__(", ".join(alert_ids))
        self.alert_ids = alert_ids


async def _lock_user(session: AsyncSession, user_id: str) -> None:
    """Postgres: orders one user's channel creates, so the limit stays exact (SQLite: the write lock does)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"channels:{user_id}"))))


def _mine(user_id: str) -> list[ColumnElement[bool]]:
    return [Channel.user_id == user_id, Channel.status != DELETED]


class ChannelStore:
    """The channels table (and the outbox, for verification mails) on the alert store's engine."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(
        self, channel: Channel, *, limit: int, mail: AccountEvent | None = None, mails_since: datetime | None = None
    ) -> int | None:
        """Insert `channel` (and stage its verification `mail`) unless the user holds `limit`; their count then.

        With a mail, TooManyMails when the user added MAILS_PER_WINDOW email channels since `mails_since`.
        """

        async def work(session: AsyncSession) -> int | None:
            await _lock_user(session, channel.user_id)
            mine = select(func.count()).select_from(Channel).where(*_mine(channel.user_id))
            count = int((await session.execute(mine)).scalar_one())
            if count >= limit:
                return count
            if mail is not None and mails_since is not None:
                # Deleted channels count too: adding and deleting an address must not mail it again and again.
                recent = select(func.count()).where(
                    Channel.user_id == channel.user_id,
                    Channel.kind == ChannelKind.EMAIL.value,
                    Channel.created_at >= mails_since,
                )
                if int((await session.execute(recent)).scalar_one()) >= MAILS_PER_WINDOW:
                    raise TooManyMails()
            session.add(channel)
            if mail is not None:
                repository.add_outbox(session, names.ACCOUNT_EVENTS, mail.to_fields())
            return None

        return await run_write(self.sessions, work)

    async def get(self, channel_id: str, user_id: str) -> Channel | None:
        """One of the user's channels that is not deleted."""
        async with read_session(self.sessions) as session:
            stmt = select(Channel).where(Channel.id == channel_id, *_mine(user_id))
            return (await session.execute(stmt)).scalar_one_or_none()

    async def list_of(self, user_id: str) -> Sequence[Channel]:
        """The user's channels that are not deleted, oldest first."""
        async with read_session(self.sessions) as session:
            stmt = select(Channel).where(*_mine(user_id)).order_by(Channel.created_at, Channel.id)
            return list((await session.execute(stmt)).scalars().all())

    async def known(self, user_id: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` name the user's channels that are not deleted."""
        if not ids:
            return set()
        async with read_session(self.sessions) as session:
            stmt = select(Channel.id).where(Channel.id.in_(list(ids)), *_mine(user_id))
            return set((await session.execute(stmt)).scalars().all())

    async def update(
        self, channel_id: str, user_id: str, plan: Callable[[Channel], bool]
    ) -> tuple[Channel | None, bool]:
        """Lock the channel and let `plan` change it (bumping its version): (the channel or None, whether changed)."""

        async def work(session: AsyncSession) -> tuple[Channel | None, bool]:
            stmt = select(Channel).where(Channel.id == channel_id, *_mine(user_id)).with_for_update()
            channel = (await session.execute(stmt)).scalar_one_or_none()
            changed = channel is not None and plan(channel)
            if changed:
                await session.flush()
            return channel, changed

        return await run_write(self.sessions, work)

    async def delete(self, channel_id: str, user_id: str, now: datetime) -> Channel | None:
        """Mark the channel deleted unless an active or paused alert lists it (ChannelInUse); None if absent."""

        async def work(session: AsyncSession) -> Channel | None:
            stmt = select(Channel).where(Channel.id == channel_id, *_mine(user_id)).with_for_update()
            channel = (await session.execute(stmt)).scalar_one_or_none()
            if channel is None:
                return None
            # Ids are UUIDs: a substring of the comma-separated list matches that id alone.
            users = select(Alert.id).where(
                Alert.user_id == user_id,
                Alert.status.in_(LIVE_ALERTS),
                Alert.channel_ids.contains(channel_id),
            )
            if in_use := list((await session.execute(users.order_by(Alert.id).limit(50))).scalars().all()):
                raise ChannelInUse(in_use)
            channel.status = DELETED
            channel.secret = channel.previous_secret = channel.verify_token_hash = None
            channel.previous_secret_until = channel.verify_expires_at = None
            channel.version += 1
            channel.updated_at = now
            await session.flush()
            return channel

        return await run_write(self.sessions, work)

    async def verify(self, hashed: str, now: datetime) -> tuple[Channel | None, bool]:
        """Activate the unverified channel of a token's hash: (the channel, whether the token had expired)."""

        async def work(session: AsyncSession) -> tuple[Channel | None, bool]:
            stmt = select(Channel).where(Channel.verify_token_hash == hashed, Channel.status != DELETED)
            channel = (await session.execute(stmt.with_for_update())).scalar_one_or_none()
            if channel is None:
                return None, False
            expires = channel.verify_expires_at
            if expires is not None and expires <= now:
                return channel, True
            channel.status = ChannelStatus.ACTIVE.value
            channel.verify_token_hash = channel.verify_expires_at = None
            channel.version += 1
            channel.updated_at = now
            await session.flush()
            return channel, False

        return await run_write(self.sessions, work)

    async def for_resync(self, deleted_since: datetime) -> Sequence[Channel]:
        """Every channel not deleted, and those deleted since `deleted_since` (their tombstones)."""
        async with read_session(self.sessions) as session:
            stmt = select(Channel).where(or_(Channel.status != DELETED, Channel.updated_at >= deleted_since))
            return list((await session.execute(stmt.order_by(Channel.id))).scalars().all())
