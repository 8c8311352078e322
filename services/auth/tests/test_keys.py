"""Signing keys: generated on first start, kept on disk, re-published root-signed, rotated and retired."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from auth_testkit import AppFactory, bearer, client_for, login, make_settings, register, register_and_login
from pydantic import ValidationError
from redis.asyncio import Redis

from pricealert.auth.keys import (
    DiskKeyRing,
    KeyNotRetirable,
    MissingSigningKey,
    generate_key,
    live_keys,
    load_keys,
    retire_key,
)
from pricealert.auth.rootkey import MissingRootKey, root_private_path, root_public_path
from pricealert.auth.security import sign_token
from pricealert.auth.settings import AuthSettings
from pricealert.auth.state import AuthState
from pricealert.common import names
from pricealert.common.errors import Unauthorized
from pricealert.common.events import SigningKey
from pricealert.common.keytrust import load_root_public_key, verify_statement
from pricealert.common.tokens import KeyRing, TokenType, VerifiedTokens, verify

PRODUCTION_DB = "postgresql://auth@postgres/auth"  # production refuses SQLite; settings never connect


async def _published(redis: Redis) -> list[SigningKey]:
    return [SigningKey.from_fields(fields or {}) for _, fields in await redis.xrange(names.SIGNING_KEYS) or []]


def _ring(redis: Redis, settings: AuthSettings, **options: float) -> KeyRing:
    """What the alerts service runs: the stream plus the root public key, no private key anywhere."""
    return KeyRing(redis, root_public_path(settings.key_dir), **options)


async def test_first_start_generates_a_key_and_a_root_and_publishes_root_signed_statements(
    app_factory: AppFactory,
    settings: AuthSettings,
    redis: Redis,
) -> None:
    async with app_factory(key_validity_s=30) as app:
        state: AuthState = app.state.auth
        kid = state.keyring.signing_key.kid
    files = list(settings.key_dir.glob("*.pem"))
    assert [path.name for path in files] == [f"{kid}.pem"]
    assert files[0].stat().st_mode & 0o077 == 0
    assert root_private_path(settings.key_dir).stat().st_mode & 0o077 == 0
    root = load_root_public_key(root_public_path(settings.key_dir))
    entries = await redis.xrange(names.SIGNING_KEYS)
    statements = [verify_statement(fields, root) for _, fields in entries]
    assert {statement.kid for statement in statements} == {kid}
    assert all(0 < statement.valid_until - statement.issued_at <= 30 for statement in statements)
    published = await _published(redis)
    assert published[0].algorithm == "EdDSA"
    assert "BEGIN PUBLIC KEY" in published[0].public_key and "PRIVATE" not in published[0].public_key


async def test_restart_reuses_the_key_and_the_root(app_factory: AppFactory, settings: AuthSettings) -> None:
    kids, roots = [], []
    for _ in range(2):
        async with app_factory() as app:
            kids.append(app.state.auth.keyring.signing_key.kid)
            roots.append(root_public_path(settings.key_dir).read_bytes())
    assert kids[0] == kids[1] and roots[0] == roots[1]


async def test_a_v1_key_dir_gains_a_root_and_keeps_its_signing_key(
    app_factory: AppFactory, settings: AuthSettings, redis: Redis
) -> None:
    v1 = generate_key(settings.key_dir)  # what v1 left: a signing key, no root
    async with app_factory() as app, client_for(app) as http:
        assert app.state.auth.keyring.signing_key.kid == v1.kid
        tokens = await register_and_login(http, "upgrade@example.com")
    assert (await verify(tokens["access_token"], _ring(redis, settings))).email == "upgrade@example.com"


async def test_tokens_verify_with_the_published_public_key_alone(
    app_factory: AppFactory, settings: AuthSettings, redis: Redis
) -> None:
    async with app_factory() as app, client_for(app) as http:
        user = await register(http, "verify@example.com")
        tokens = await login(http, "verify@example.com")
    claims = await verify(tokens["access_token"], _ring(redis, settings), TokenType.ACCESS)
    assert claims.subject == user["id"] and claims.email == "verify@example.com"


async def test_a_retired_key_stops_verifying_everywhere_within_its_validity(
    app_factory: AppFactory,
    settings: AuthSettings,
    redis: Redis,
) -> None:
    async with app_factory(key_validity_s=2) as app, client_for(app) as http:
        old = await register_and_login(http, "retire@example.com")
        old_kid = app.state.auth.keyring.signing_key.kid
        generate_key(settings.key_dir, now=datetime.now(UTC) + timedelta(seconds=2))  # `pricealert keys rotate`
        ring, cache = _ring(redis, settings, refresh_interval_s=0.1, clock_skew_s=0.2), VerifiedTokens()
        assert (await verify(old["access_token"], ring, TokenType.ACCESS, cache)).email == "retire@example.com"

        retire_key(settings.key_dir, old_kid)  # `pricealert keys retire <kid>`

        deadline = asyncio.get_running_loop().time() + 2 + 0.2 + 3  # validity + skew + publish/refresh slack
        while ring.trusts(old_kid) or await ring.get(old_kid) is not None:
            assert asyncio.get_running_loop().time() < deadline, "the retired key is still trusted"
            await asyncio.sleep(0.1)
        assert cache.get(old["access_token"], ring, TokenType.ACCESS) is None
        with pytest.raises(Unauthorized):
            await verify(old["access_token"], ring, TokenType.ACCESS, cache)
        assert (await http.get("/auth/me", headers=bearer(old["access_token"]))).status_code == 401
        new = await login(http, "retire@example.com")
        assert (await verify(new["access_token"], ring, TokenType.ACCESS, cache)).email == "retire@example.com"
    assert (settings.key_dir / "retired" / f"{old_kid}.pem").is_file()


async def test_a_key_auth_keeps_publishing_never_lapses_even_with_a_short_validity(
    app_factory: AppFactory,
    settings: AuthSettings,
    redis: Redis,
) -> None:
    async with app_factory(key_validity_s=2) as app, client_for(app) as http:
        tokens = await register_and_login(http, "steady@example.com")
        ring = _ring(redis, settings, clock_skew_s=0)  # the default 5 s refresh interval
        end = asyncio.get_running_loop().time() + 4  # two validities: it must have been re-read
        while asyncio.get_running_loop().time() < end:
            assert (await verify(tokens["access_token"], ring)).email == "steady@example.com"
            await asyncio.sleep(0.1)


def test_the_newest_key_and_unknown_kids_cannot_be_retired(tmp_path: Path) -> None:
    old = generate_key(tmp_path, now=datetime.now(UTC) - timedelta(minutes=1))
    new = generate_key(tmp_path)
    with pytest.raises(KeyNotRetirable, match="rotate"):
        retire_key(tmp_path, new.kid)
    for kid in ("nope", "../" + old.kid, ""):
        with pytest.raises(KeyNotRetirable):
            retire_key(tmp_path, kid)
    retire_key(tmp_path, old.kid)
    assert [pair.kid for pair in load_keys(tmp_path)] == [new.kid]


def test_only_keys_an_access_token_may_still_name_are_published(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = generate_key(tmp_path, now=now - timedelta(hours=2))
    new = generate_key(tmp_path, now=now - timedelta(hours=1))
    ring = DiskKeyRing(
        tmp_path, max_token_ttl=timedelta(days=14), access_token_ttl=timedelta(minutes=15), allow_generate=True
    )
    ring.load()
    # The old key still verifies refresh tokens here, but no access token it signed is alive.
    assert [pair.kid for pair in ring.pairs] == [old.kid, new.kid]
    assert [pair.kid for pair in ring.published] == [new.kid]


async def test_rotation_new_key_signs_old_tokens_still_verify(
    app_factory: AppFactory, settings: AuthSettings, redis: Redis
) -> None:
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
    app_factory: AppFactory,
    settings: AuthSettings,
    redis: Redis,
) -> None:
    async with app_factory() as app, client_for(app) as http:
        await register(http, "replica@example.com")
        new_pair = generate_key(settings.key_dir, now=datetime.now(UTC) + timedelta(seconds=2))
        access = (await login(http, "replica@example.com"))["access_token"]
        me = await http.get("/auth/me", headers=bearer(access))
        token = sign_token(
            new_pair,
            subject=uuid.UUID(me.json()["id"]),
            email="replica@example.com",
            token_type=TokenType.ACCESS,
            ttl=timedelta(minutes=5),
            now=datetime.now(UTC),
        ).token
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


def _ring_on(key_dir: Path) -> DiskKeyRing:
    return DiskKeyRing(
        key_dir, max_token_ttl=timedelta(days=1), access_token_ttl=timedelta(minutes=15), allow_generate=False
    )


def test_production_refuses_to_generate_a_key_or_a_root(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(MissingSigningKey):
        _ring_on(tmp_path / "empty").load()
    with pytest.raises(ValidationError, match="holds no signing key"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", key_dir=tmp_path / "empty")
    generate_key(tmp_path / "v1")  # a v1 key dir: a signing key, no root
    with pytest.raises(MissingRootKey):
        _ring_on(tmp_path / "v1").load()
    with pytest.raises(ValidationError, match="no root key"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", key_dir=tmp_path / "v1")


def _production_keys(key_dir: Path) -> None:
    """What `pricealert keys ensure` leaves: a signing key and the root."""
    generate_key(key_dir)
    DiskKeyRing(
        key_dir, max_token_ttl=timedelta(days=1), access_token_ttl=timedelta(minutes=15), allow_generate=True
    ).load()


def test_production_accepts_existing_keys(tmp_path: Path, redis_url: str) -> None:
    _production_keys(tmp_path / "keys")
    settings = make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=12)
    assert settings.key_dir == tmp_path / "keys"


def test_a_validity_shorter_than_two_publications_is_refused(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(ValidationError, match="AUTH_KEY_VALIDITY_S"):
        make_settings("sqlite:///x.db", redis_url, tmp_path, key_publish_interval_s=15, key_validity_s=20)


def test_production_refuses_weak_settings(tmp_path: Path, redis_url: str) -> None:
    _production_keys(tmp_path / "keys")
    with pytest.raises(ValidationError, match="AUTH_BCRYPT_ROUNDS"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=4)
    with pytest.raises(ValidationError, match="ADMIN_PASSWORD"):
        make_settings(
            PRODUCTION_DB,
            redis_url,
            tmp_path,
            env="production",
            bcrypt_rounds=12,
            admin_email="a@example.com",
            admin_password="changeme",
        )


def test_production_refuses_sqlite_and_a_forwarded_for_believed_from_anyone(tmp_path: Path, redis_url: str) -> None:
    generate_key(tmp_path / "keys")
    with pytest.raises(ValidationError, match="AUTH_DATABASE_URL"):
        make_settings("sqlite:///var/auth.db", redis_url, tmp_path, env="production", bcrypt_rounds=12)
    with pytest.raises(ValidationError, match="AUTH_FORWARDED_ALLOW_IPS"):
        make_settings(PRODUCTION_DB, redis_url, tmp_path, env="production", bcrypt_rounds=12, forwarded_allow_ips="*")
    assert make_settings("sqlite:///var/auth.db", redis_url, tmp_path, forwarded_allow_ips="*").env == "test"


def test_admin_settings_come_in_pairs(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(ValidationError, match="together"):
        make_settings("sqlite:///x.db", redis_url, tmp_path, admin_email="a@example.com")
    with pytest.raises(ValidationError, match="ADMIN_EMAIL"):
        make_settings("sqlite:///x.db", redis_url, tmp_path, admin_email="nope", admin_password="long enough")
