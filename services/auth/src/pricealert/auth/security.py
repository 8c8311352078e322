"""Password hashing (bcrypt) and token signing (EdDSA JWTs)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
import jwt

from pricealert.auth.keys import KeyPair
from pricealert.common.tokens import AUDIENCE, ISSUER, TokenType


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes (and bcrypt>=5 rejects longer input); a base64 SHA-256 digest
    # keeps every character of a 128-character (up to 512-byte UTF-8) password significant.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


class PasswordHasher:
    """bcrypt with a configurable cost; the slow work runs in a thread."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        # Checked against when the email is unknown, so that answer costs what a wrong password costs.
        self._dummy_hash = bcrypt.hashpw(_prehash(secrets.token_urlsafe(16)), bcrypt.gensalt(rounds))

    def hash_sync(self, password: str) -> str:
        """A bcrypt hash of `password` (blocking)."""
        return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(self.rounds)).decode("ascii")

    async def hash(self, password: str) -> str:
        """A bcrypt hash of `password`."""
        return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether `password` matches; with no hash, burn the same time and answer False."""
        if password_hash is None:
            await asyncio.to_thread(bcrypt.checkpw, _prehash(password), self._dummy_hash)
            return False
        try:
            return await asyncio.to_thread(bcrypt.checkpw, _prehash(password), password_hash.encode("ascii"))
        except ValueError:  # a corrupt stored hash never matches
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with another cost than the configured one."""
        parts = password_hash.split("$")
        return len(parts) < 4 or not parts[2].isdigit() or int(parts[2]) != self.rounds


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and the claims the service needs to remember."""

    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


def sign_token(
    key: KeyPair,
    *,
    subject: uuid.UUID,
    email: str,
    token_type: TokenType,
    ttl: timedelta,
    now: datetime,
    jti: str | None = None,
) -> IssuedToken:
    """A JWT signed with `key` carrying sub, email, iss, aud, exp, iat, jti and type."""
    jti = jti or uuid.uuid4().hex
    expires_at = now + ttl
    claims = {
        "sub": str(subject),
        "email": email,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
        "type": token_type.value,
    }
    token = jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})
    return IssuedToken(token=token, jti=jti, issued_at=now, expires_at=expires_at)
