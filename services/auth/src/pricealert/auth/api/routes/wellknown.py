"""`GET /auth/.well-known/jwks.json`: the public keys tokens are signed with, for verifiers outside the system."""

from __future__ import annotations

import base64
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from pricealert.auth.deps import StateDep
from pricealert.auth.keys import KeyPair

router = APIRouter(prefix="/auth", tags=["auth"])


class Jwk(BaseModel):
    """One public key (RFC 7517): Ed25519 as `OKP` with `x`, RSA with `n` and `e`."""

    kty: Literal["OKP", "RSA"]
    kid: str
    alg: Literal["EdDSA", "RS256"]
    use: Literal["sig"] = "sig"
    crv: Literal["Ed25519"] | None = None
    x: str | None = None
    n: str | None = None
    e: str | None = None


class JwkSet(BaseModel):
    """The keys that may have signed a current access token, newest last."""

    keys: list[Jwk] = Field(description="Verify a token with the key whose `kid` its header names.")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def to_jwk(pair: KeyPair) -> Jwk:
    """The public half of `pair` as a JWK."""
    if isinstance(pair.private_key, Ed25519PrivateKey):
        raw = pair.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return Jwk(kty="OKP", crv="Ed25519", x=_b64(raw), kid=pair.kid, alg="EdDSA")
    numbers = pair.private_key.public_key().public_numbers()
    return Jwk(kty="RSA", n=_uint(numbers.n), e=_uint(numbers.e), kid=pair.kid, alg="RS256")


@router.get("/.well-known/jwks.json", response_model=JwkSet, response_model_exclude_none=True)
async def jwks(state: StateDep, response: Response) -> JwkSet:
    """The public keys access tokens are verified with (the same keys auth publishes to the other services)."""
    # Short: a retired key must leave external verifiers' caches about as soon as it leaves the stream.
    response.headers["Cache-Control"] = f"public, max-age={int(state.settings.key_publish_interval_s)}"
    return JwkSet(keys=[to_jwk(pair) for pair in state.keyring.published])
