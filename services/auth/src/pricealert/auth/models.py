"""The auth service's tables: users, the refresh tokens of their login sessions, email verification tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Uuid, false, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pricealert.common.db import UtcDateTime


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the auth service's models."""


class User(Base):
    """A person who can log in; the email is stored lower-cased and is unique."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set only on the admin that ADMIN_EMAIL (or `pricealert users create-admin`) created: the only
    # account those may touch again, and then only its password.
    created_by_bootstrap: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, onupdate=_now)
    email_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def __init__(self, **kwargs: Any) -> None:
        # Accounts made by an admin, the CLI or the bootstrap are verified at creation; self-service
        # registration passes None until the owner follows the link in the verification mail. (Not a
        # column default: SQLAlchemy would apply it to an explicit None too.)
        kwargs.setdefault("email_verified_at", _now())
        super().__init__(**kwargs)

    @property
    def email_verified(self) -> bool:
        """Whether the owner proved the address is theirs (or an admin created the account)."""
        return self.email_verified_at is not None


# Usernames keep their case but are unique case-insensitively.
Index("uq_users_username_lower", func.lower(User.username), unique=True)


class RefreshToken(Base):
    """One issued refresh token; tokens of one login session share a family id."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    replaced_by: Mapped[str | None] = mapped_column(String(64), default=None)


class EmailVerificationToken(Base):
    """A verification link's token, stored only as its SHA-256 hash; single use, expiring."""

    __tablename__ = "email_verification_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
