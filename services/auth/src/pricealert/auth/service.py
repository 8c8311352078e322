"""The auth service's rules: accounts, login, token rotation and revocation, user administration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from pricealert.auth import metrics
from pricealert.auth.keys import DiskKeyRing
from pricealert.auth.models import RefreshToken, User
from pricealert.auth.ratelimit import LoginLimiter
from pricealert.auth.repository import RefreshTokenRepository, UserRepository
from pricealert.auth.schemas import TokenPair, UserUpdate
from pricealert.auth.security import PasswordHasher, sign_token
from pricealert.common.errors import Conflict, Forbidden, NotFound, Unauthorized
from pricealert.common.events import utc_now
from pricealert.common.tokens import TokenClaims, TokenType, verify

log = structlog.get_logger()


def normalize_email(email: str) -> str:
    """Emails are compared and stored lower-cased, without surrounding blanks."""
    return email.strip().lower()


def _invalid_credentials() -> Unauthorized:
    return Unauthorized("The email or password is wrong.", code="invalid_credentials")


def _account_disabled() -> Forbidden:
    return Forbidden("This account is deactivated.", code="account_disabled")


@dataclass(frozen=True)
class TokenPolicy:
    """Lifetimes of the tokens the service issues."""

    access_ttl: timedelta
    refresh_ttl: timedelta


class AuthService:
    """One request's worth of auth operations on one database session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        keyring: DiskKeyRing,
        hasher: PasswordHasher,
        limiter: LoginLimiter,
        policy: TokenPolicy,
    ) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.tokens = RefreshTokenRepository(session)
        self.keyring = keyring
        self.hasher = hasher
        self.limiter = limiter
        self.policy = policy

    async def create_user(
        self, *, email: str, password: str, username: str | None = None, is_admin: bool = False, is_active: bool = True
    ) -> User:
        """Create an account; 409 when the email or username is taken."""
        email = normalize_email(email)
        if await self.users.get_by_email(email) is not None:
            raise Conflict("An account with this email already exists.", code="email_taken")
        if username is not None and await self.users.username_taken(username):
            raise Conflict("This username is taken.", code="username_taken")
        user = User(
            email=email,
            username=username,
            password_hash=await self.hasher.hash(password),
            is_admin=is_admin,
            is_active=is_active,
        )
        try:
            await self.users.add(user)
        except IntegrityError as exc:  # a concurrent registration won the race
            raise Conflict("An account with this email or username already exists.", code="email_taken") from exc
        log.info("user.created", user_id=str(user.id), is_admin=is_admin)
        return user

    async def login(self, email: str, password: str, *, address: str) -> TokenPair:
        """Check credentials (attempts limited per account and address, see ratelimit) and open a login session."""
        with metrics.outcome_of(metrics.LOGINS):
            email = normalize_email(email)
            await self.limiter.attempt(email, address)  # counted before the slow password check
            user = await self.users.get_by_email(email)
            matches = await self.hasher.verify(password, user.password_hash if user is not None else None)
            if user is None or not matches:
                log.info("auth.login.failed", address=address)
                raise _invalid_credentials()
            with bound_contextvars(user_id=str(user.id)):
                await self.limiter.succeeded(email, address, remember=user.is_active)
                if not user.is_active:
                    raise _account_disabled()
                if self.hasher.needs_rehash(user.password_hash):
                    user.password_hash = await self.hasher.hash(password)
                pair = await self._issue_pair(user, family_id=uuid.uuid4().hex)
                log.info("auth.login.succeeded")
                return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; reusing a revoked one ends its whole login session."""
        with metrics.outcome_of(metrics.REFRESHES):
            claims = await verify(refresh_token, self.keyring, TokenType.REFRESH)
            row = await self.tokens.get(claims.token_id)
            if row is None or str(row.user_id) != claims.subject:
                raise Unauthorized("The refresh token is unknown.", code="invalid_token")
            with bound_contextvars(user_id=str(row.user_id)):
                new_family_member = uuid.uuid4().hex
                if row.revoked_at is not None or not await self.tokens.revoke_if_active(
                    row.jti,
                    now=utc_now(),
                    replaced_by=new_family_member,
                ):
                    await self._revoke_family_after_reuse(row)
                user = await self.users.get(row.user_id)
                if user is None or not user.is_active:
                    raise _account_disabled()
                return await self._issue_pair(user, family_id=row.family_id, refresh_jti=new_family_member)

    async def _revoke_family_after_reuse(self, row: RefreshToken) -> None:
        revoked = await self.tokens.revoke_family(row.family_id, now=utc_now())
        # Commit before raising: the request's session rolls back on errors, the revocation must stay.
        await self.session.commit()
        log.warning("auth.refresh.reused", family_id=row.family_id, revoked=revoked)
        raise Unauthorized("The refresh token was already used; the session is closed.", code="token_revoked")

    async def logout(self, refresh_token: str) -> None:
        """End the login session the refresh token belongs to (idempotent)."""
        try:
            claims = await verify(refresh_token, self.keyring, TokenType.REFRESH)
        except Unauthorized as exc:
            if exc.code == "token_expired":
                return  # an expired refresh token buys nothing; there is nothing left to revoke
            raise
        row = await self.tokens.get(claims.token_id)
        if row is not None:
            with bound_contextvars(user_id=str(row.user_id)):
                await self.tokens.revoke_family(row.family_id, now=utc_now())
                log.info("auth.logout", family_id=row.family_id)

    async def authenticate(self, access_token: str) -> User:
        """The active user an access token belongs to."""
        claims = await verify(access_token, self.keyring, TokenType.ACCESS)
        user = await self._user_of(claims)
        if not user.is_active:
            raise _account_disabled()
        return user

    async def _user_of(self, claims: TokenClaims) -> User:
        try:
            user_id = uuid.UUID(claims.subject)
        except ValueError as exc:
            raise Unauthorized("The token names no user.", code="invalid_token") from exc
        user = await self.users.get(user_id)
        if user is None:
            raise Unauthorized("The token's user no longer exists.", code="invalid_token")
        return user

    async def list_users(self, *, page: int, page_size: int) -> tuple[Sequence[User], int]:
        """One page of users, oldest first, and the total."""
        return await self.users.page(offset=(page - 1) * page_size, limit=page_size)

    async def get_user(self, user_id: uuid.UUID) -> User:
        """One user; 404 when unknown."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No such user.", code="user_not_found")
        return user

    async def update_user(self, actor: User, user_id: uuid.UUID, update: UserUpdate) -> User:
        """Activate, deactivate, promote or demote a user; deactivation ends all their sessions."""
        user = await self.get_user(user_id)
        if user.id == actor.id and (update.is_active is False or update.is_admin is False):
            raise Conflict("Admins cannot deactivate or demote themselves.", code="cannot_modify_self")
        if update.is_active is not None:
            user.is_active = update.is_active
            if not update.is_active:
                await self.tokens.revoke_user(user.id, now=utc_now())
        if update.is_admin is not None:
            user.is_admin = update.is_admin
        await self.session.flush()
        log.info("user.updated", user_id=str(user.id), by=str(actor.id), changes=update.model_dump(exclude_none=True))
        return user

    async def _issue_pair(self, user: User, *, family_id: str, refresh_jti: str | None = None) -> TokenPair:
        now = utc_now()
        key = self.keyring.signing_key
        access = sign_token(
            key, subject=user.id, email=user.email, token_type=TokenType.ACCESS, ttl=self.policy.access_ttl, now=now
        )
        refresh = sign_token(
            key,
            subject=user.id,
            email=user.email,
            token_type=TokenType.REFRESH,
            ttl=self.policy.refresh_ttl,
            now=now,
            jti=refresh_jti,
        )
        await self.tokens.add(
            RefreshToken(
                jti=refresh.jti, family_id=family_id, user_id=user.id, issued_at=now, expires_at=refresh.expires_at
            )
        )
        return TokenPair(
            access_token=access.token,
            refresh_token=refresh.token,
            expires_in=int(self.policy.access_ttl.total_seconds()),
        )
