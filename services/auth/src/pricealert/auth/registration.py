"""Self-service sign-up: registration that reveals no account, email verification, new verification links."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.auth import metrics
from pricealert.auth.handlers import AccountEvents, account_event
from pricealert.auth.models import EmailVerificationToken, User
from pricealert.auth.repository import UserRepository, VerificationTokenRepository
from pricealert.auth.schemas import SignupAccepted, VerifyResult
from pricealert.auth.security import PasswordHasher
from pricealert.auth.service import normalize_email
from pricealert.auth.signup_limits import SignupLimiter
from pricealert.common import names
from pricealert.common.errors import AppError
from pricealert.common.events import AccountEventType, utc_now

log = structlog.get_logger()


@dataclass(frozen=True)
class SignupPolicy:
    """Whether addresses must be verified, how long a link lasts, how often a notice may go to one address."""

    require_verified_email: bool
    token_ttl: timedelta
    notice_window_s: int


def token_hash(token: str) -> str:
    """What the database keeps of a verification token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _hours(ttl: timedelta) -> str:
    hours = ttl.total_seconds() / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{ttl.total_seconds() / 60:g} minutes"


def _invalid_token() -> AppError:
    return AppError(
        "This verification link is unknown or was already used; ask for a new one with POST /auth/verify/resend.",
        code="invalid_verification_token",
        status_code=400,
    )


def _expired_token() -> AppError:
    return AppError(
        "This verification link has expired; ask for a new one with POST /auth/verify/resend.",
        code="verification_token_expired",
        status_code=400,
    )


class Registration:
    """One request's worth of sign-up work on one database session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        hasher: PasswordHasher,
        limiter: SignupLimiter,
        events: AccountEvents,
        policy: SignupPolicy,
    ) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.tokens = VerificationTokenRepository(session)
        self.hasher = hasher
        self.limiter = limiter
        self.events = events
        self.policy = policy

    def accepted(self) -> SignupAccepted:
        """The one answer to every registration, whether or not the address (or username) is taken."""
        if self.policy.require_verified_email:
            return SignupAccepted(
                status="verification_sent",
                message=(
                    "Check your inbox: a link to verify the address is on its way (valid for "
                    f"{_hours(self.policy.token_ttl)}). You can log in meanwhile; alert emails start once the "
                    "address is verified."
                ),
            )
        return SignupAccepted(status="registered", message="If the address was free, the account is ready: log in.")

    async def register(self, *, email: str, password: str, username: str | None, address: str) -> SignupAccepted:
        """Create an unverified account and mail its link, or mail a notice: the same answer either way."""
        with metrics.outcome_of(metrics.REGISTRATIONS, ok=None):
            await self.limiter.count_registration(address)
            email = normalize_email(email)
            # Hashed on every path, so that a taken address answers no faster than a new one.
            password_hash = await self.hasher.hash(password)
            existing = await self.users.get_by_email(email)
            if existing is not None:
                await self._notice(AccountEventType.REGISTRATION_REPEATED, email, str(existing.id), user=existing)
                metrics.REGISTRATIONS.labels("email_taken").inc()
                return self.accepted()
            if username is not None and await self.users.username_taken(username):
                await self._notice(AccountEventType.REGISTRATION_REFUSED, email, email, username=username)
                metrics.REGISTRATIONS.labels("username_taken").inc()
                return self.accepted()
            await self._create(email, username, password_hash)
            return self.accepted()

    async def _create(self, email: str, username: str | None, password_hash: str) -> None:
        verified_at = None if self.policy.require_verified_email else utc_now()
        user = User(email=email, username=username, password_hash=password_hash, email_verified_at=verified_at)
        try:
            await self.users.add(user)
        except IntegrityError:  # a parallel registration took the address or username: answer as if taken
            await self.session.rollback()
            log.info("auth.register.raced")
            metrics.REGISTRATIONS.labels("email_taken").inc()
            return
        if self.policy.require_verified_email:
            # Published before the commit: Redis away is a 503 and the account is never created unverifiable.
            await self._send_link(user, AccountEventType.REGISTERED)
        log.info("auth.register.created", user_id=str(user.id), verified=user.email_verified)
        metrics.REGISTRATIONS.labels("ok").inc()

    async def _notice(
        self, kind: AccountEventType, email: str, scope: str, *, user: User | None = None, username: str | None = None
    ) -> None:
        """Tell the address what happened, at most once per window: it cannot be used to flood a mailbox."""
        event = account_event(kind, email, user_id=user.id if user else None, username=username)
        sent = await self.events.notice_once(names.signup_notice_key(scope), self.policy.notice_window_s, event)
        log.info("auth.register.notice", kind=kind.value, user_id=event.user_id, mailed=sent)

    async def _send_link(self, user: User, kind: AccountEventType) -> None:
        token = secrets.token_urlsafe(32)
        expires_at = utc_now() + self.policy.token_ttl
        await self.tokens.add(
            EmailVerificationToken(token_hash=token_hash(token), user_id=user.id, expires_at=expires_at)
        )
        await self.events.unverified(
            account_event(kind, user.email, user_id=user.id, token=token, expires_at=expires_at)
        )

    async def verify(self, token: str) -> VerifyResult:
        """Mark the address of the token's account verified; the token works once, until it expires."""
        with metrics.outcome_of(metrics.VERIFICATIONS, ok=None):
            hashed = token_hash(token)
            row = await self.tokens.get(hashed)
            user = await self.users.get(row.user_id) if row is not None else None
            if row is None or user is None:
                raise _invalid_token()
            if user.email_verified:
                metrics.VERIFICATIONS.labels("already_verified").inc()
                return VerifyResult(status="already_verified", message="This address is verified already.")
            now = utc_now()
            if not await self.tokens.use(hashed, now=now):
                raise _expired_token() if row.expires_at <= now else _invalid_token()
            user.email_verified_at = now
            await self.tokens.retire_user(user.id, now=now)
            await self.session.flush()
            # Before the commit: a failed commit leaves the mark cleared, which the token's owner earned anyway.
            await self.events.verified(account_event(AccountEventType.VERIFIED, user.email, user_id=user.id))
            log.info("auth.verify.succeeded", user_id=str(user.id))
            metrics.VERIFICATIONS.labels("verified").inc()
            return VerifyResult(status="verified", message="The address is verified: alert emails will reach it.")

    async def resend(self, email: str, *, address: str) -> SignupAccepted:
        """Mail a new link to an unverified account; the same answer whether or not there is one."""
        email = normalize_email(email)
        await self.limiter.count_resend(address, email)
        user = await self.users.get_by_email(email)
        if user is not None and not user.email_verified:
            await self._send_link(user, AccountEventType.VERIFICATION_RESENT)
            log.info("auth.verify.resent", user_id=str(user.id))
        return SignupAccepted(
            status="verification_sent",
            message=(
                "If an account with this address waits for verification, a new link is on its way (valid for "
                f"{_hours(self.policy.token_ttl)})."
            ),
        )
