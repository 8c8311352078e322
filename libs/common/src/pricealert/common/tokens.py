"""JWT verification with public keys only; the key ring is learned from root-signed statements on a stream."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.exceptions import RedisError

from pricealert.common import names
from pricealert.common.errors import Unauthorized
from pricealert.common.keytrust import TrustedKey, UntrustedKey, load_root_public_key, verify_statement
from pricealert.common.redisconn import RedisClient

log = structlog.get_logger()

ISSUER = "pricealert-auth"
AUDIENCE = "pricealert"
ALGORITHMS = ("EdDSA", "RS256")
# What reading the signing-keys stream can raise (a down Redis, or a key of the wrong type): 503, not 500.
KEY_READ_ERRORS = (RedisError, OSError)
_MIN_REFRESH_S = 0.1  # however short a statement's validity, the stream is not read more often than this


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


class KeySource(Protocol):
    """Where `verify` finds the key a token names."""

    async def get(self, kid: str) -> TrustedKey | None:
        """The key `kid` if it is trusted now (reading its source if need be), else None."""

    def trusts(self, kid: str) -> bool:
        """Whether the key `kid` is trusted now, without reading anything (the cached-token check)."""


class KeyRing:
    """Keys from root-signed statements on the signing-keys stream, each trusted until its `valid_until`.

    The stream is read when a token names an unknown kid (at most once per refresh interval) or its key is
    past half its validity; a request whose key is still valid never waits for another's refresh.
    The first key material accepted for a kid is pinned: a later statement with other material is refused.
    """

    def __init__(
        self, redis: RedisClient, root_public_key: Path, *, refresh_interval_s: float = 5.0, clock_skew_s: float = 5.0
    ) -> None:
        self.redis = redis
        self.root_public_key = root_public_key
        self.refresh_interval_s = refresh_interval_s
        self.clock_skew_s = clock_skew_s
        self._root: Ed25519PublicKey | None = None
        self._keys: dict[str, TrustedKey] = {}
        self._pins: dict[str, bytes] = {}
        self._checked: dict[Any, TrustedKey | None] = {}  # by stream entry id: each entry is checked once
        self._refreshed_at = float("-inf")
        self._lock = asyncio.Lock()

    def trusts(self, kid: str) -> bool:
        """Whether `kid` has a statement that is not past its `valid_until` (no refresh)."""
        key = self._keys.get(kid)
        return key is not None and time.time() <= key.valid_until + self.clock_skew_s

    async def get(self, kid: str) -> TrustedKey | None:
        """The key `kid` while a statement for it is valid, re-reading the stream when it is due."""
        if self._refresh_due(kid):
            valid = self.trusts(kid)
            if not (valid and self._lock.locked()):
                await self._refresh_once(kid, keep_going=valid)
        return self._keys.get(kid) if self.trusts(kid) else None

    def _refresh_due(self, kid: str) -> bool:
        since = time.monotonic() - self._refreshed_at
        key = self._keys.get(kid)
        if key is None:
            return since >= self.refresh_interval_s
        # Auth re-publishes well before a statement lapses: half its validity left means a newer one exists.
        # Short validities are re-read more often than the interval, so that a valid key never lapses here.
        lifetime = key.valid_until - key.issued_at
        return (
            since >= min(self.refresh_interval_s, max(lifetime / 4, _MIN_REFRESH_S))
            and key.valid_until - time.time() < lifetime / 2
        )

    async def _refresh_once(self, kid: str, *, keep_going: bool) -> None:
        async with self._lock:
            if not self._refresh_due(kid):
                return  # another request refreshed while this one waited
            try:
                await self.refresh()
            except KEY_READ_ERRORS as exc:
                if not keep_going:
                    raise
                # The key in hand is still valid: use it, and retry after one interval, not on every request.
                self._refreshed_at = time.monotonic()
                log.warning("token.keys.refresh_failed", error=str(exc))

    async def refresh(self) -> None:
        """Re-read the stream: per kid, the latest-valid statement the root signed for the kid's pinned key."""
        root = self._root_key()
        # Statements already accepted stay good until they lapse, even if the stream lost them (a flushed Redis).
        keys = {kid: key for kid, key in self._keys.items() if self.trusts(kid)}
        if root is not None:
            checked: dict[Any, TrustedKey | None] = {}
            for entry_id, fields in await self.redis.xrange(names.SIGNING_KEYS) or []:
                key = self._checked[entry_id] if entry_id in self._checked else self._check(entry_id, fields, root)
                checked[entry_id] = key
                if key is not None and (key.kid not in keys or key.valid_until > keys[key.kid].valid_until):
                    keys[key.kid] = key
            self._checked = checked
        self._keys = keys
        self._refreshed_at = time.monotonic()

    def _root_key(self) -> Ed25519PublicKey | None:
        if self._root is None:
            try:
                self._root = load_root_public_key(self.root_public_key)
            except (OSError, ValueError) as exc:
                # Auth creates the root on its first start (development): until then no key is trusted.
                log.warning("token.root_key.unreadable", path=str(self.root_public_key), error=str(exc))
        return self._root

    def _check(self, entry_id: Any, fields: Any, root: Ed25519PublicKey) -> TrustedKey | None:
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        try:
            key = verify_statement(fields or {}, root)
        except UntrustedKey as exc:
            log.warning("token.key.refused", entry_id=entry, reason=str(exc)[:300])
            return None
        if self._pins.setdefault(key.kid, key.material) != key.material:
            log.error(
                "token.key.conflict",
                entry_id=entry,
                kid=key.kid,
                reason="the kid is already bound to other key material",
            )
            return None
        return key


def decode_token(token: str, key: TrustedKey, expected_type: TokenType) -> TokenClaims:
    """Verify signature, issuer, audience, expiry and type; raise Unauthorized otherwise."""
    if key.algorithm not in ALGORITHMS:
        raise Unauthorized("Token signed with an unsupported algorithm.", code="invalid_token")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss", "aud", "jti", "type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is invalid.", code="invalid_token") from exc
    if claims.get("type") != expected_type.value:
        raise Unauthorized(f"An {expected_type.value} token is required.", code="invalid_token")
    return TokenClaims(
        subject=str(claims["sub"]),
        email=str(claims.get("email", "")),
        token_id=str(claims["jti"]),
        token_type=expected_type,
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        raw=claims,
    )


class VerifiedTokens:
    """Claims of recently verified tokens by their exact text, kept until they expire (a bounded LRU).

    A signature check costs far more than the rest of a small API call; the same access token comes
    back on every call of its session. A hit still checks expiry, type and that its key is still trusted
    (a retired key's statements lapse within their validity, and so do its cached tokens).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[TokenClaims, str]] = OrderedDict()

    def get(self, token: str, keys: KeySource, expected_type: TokenType) -> TokenClaims | None:
        """The cached claims of `token` if it is still valid as `expected_type`; None means verify it."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        claims, kid = entry
        if time.time() >= claims.expires_at or not keys.trusts(kid):
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


async def verify(
    token: str, keys: KeySource, expected_type: TokenType = TokenType.ACCESS, cache: VerifiedTokens | None = None
) -> TokenClaims:
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
        raise Unauthorized("The token was signed by an unknown or retired key.", code="invalid_token")
    if header.get("alg") != key.algorithm:
        raise Unauthorized("The token's algorithm does not match its key.", code="invalid_token")
    claims = decode_token(token, key, expected_type)
    if cache is not None:
        cache.put(token, claims, kid)
    return claims
