"""The current user, from a Bearer access token verified with public keys only."""

from __future__ import annotations

from dataclasses import dataclass

from pricealert.common.errors import ServiceUnavailable, Unauthorized
from pricealert.common.tokens import KEY_READ_ERRORS, KeySource, TokenType, VerifiedTokens, verify


@dataclass(frozen=True)
class User:
    """Who is calling: the token's subject and email."""

    id: str
    email: str


async def authenticate(token: str | None, keys: KeySource, cache: VerifiedTokens | None = None) -> User:
    """Verify an access token; Unauthorized when missing or bad, 503 when the key ring can't be read."""
    if not token:
        raise Unauthorized(
            "Not authenticated: send an access token as 'Authorization: Bearer <token>'.", code="not_authenticated"
        )
    try:
        claims = await verify(token, keys, TokenType.ACCESS, cache)
    except KEY_READ_ERRORS as exc:
        raise ServiceUnavailable(
            "Token keys cannot be read right now; try again shortly.",
            code="keys_unavailable",
            headers={"Retry-After": "2"},
        ) from exc
    if not claims.subject or len(claims.subject) > 64:
        raise Unauthorized("The token's subject is invalid.", code="invalid_token")
    if not claims.email:
        # Every alert mails its owner; a token without an address cannot own one.
        raise Unauthorized("The token carries no email address.", code="invalid_token")
    return User(id=claims.subject, email=claims.email)
