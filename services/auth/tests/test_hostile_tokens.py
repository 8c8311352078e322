"""Every forged, expired, mistyped or broken token is a 401, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from auth_testkit import assert_error, bearer, register_and_login
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from pricealert.auth.keys import KeyPair
from pricealert.auth.security import sign_token
from pricealert.auth.state import AuthState
from pricealert.common.tokens import AUDIENCE, ISSUER, TokenType


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": user_id,
        "email": "victim@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: KeyPair, claims: dict[str, Any], *, kid: str | None = None) -> str:
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": kid or key.kid})


def _raw_signed(key: KeyPair, header: dict[str, Any], claims: dict[str, Any]) -> str:
    assert isinstance(key.private_key, Ed25519PrivateKey)
    signing_input = _unsigned(header, claims)
    return f"{signing_input}.{_b64(key.private_key.sign(signing_input.encode()))}"


@pytest.fixture
async def victim(client: httpx.AsyncClient) -> dict[str, Any]:
    """A registered user's id and token pair."""
    tokens = await register_and_login(client, "victim@example.com")
    me = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
    return {"id": me.json()["id"], **tokens}


@pytest.fixture
def key(app: FastAPI) -> KeyPair:
    state: AuthState = app.state.auth
    return state.keyring.signing_key


def _forgeries(key: KeyPair, victim: dict[str, Any]) -> dict[str, str]:
    user_id = victim["id"]
    stranger = Ed25519PrivateKey.generate()
    hs_signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": key.kid}, _claims(user_id))
    hs_signature = hmac.new(key.public_pem.encode(), hs_signing_input.encode(), hashlib.sha256).digest()
    stranger_pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "alg-none": _unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, _claims(user_id)) + ".",
        "alg-none-no-kid": _unsigned({"alg": "none", "typ": "JWT"}, _claims(user_id)) + ".",
        "hs256-with-public-key": f"{hs_signing_input}.{_b64(hs_signature)}",
        "unknown-kid": _sign(key, _claims(user_id), kid="20990101T000000Z-deadbeef"),
        "no-kid": jwt.encode(_claims(user_id), key.private_key, algorithm="EdDSA"),
        "kid-not-a-string": _raw_signed(key, {"alg": "EdDSA", "typ": "JWT", "kid": 7}, _claims(user_id)),
        "stranger-key-same-kid": jwt.encode(
            _claims(user_id), stranger_pem, algorithm="EdDSA", headers={"kid": key.kid}
        ),
        "expired": _sign(key, _claims(user_id, iat=1_000_000, exp=1_000_600)),
        "wrong-audience": _sign(key, _claims(user_id, aud="someone-else")),
        "wrong-issuer": _sign(key, _claims(user_id, iss="evil-auth")),
        "no-jti": _sign(key, _claims(user_id, jti=None)),
        "no-type": _sign(key, _claims(user_id, type=None)),
        "no-exp": _sign(key, _claims(user_id, exp=None)),
        "unknown-type": _sign(key, _claims(user_id, type="admin")),
        "refresh-as-access": victim["refresh_token"],
        "truncated": victim["access_token"][:-10],
        "signature-flipped": victim["access_token"][:-4]
        + ("AAAA" if not victim["access_token"].endswith("AAAA") else "BBBB"),
        "garbage": "not.a.token",
        "two-parts": "abc.def",
        "empty-parts": "..",
        "binary-noise": base64.b64encode(bytes(range(256))).decode(),
        "unknown-user": _sign(key, _claims(str(uuid.uuid4()))),
        "sub-not-uuid": _sign(key, _claims("1 OR 1=1")),
    }


@pytest.mark.parametrize(
    "name",
    [
        "alg-none",
        "alg-none-no-kid",
        "hs256-with-public-key",
        "unknown-kid",
        "no-kid",
        "kid-not-a-string",
        "stranger-key-same-kid",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-jti",
        "no-type",
        "no-exp",
        "unknown-type",
        "refresh-as-access",
        "truncated",
        "signature-flipped",
        "garbage",
        "two-parts",
        "empty-parts",
        "binary-noise",
        "unknown-user",
        "sub-not-uuid",
    ],
)
async def test_hostile_access_token_is_401(
    client: httpx.AsyncClient, key: KeyPair, victim: dict[str, Any], name: str
) -> None:
    token = _forgeries(key, victim)[name]
    response = await client.get("/auth/me", headers=bearer(token))
    error = assert_error(response, 401)
    assert error["code"] in {"invalid_token", "token_expired"}


async def test_expired_access_token_says_token_expired(
    client: httpx.AsyncClient, key: KeyPair, victim: dict[str, Any]
) -> None:
    token = _sign(key, _claims(victim["id"], iat=1_000_000, exp=1_000_600))
    assert_error(await client.get("/auth/me", headers=bearer(token)), 401, "token_expired")


async def test_a_token_signed_properly_is_accepted(
    client: httpx.AsyncClient, key: KeyPair, victim: dict[str, Any]
) -> None:
    # The control for the forgeries above: the same construction with nothing wrong passes.
    response = await client.get("/auth/me", headers=bearer(_sign(key, _claims(victim["id"]))))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer", "Token abc"])
async def test_malformed_authorization_header_is_401(client: httpx.AsyncClient, header: str) -> None:
    assert_error(await client.get("/auth/me", headers={"Authorization": header}), 401)


@pytest.mark.parametrize(
    "name", ["access-as-refresh", "expired-refresh", "alg-none", "garbage", "unknown-kid", "never-issued"]
)
async def test_hostile_refresh_token_is_401(
    client: httpx.AsyncClient, key: KeyPair, victim: dict[str, Any], name: str
) -> None:
    user_id = victim["id"]
    tokens = {
        "access-as-refresh": victim["access_token"],
        "expired-refresh": _sign(key, _claims(user_id, type="refresh", iat=1_000_000, exp=1_000_600)),
        "alg-none": _unsigned({"alg": "none", "kid": key.kid}, _claims(user_id, type="refresh")) + ".",
        "garbage": "x" * 500,
        "unknown-kid": _sign(key, _claims(user_id, type="refresh"), kid="nope"),
        # Validly signed but not on record (e.g. forged with a stolen key after a database restore).
        "never-issued": sign_token(
            key,
            subject=uuid.UUID(user_id),
            email="victim@example.com",
            token_type=TokenType.REFRESH,
            ttl=timedelta(minutes=5),
            now=datetime.now(UTC),
        ).token,
    }
    response = await client.post("/auth/refresh", json={"refresh_token": tokens[name]})
    assert_error(response, 401)
