"""Which signing keys alerts trusts: only those the root vouches for, pinned per kid; a bad entry is a 401."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerts_testkit import TokenRoot, Tokens, public_pem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from redis.asyncio import Redis
from structlog.testing import capture_logs

from pricealert.common import names
from pricealert.common.errors import Unauthorized
from pricealert.common.keytrust import statement_bytes
from pricealert.common.tokens import KeyRing, TokenType, VerifiedTokens, verify

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Keys never touch the database: one backend is enough here."""
    return sqlite_url


def _statement(kid: str, pem: str, **overrides: str) -> dict[str, str]:
    """The fields of a statement, unsigned; `created_at` too, as v1 verifiers read it."""
    now = datetime.now(UTC)
    fields = {
        "kid": kid,
        "algorithm": "EdDSA",
        "public_key": pem,
        "created_at": now.isoformat(),
        "issued_at": now.isoformat(),
        "valid_until": (now + timedelta(hours=1)).isoformat(),
    }
    fields.update(overrides)
    return fields


def _signed_by(key: Ed25519PrivateKey, fields: dict[str, str]) -> dict[str, str]:
    signature = key.sign(statement_bytes(fields))
    return {**fields, "signature": base64.urlsafe_b64encode(signature).decode()}


async def _alerts(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/alerts", headers={"Authorization": f"Bearer {token}"})


def _assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"


async def test_a_key_written_to_the_stream_by_anyone_with_redis_access_mints_nothing(
    client: httpx.AsyncClient,
    redis: Redis,
    tokens: Tokens,
) -> None:
    intruder = Ed25519PrivateKey.generate()
    # A new kid, and a statement claiming the real kid: both signed by the intruder, not by the root.
    await redis.xadd(names.SIGNING_KEYS, _signed_by(intruder, _statement("intruder", public_pem(intruder))))
    await redis.xadd(names.SIGNING_KEYS, _signed_by(intruder, _statement(tokens.kid, public_pem(intruder))))
    forged = Tokens(intruder, "intruder").make("victim")
    forged_same_kid = tokens.make("victim", key=intruder)

    _assert_invalid_token(await _alerts(client, forged))
    _assert_invalid_token(await _alerts(client, forged_same_kid))
    assert (await _alerts(client, tokens.make("victim"))).status_code == 200


async def test_a_later_statement_for_a_kid_with_other_key_material_is_refused_and_logged(
    client: httpx.AsyncClient,
    redis: Redis,
    tokens: Tokens,
    token_root: TokenRoot,
) -> None:
    # Even the root cannot re-bind a kid: the first material accepted for it stays.
    other = Ed25519PrivateKey.generate()
    with capture_logs() as logs:
        await token_root.vouch(redis, tokens.kid, public_pem(other))
        assert (await _alerts(client, tokens.make("u1"))).status_code == 200
        _assert_invalid_token(await _alerts(client, tokens.make("u1", key=other)))
    assert [entry["kid"] for entry in logs if entry["event"] == "token.key.conflict"] == [tokens.kid]


async def test_a_kid_pinned_by_a_running_ring_stays_pinned(redis: Redis, tokens: Tokens, token_root: TokenRoot) -> None:
    ring = KeyRing(redis, token_root.public_key_file, refresh_interval_s=0)
    assert (await verify(tokens.make("u1"), ring)).subject == "u1"
    other = Ed25519PrivateKey.generate()
    await token_root.vouch(redis, tokens.kid, public_pem(other))
    await ring.refresh()
    assert (await verify(tokens.make("u1"), ring)).subject == "u1"
    with pytest.raises(Unauthorized):
        await verify(tokens.make("u1", key=other), ring)


def _rsa_pem() -> str:
    key = generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _hostile_entries(kid: str, root: Ed25519PrivateKey, pem: str) -> dict[str, dict[Any, Any]]:
    def signed(**overrides: str) -> dict[str, str]:
        return _signed_by(root, _statement(kid, pem, **overrides))

    return {
        "garbage-pem-unsigned": _statement(kid, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"),
        "garbage-pem-signed": signed(public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        "not-pem-at-all-signed": signed(public_key="hello"),
        "rsa-key-named-eddsa-signed": signed(public_key=_rsa_pem()),
        "hs256-with-the-pem-as-secret-signed": signed(algorithm="HS256"),
        "algorithm-none-signed": signed(algorithm="none"),
        "valid-until-not-a-date-signed": signed(valid_until="tomorrow"),
        "naive-dates-signed": signed(issued_at="2030-01-01T00:00:00", valid_until="2031-01-01T00:00:00"),
        "already-lapsed-signed": signed(valid_until=(datetime.now(UTC) - timedelta(minutes=5)).isoformat()),
        "signature-not-base64": {**_statement(kid, pem), "signature": "%%%"},
        "signature-of-other-fields": {**signed(), "valid_until": "2999-01-01T00:00:00+00:00"},
        "missing-fields": {"kid": kid},
        "binary-fields": {
            b"kid": kid.encode(),
            b"algorithm": b"EdDSA",
            b"public_key": b"\xff\xfe\x00garbage",
            b"created_at": b"\xc3\x28",
            b"signature": b"\x80" * 64,
        },
        "huge-public-key-signed": signed(public_key="A" * 1_000_000),
    }


@pytest.mark.parametrize("name", sorted(_hostile_entries("k", Ed25519PrivateKey.generate(), "p")))
async def test_a_malformed_key_entry_is_a_401_for_its_kid_and_harms_no_other_key(
    client: httpx.AsyncClient,
    redis: Redis,
    tokens: Tokens,
    token_root: TokenRoot,
    name: str,
) -> None:
    key, kid = Ed25519PrivateKey.generate(), f"hostile-{uuid.uuid4().hex[:8]}"
    await redis.xadd(names.SIGNING_KEYS, _hostile_entries(kid, token_root.key, public_pem(key))[name])
    naming_it = Tokens(key, kid).make("u1")

    _assert_invalid_token(await _alerts(client, naming_it))
    assert (await _alerts(client, tokens.make("u1"))).status_code == 200
    _assert_invalid_token(await _alerts(client, naming_it))


async def test_a_statement_past_its_validity_stops_verifying_cached_tokens_too(
    redis: Redis,
    token_root: TokenRoot,
) -> None:
    key, kid = Ed25519PrivateKey.generate(), "short-lived"
    await token_root.vouch(redis, kid, public_pem(key), validity_s=1.0)
    ring = KeyRing(redis, token_root.public_key_file, refresh_interval_s=0.1, clock_skew_s=0)
    token, cache = Tokens(key, kid).make("u1"), VerifiedTokens()
    assert (await verify(token, ring, TokenType.ACCESS, cache)).subject == "u1"
    deadline = time.monotonic() + 5
    while ring.trusts(kid):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert cache.get(token, ring, TokenType.ACCESS) is None
    with pytest.raises(Unauthorized) as raised:
        await verify(token, ring, TokenType.ACCESS, cache)
    assert raised.value.code == "invalid_token"


async def test_without_the_root_file_no_key_is_trusted_until_it_appears(
    redis: Redis,
    tokens: Tokens,
    token_root: TokenRoot,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "not-yet" / "public.pem"
    ring = KeyRing(redis, missing, refresh_interval_s=0)
    with pytest.raises(Unauthorized):
        await verify(tokens.make("u1"), ring)
    missing.parent.mkdir()
    missing.write_bytes(token_root.public_key_file.read_bytes())  # auth's first start writes it
    assert (await verify(tokens.make("u1"), ring)).subject == "u1"


async def test_the_stream_key_of_the_wrong_type_is_503_not_500(
    client: httpx.AsyncClient,
    redis: Redis,
    tokens: Tokens,
) -> None:
    await redis.delete(names.SIGNING_KEYS)
    await redis.set(names.SIGNING_KEYS, "not a stream")
    response = await _alerts(client, tokens.make("u1"))
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "keys_unavailable"
