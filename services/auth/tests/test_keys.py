"""Signing keys: generated on first start, kept on disk, published once, rotated without breaking tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from auth_testing import AppFactory, bearer, client_for, login, make_settings, register
from pydantic import ValidationError
from redis.asyncio import Redis

from pricealert.auth.keys import DiskKeyRing, MissingSigningKey, generate_key, live_keys, load_keys
from pricealert.auth.security import sign_token
from pricealert.auth.settings import AuthSettings
from pricealert.auth.state import AuthState
from pricealert.common import names
from pricealert.common.events import SigningKey
from pricealert.common.tokens import KeyRing, TokenType, verify

PRODUCTION_DB = "postgresql://auth@postgres/auth"  # production refuses SQLite; settings never connect


async def _published(redis: Redis) -> list[SigningKey]:
    return [SigningKey.from_fields(fields or {}) for _, fields in await redis.xrange(names.SIGNING_KEYS) or []]


async def test_first_start_generates_a_key_file_named_by_kid_and_publishes_it(
    app_factory: AppFactory, settings: AuthSettings, redis: Redis,
) -> None:
    async with app_factory() as app:
        state: AuthState = app.state.auth
        kid = state.keyring.signing_key.kid
    files = list(settings.key_dir.glob("*.pem"))
    assert [path.name for path in files] == [f"{kid}.pem"]
    assert files[0].stat().st_mode & 0o077 == 0
    published = await _published(redis)
    assert [key.kid for key in published] == [kid]
    assert published[0].algorithm == "EdDSA"
    assert "BEGIN PUBLIC KEY" in published[0].public_key and "PRIVATE" not in published[0].public_key


async def test_restart_reuses_the_key_and_does_not_republish(app_factory: AppFactory, redis: Redis) -> None:
    kids = []
    for _ in range(2):
        async with app_factory() as app:
            kids.append(app.state.auth.keyring.signing_key.kid)
    assert kids[0] == kids[1]
    assert len(await _published(redis)) == 1


async def test_tokens_verify_with_the_published_public_key_alone(app_factory: AppFactory, redis: Redis) -> None:
    async with app_factory() as app, client_for(app) as http:
        user = await register(http, "verify@example.com")
        tokens = await login(http, "verify@example.com")
    # What the alerts service does: a key ring learned from the stream, no private key anywhere.
    claims = await verify(tokens["access_token"], KeyRing(redis), TokenType.ACCESS)
    assert claims.subject == user["id"] and claims.email == "verify@example.com"


async def test_rotation_new_key_signs_old_tokens_still_verify(app_factory: AppFactory, settings: AuthSettings,
                                                             redis: Redis) -> None:
    async with app_factory() as app, client_for(app) as http:
        await register(http, "rotate@example.com")
        old = await login(http, "rotate@example.com")
        old_kid = app.state.auth.keyring.signing_key.kid
    new_pair = generate_key(settings.key_dir, now=datetime.now(UTC) + timedelta(seconds=2))
    async with app_factory() as app, client_for(app) as http:
        assert app.state.auth.keyring.signing_key.kid == new_pair.kid
        new = await login(http, "rotate@example.com")
        assert jwt.get_unverified_header(new["access_token"])["kid"] == new_pair.kid
        assert (await http.get("/auth/me", headers=bearer(old["access_token"]))).status_code == 200
        assert (await http.post("/auth/refresh", json={"refresh_token": old["refresh_token"]})).status_code == 200
    assert {key.kid for key in await _published(redis)} == {old_kid, new_pair.kid}


async def test_a_key_added_by_another_replica_is_picked_up_without_restart(
    app_factory: AppFactory, settings: AuthSettings, redis: Redis,
) -> None:
    async with app_factory() as app, client_for(app) as http:
        await register(http, "replica@example.com")
        new_pair = generate_key(settings.key_dir, now=datetime.now(UTC) + timedelta(seconds=2))
        access = (await login(http, "replica@example.com"))["access_token"]
        me = await http.get("/auth/me", headers=bearer(access))
        token = sign_token(new_pair, subject=uuid.UUID(me.json()["id"]), email="replica@example.com",
                           token_type=TokenType.ACCESS, ttl=timedelta(minutes=5), now=datetime.now(UTC)).token
        # The ring re-reads the directory on an unknown kid (at most once a second) or on its timer.
        deadline = asyncio.get_running_loop().time() + 5
        while (status := (await http.get("/auth/me", headers=bearer(token))).status_code) != 200:
            assert asyncio.get_running_loop().time() < deadline, status
            await asyncio.sleep(0.1)


def test_keys_past_their_successor_plus_token_lifetime_retire(tmp_path: Path) -> None:
    now = datetime(2030, 1, 10, tzinfo=UTC)
    for days_ago in (30, 20, 1):
        generate_key(tmp_path, now=now - timedelta(days=days_ago))
    pairs = load_keys(tmp_path)
    assert len(pairs) == 3
    live = live_keys(pairs, max_token_ttl=timedelta(days=14), now=now)
    # The oldest key's successor appeared 20 days ago (> 14), so its tokens are all expired.
    assert [pair.kid for pair in live] == [pairs[1].kid, pairs[2].kid]


def test_unreadable_and_badly_named_files_are_skipped(tmp_path: Path) -> None:
    good = generate_key(tmp_path)
    (tmp_path / "garbage.pem").write_text("not a key")
    (tmp_path / "bad kid!.pem").write_bytes((tmp_path / f"{good.kid}.pem").read_bytes())
    assert [pair.kid for pair in load_keys(tmp_path)] == [good.kid]


def test_production_refuses_to_generate_a_key(tmp_path: Path, redis_url: str) -> None:
    ring = DiskKeyRing(Redis(), tmp_path / "empty", max_token_ttl=timedelta(days=1), allow_generate=False)
    with pytest.raises(MissingSigningKey):
        ring.load()
    with pytest.raises(ValidationError, match="AUTH_KEY_DIR"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", key_dir=tmp_path / "empty")


def test_production_accepts_an_existing_key(tmp_path: Path, redis_url: str) -> None:
    generate_key(tmp_path / "keys")
    settings = make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=12)
    assert settings.key_dir == tmp_path / "keys"


def test_production_refuses_weak_settings(tmp_path: Path, redis_url: str) -> None:
    generate_key(tmp_path / "keys")
    with pytest.raises(ValidationError, match="AUTH_BCRYPT_ROUNDS"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=4)
    with pytest.raises(ValidationError, match="ADMIN_PASSWORD"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=12,
                      admin_email="a@example.com", admin_password="changeme")


def test_production_refuses_sqlite_and_a_forwarded_for_believed_from_anyone(tmp_path: Path, redis_url: str) -> None:
    generate_key(tmp_path / "keys")
    with pytest.raises(ValidationError, match="AUTH_DATABASE_URL"):
        make_settings("sqlite:///var/auth.db", redis_url, tmp_path, env="production", bcrypt_rounds=12)
    with pytest.raises(ValidationError, match="AUTH_FORWARDED_ALLOW_IPS"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=12,
                      forwarded_allow_ips="*")
    assert make_settings("sqlite:///var/auth.db", redis_url, tmp_path, forwarded_allow_ips="*").env == "test"


def test_admin_settings_come_in_pairs(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(ValidationError, match="together"):
        make_settings("sqlite:///x.db", redis_url, tmp_path, admin_email="a@example.com")
    with pytest.raises(ValidationError, match="ADMIN_EMAIL"):
        make_settings("sqlite:///x.db", redis_url, tmp_path, admin_email="nope", admin_password="long enough")
