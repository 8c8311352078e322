"""JWT verification with public keys only; the key ring is learned from the signing-keys stream."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
import structlog
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.errors import Unauthorized
from pricealert.common.events import MalformedEvent, SigningKey

log = structlog.get_logger()

ISSUER = "pricealert-auth"
AUDIENCE = "pricealert"
ALGORITHMS = ("EdDSA", "RS256")


class TokenType(StrEnum):
    """Access tokens call APIs; refresh tokens only buy new pairs."""

    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of a token."""

    subject: str
    email: str
    token_id: str
    token_type: TokenType
    issued_at: int
    expires_at: int
    raw: dict[str, Any]


class KeyRing:
    """Public keys by kid, refreshed from the signing-keys stream when an unknown kid shows up."""

    def __init__(self, redis: Redis, *, refresh_interval_s: float = 5.0) -> None:
        self.redis = redis
        self.refresh_interval_s = refresh_interval_s
        self._keys: dict[str, SigningKey] = {}
        self._refreshed_at = float("-inf")

    async def refresh(self) -> None:
        """Re-read every published key."""
        entries = await self.redis.xrange(names.SIGNING_KEYS)
        keys: dict[str, SigningKey] = {}
        for entry_id, fields in entries or []:
            try:
                key = SigningKey.from_fields(fields or {})
            except MalformedEvent as exc:
                log.warning("token.key.malformed", entry_id=entry_id, error=str(exc))
                continue
            keys[key.kid] = key
        self._keys = keys
        self._refreshed_at = time.monotonic()

    def knows(self, kid: str) -> bool:
        """Whether the key `kid` has been read (no refresh)."""
        return kid in self._keys

    async def get(self, kid: str) -> SigningKey | None:
        """The key with `kid`, re-reading the stream at most every refresh interval."""
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._refreshed_at >= self.refresh_interval_s:
            await self.refresh()
            key = self._keys.get(kid)
        return key


def decode_token(token: str, key: SigningKey, expected_type: TokenType) -> TokenClaims:
    """Verify signature, issuer, audience, expiry and type; raise Unauthorized otherwise."""
    if key.algorithm not in ALGORITHMS:
        raise Unauthorized("Token signed with an unsupported algorithm.", code="invalid_token")
    try:
        claims = jwt.decode(
            token, key.public_key, algorithms=[key.algorithm], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss", "aud", "jti", "type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("The token is invalid.", code="invalid_token") from exc
    if claims.get("type") != expected_type.value:
        raise Unauthorized(f"An {expected_type.value} token is required.", code="invalid_token")
    return TokenClaims(
        subject=str(claims["sub"]), email=str(claims.get("email", "")), token_id=str(claims["jti"]),
        token_type=expected_type, issued_at=int(claims["iat"]), expires_at=int(claims["exp"]), raw=claims,
    )


class VerifiedTokens:
    """Claims of recently verified tokens by their exact text, kept until they expire (a bounded LRU).

    A signature check costs far more than the rest of a small API call; the same access token comes
    back on every call of its session. A hit still checks expiry, type and that its key is still known.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[TokenClaims, str]] = OrderedDict()

    def get(self, token: str, keys: KeyRing, expected_type: TokenType) -> TokenClaims | None:
        """The cached claims of `token` if it is still valid as `expected_type`; None means verify it."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        claims, kid = entry
        if time.time() >= claims.expires_at or not keys.knows(kid):
            del self._entries[token]
            return None
        if claims.token_type is not expected_type:
            return None
        self._entries.move_to_end(token)
        return claims

    def put(self, token: str, claims: TokenClaims, kid: str) -> None:
        """Remember a token that was just verified with the key `kid`."""
        self._entries[token] = (claims, kid)
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


async def verify(token: str, keys: KeyRing, expected_type: TokenType = TokenType.ACCESS,
                 cache: VerifiedTokens | None = None) -> TokenClaims:
    """Find the token's key by kid and verify the token with it (or take its claims from `cache`)."""
    if cache is not None and (cached := cache.get(token, keys, expected_type)) is not None:
        return cached
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("The token is invalid.", code="invalid_token") from exc
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise Unauthorized("The token names no key.", code="invalid_token")
    key = await keys.get(kid)
    if key is None:
        raise Unauthorized("The token was signed by an unknown key.", code="invalid_token")
    if header.get("alg") != key.algorithm:
        raise Unauthorized("The token's algorithm does not match its key.", code="invalid_token")
    claims = decode_token(token, key, expected_type)
    if cache is not None:
        cache.put(token, claims, kid)
    return claims
