"""Contract of pricealert:signing-keys: auth's key publishing writes what SigningKey (and the verifiers) read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from contracts_testkit import assert_written_as, entries
from redis.asyncio import Redis

from pricealert.auth.handlers import publish_public_keys
from pricealert.auth.keys import generate_key, load_keys
from pricealert.auth.rootkey import ensure_root_key
from pricealert.common.events import SigningKey
from pricealert.common.keytrust import verify_statement


async def test_auth_publishes_signing_keys_that_signing_key_reads(redis: Redis, tmp_path: Path) -> None:
    generate_key(tmp_path)
    pairs = load_keys(tmp_path)
    root, _ = ensure_root_key(tmp_path, allow_generate=True)
    assert await publish_public_keys(redis, pairs, root, validity=timedelta(minutes=5)) == [pairs[0].kid]
    [raw] = await entries(redis, SigningKey.stream)
    assert_written_as(SigningKey, raw)
    key = SigningKey.from_fields(raw)
    assert (key.kid, key.algorithm) == (pairs[0].kid, "EdDSA")
    assert key.valid_until - key.issued_at == timedelta(minutes=5)
    assert verify_statement(raw, root.public_key()).kid == pairs[0].kid
