"""The bootstrapped admin (ADMIN_EMAIL, `pricealert users create-admin`): created once, never another account.

The rule, in one place: with no account at the address, create an active admin and mark it as
bootstrapped. An account marked so may later get its password set (its sessions then end); nothing
else of it changes, so a deactivation or demotion by an admin stays. Any other account at the
address is refused and left alone: it may belong to someone who registered the address first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.auth.models import User
from pricealert.auth.repository import RefreshTokenRepository, UserRepository
from pricealert.auth.security import PasswordHasher
from pricealert.auth.service import normalize_email
from pricealert.common.events import utc_now


class AdminOutcome(StrEnum):
    """What ensure_admin did."""

    CREATED = "created"
    PASSWORD_SET = "password_set"
    UNCHANGED = "unchanged"
    ADOPTED = "adopted"  # an admin made before the bootstrap marker existed, with this very password
    REFUSED = "refused"  # an account the bootstrap did not create


@dataclass(frozen=True)
class AdminResult:
    """The outcome and the account it concerns."""

    outcome: AdminOutcome
    email: str
    user_id: str


def admin_address(email: str) -> str:
    """The admin email as stored: validated, normalised, lower-cased; ValueError when invalid."""
    try:
        return normalize_email(validate_email(email, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email: {exc}") from exc


async def ensure_admin(
    session: AsyncSession, hasher: PasswordHasher, email: str, password: str, *, set_password: bool
) -> AdminResult:
    """Create the bootstrapped admin, or (with `set_password`) give it `password`; commits."""
    address = admin_address(email)
    users = UserRepository(session)
    user = await users.get_by_email(address)
    if user is None:
        created = await _create(session, users, hasher, address, password)
        if created is not None:
            return AdminResult(AdminOutcome.CREATED, address, str(created.id))
        user = await users.get_by_email(address)  # another replica, or a registration, got there first
        if user is None:
            raise RuntimeError(f"creating the admin {address} conflicted with an account that is gone")
    if not user.created_by_bootstrap:
        # Upgrades: an admin the old bootstrap made is an admin whose password is ADMIN_PASSWORD.
        if not (user.is_admin and await hasher.verify(password, user.password_hash)):
            return AdminResult(AdminOutcome.REFUSED, address, str(user.id))
        user.created_by_bootstrap = True
        await session.commit()
        return AdminResult(AdminOutcome.ADOPTED, address, str(user.id))
    if not set_password or await hasher.verify(password, user.password_hash):
        return AdminResult(AdminOutcome.UNCHANGED, address, str(user.id))
    user.password_hash = await hasher.hash(password)
    await RefreshTokenRepository(session).revoke_user(user.id, now=utc_now())
    await session.commit()
    return AdminResult(AdminOutcome.PASSWORD_SET, address, str(user.id))


async def _create(
    session: AsyncSession, users: UserRepository, hasher: PasswordHasher, address: str, password: str
) -> User | None:
    user = User(
        email=address,
        password_hash=await hasher.hash(password),
        is_admin=True,
        is_active=True,
        created_by_bootstrap=True,
    )
    try:
        await users.add(user)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    return user
