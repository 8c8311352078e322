"""Every SQL query of the auth service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.auth.models import EmailVerificationToken, RefreshToken, User


class UserRepository:
    """Reads and writes users."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with `user_id`, if any."""
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this (already lower-cased) email, if any."""
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def username_taken(self, username: str) -> bool:
        """Whether a user already holds `username`, compared case-insensitively."""
        result = await self.session.execute(
            select(func.count()).select_from(User).where(func.lower(User.username) == username.lower())
        )
        return bool(result.scalar_one())

    async def add(self, user: User) -> User:
        """Insert `user` and flush so constraint violations surface here."""
        self.session.add(user)
        await self.session.flush()
        return user

    async def page(self, *, offset: int, limit: int) -> tuple[Sequence[User], int]:
        """One page of users, oldest first, and the total count."""
        total = (await self.session.execute(select(func.count()).select_from(User))).scalar_one()
        rows = await self.session.execute(select(User).order_by(User.created_at, User.id).offset(offset).limit(limit))
        return rows.scalars().all(), int(total)


class RefreshTokenRepository:
    """Reads and writes refresh tokens and their families (login sessions)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> None:
        """Record an issued refresh token."""
        self.session.add(token)
        await self.session.flush()

    async def get(self, jti: str) -> RefreshToken | None:
        """The refresh token with `jti`, if it was ever issued."""
        return await self.session.get(RefreshToken, jti)

    async def revoke_if_active(self, jti: str, *, now: datetime, replaced_by: str | None) -> bool:
        """Revoke one token unless already revoked; False means someone else got there first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.jti == jti, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, replaced_by=replaced_by)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def revoke_family(self, family_id: str, *, now: datetime) -> int:
        """Revoke every still-active token of one login session."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def revoke_user(self, user_id: uuid.UUID, *, now: datetime) -> int:
        """Revoke every still-active token of one user (all their sessions)."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_expired(self, *, before: datetime) -> int:
        """Delete tokens that expired before `before`."""
        result = await self.session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < before).execution_options(synchronize_session=False)
        )
        return _rowcount(result)


class VerificationTokenRepository:
    """Reads and writes email verification tokens (stored as hashes)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: EmailVerificationToken) -> None:
        """Record an issued token."""
        self.session.add(token)
        await self.session.flush()

    async def get(self, token_hash: str) -> EmailVerificationToken | None:
        """The token with this hash, if it was ever issued."""
        return await self.session.get(EmailVerificationToken, token_hash)

    async def use(self, token_hash: str, *, now: datetime) -> bool:
        """Mark one unused, unexpired token used; False if it is not (anymore): single use, even in parallel."""
        result = await self.session.execute(
            update(EmailVerificationToken)
            .where(
                EmailVerificationToken.token_hash == token_hash,
                EmailVerificationToken.used_at.is_(None),
                EmailVerificationToken.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def retire_user(self, user_id: uuid.UUID, *, now: datetime) -> int:
        """Mark every other unused token of a user used (the address is verified; they are moot)."""
        result = await self.session.execute(
            update(EmailVerificationToken)
            .where(EmailVerificationToken.user_id == user_id, EmailVerificationToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_expired(self, *, before: datetime) -> int:
        """Delete tokens that expired before `before`."""
        result = await self.session.execute(
            delete(EmailVerificationToken)
            .where(EmailVerificationToken.expires_at < before)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
