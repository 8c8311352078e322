"""`GET /auth/.well-known/jwks.json`: the published public keys, for verifiers outside the system."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from auth_testkit import register_and_login
from fastapi import FastAPI

from pricealert.auth.keys import generate_key, retire_key
from pricealert.auth.state import AuthState
from pricealert.common.tokens import AUDIENCE, ISSUER


async def _jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"].startswith("public, max-age=")
    body: dict[str, Any] = response.json()
    return body


async def test_the_jwks_verifies_the_tokens_auth_issues(client: httpx.AsyncClient, app: FastAPI) -> None:
    state: AuthState = app.state.auth
    tokens = await register_and_login(client, "jwks@example.com")
    document = await _jwks(client)
    assert document == {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "kid": state.keyring.signing_key.kid,
                "alg": "EdDSA",
                "use": "sig",
                "x": document["keys"][0]["x"],
            }
        ]
    }
    # What an external verifier does with it: PyJWT's own JWKS reader.
    key = jwt.PyJWKSet.from_dict(document)[jwt.get_unverified_header(tokens["access_token"])["kid"]]
    claims = jwt.decode(tokens["access_token"], key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["email"] == "jwks@example.com"


async def test_the_jwks_follows_rotation_and_retirement(client: httpx.AsyncClient, app: FastAPI) -> None:
    state: AuthState = app.state.auth
    old = state.keyring.signing_key.kid
    new = generate_key(state.settings.key_dir, now=datetime.now(UTC) + timedelta(seconds=2)).kid
    await state.keyring.refresh()  # what the publishing loop does every AUTH_KEY_PUBLISH_INTERVAL_S
    assert [key["kid"] for key in (await _jwks(client))["keys"]] == [old, new]
    retire_key(state.settings.key_dir, old)
    await state.keyring.refresh()
    assert [key["kid"] for key in (await _jwks(client))["keys"]] == [new]


async def test_the_jwks_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "200" in paths["/auth/.well-known/jwks.json"]["get"]["responses"]
