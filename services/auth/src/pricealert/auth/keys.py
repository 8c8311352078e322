"""Signing keys on disk (one PEM file per kid), rotation, retirement, and their root-signed public halves (statements).

AUTH_KEY_DIR holds `<kid>.pem` (the keys in use, the newest signs), `retired/<kid>.pem` (keys an operator
retired: never loaded, never published) and `root/` (see pricealert.auth.rootkey).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from pricealert.auth.rootkey import MissingRootKey, ensure_root_key
from pricealert.common.events import SigningKey
from pricealert.common.keytrust import TrustedKey, sign_statement

log = structlog.get_logger()

_KID_TIME = "%Y%m%dT%H%M%SZ"
_KID_PATTERN = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]+$")
_SAFE_KID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
RETIRED_DIR = "retired"


class MissingSigningKey(RuntimeError):
    """No usable signing key exists and none may be generated (production)."""


class KeyNotRetirable(ValueError):
    """The kid names no key in use, or the key that signs new tokens."""


@dataclass(frozen=True)
class KeyPair:
    """A private signing key with its kid, algorithm, public PEM and creation time."""

    kid: str
    algorithm: str
    private_key: Ed25519PrivateKey | RSAPrivateKey
    public_pem: str
    created_at: datetime

    def statement(self, root: Ed25519PrivateKey, *, now: datetime, validity: timedelta) -> SigningKey:
        """The publishable half, vouched for by `root` until `now + validity`."""
        return sign_statement(
            root,
            kid=self.kid,
            algorithm=self.algorithm,
            public_pem=self.public_pem,
            issued_at=now,
            valid_until=now + validity,
        )

    def trusted(self) -> TrustedKey:
        """The public half as the verifier takes it; auth trusts its own files for as long as they are there."""
        public = self.private_key.public_key()
        material = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return TrustedKey(
            kid=self.kid,
            algorithm=self.algorithm,
            key=public,
            material=material,
            issued_at=self.created_at.timestamp(),
            valid_until=math.inf,
        )


def new_kid(now: datetime) -> str:
    """A kid that sorts by creation time: `20250101T120000Z-1a2b3c4d`."""
    return f"{now.astimezone(UTC).strftime(_KID_TIME)}-{secrets.token_hex(4)}"


def generate_key(key_dir: Path, *, now: datetime | None = None) -> KeyPair:
    """Create a new Ed25519 key in `key_dir` (file `<kid>.pem`, mode 0600) and return it."""
    now = now or datetime.now(UTC)
    key_dir.mkdir(parents=True, exist_ok=True)
    kid = new_kid(now)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = key_dir / f".{kid}.pem.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    tmp.rename(key_dir / f"{kid}.pem")
    log.info("auth.key.generated", kid=kid, key_dir=str(key_dir))
    return _pair(kid, private, now)


def _pair(kid: str, private: Ed25519PrivateKey | RSAPrivateKey, created_at: datetime) -> KeyPair:
    algorithm = "EdDSA" if isinstance(private, Ed25519PrivateKey) else "RS256"
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return KeyPair(kid=kid, algorithm=algorithm, private_key=private, public_pem=public_pem, created_at=created_at)


def _created_at(path: Path, kid: str) -> datetime:
    match = _KID_PATTERN.match(kid)
    if match:
        return datetime.strptime(match.group(1), _KID_TIME).replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def load_keys(key_dir: Path) -> list[KeyPair]:
    """Every readable Ed25519/RSA private key in `key_dir`, oldest first."""
    pairs: list[KeyPair] = []
    for path in sorted(key_dir.glob("*.pem")) if key_dir.is_dir() else []:
        kid = path.stem
        if not _SAFE_KID.match(kid):
            log.warning("auth.key.skipped", path=str(path), reason="file name is not a valid kid")
            continue
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            log.warning("auth.key.skipped", path=str(path), reason=str(exc))
            continue
        if not isinstance(private, Ed25519PrivateKey | RSAPrivateKey):
            log.warning("auth.key.skipped", path=str(path), reason="not an Ed25519 or RSA key")
            continue
        pairs.append(_pair(kid, private, _created_at(path, kid)))
    pairs.sort(key=lambda pair: (pair.created_at, pair.kid))
    return pairs


def live_keys(pairs: Sequence[KeyPair], *, max_token_ttl: timedelta, now: datetime) -> list[KeyPair]:
    """The newest key and every older one whose tokens may still be unexpired."""
    live: list[KeyPair] = []
    for index, pair in enumerate(pairs):
        successor = pairs[index + 1] if index + 1 < len(pairs) else None
        # A key stops signing when its successor appears; its last tokens expire one TTL later.
        if successor is None or successor.created_at + max_token_ttl > now:
            live.append(pair)
    return live


def ensure_keys(key_dir: Path, *, allow_generate: bool) -> list[KeyPair]:
    """The keys on disk, generating a first one when allowed (development) and none exists."""
    pairs = load_keys(key_dir)
    if pairs:
        return pairs
    if not allow_generate:
        raise MissingSigningKey(f"no signing key in {key_dir}; run `pricealert keys ensure`")
    generate_key(key_dir)
    return load_keys(key_dir)


def retire_key(key_dir: Path, kid: str) -> Path:
    """Move the key `kid` to `retired/`; KeyNotRetirable for an unknown kid or the newest key (rotate first)."""
    pairs = load_keys(key_dir)
    if not _SAFE_KID.match(kid) or kid not in {pair.kid for pair in pairs}:
        raise KeyNotRetirable(f"no signing key {kid!r} in {key_dir}")
    if pairs[-1].kid == kid:
        raise KeyNotRetirable(f"{kid} signs new tokens; run `pricealert keys rotate` first, then retire it")
    retired = key_dir / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    target = retired / f"{kid}.pem"
    (key_dir / f"{kid}.pem").rename(target)
    log.info("auth.key.retired", kid=kid, path=str(target))
    return target


class DiskKeyRing:
    """Auth's own keys and root, read from disk; unknown kids trigger a re-read (another replica rotated)."""

    def __init__(
        self,
        key_dir: Path,
        *,
        max_token_ttl: timedelta,
        access_token_ttl: timedelta,
        allow_generate: bool,
        refresh_interval_s: float = 1.0,
    ) -> None:
        self.key_dir = key_dir
        self.max_token_ttl = max_token_ttl
        self.access_token_ttl = access_token_ttl
        self.allow_generate = allow_generate
        self.refresh_interval_s = refresh_interval_s
        self.pairs: list[KeyPair] = []
        self._root: Ed25519PrivateKey | None = None
        self._keys: dict[str, TrustedKey] = {}
        self._refreshed_at = float("-inf")

    def load(self) -> None:
        """Read the key directory (blocking); raises MissingSigningKey / MissingRootKey when absent and not allowed."""
        pairs = ensure_keys(self.key_dir, allow_generate=self.allow_generate)
        self._root, _ = ensure_root_key(self.key_dir, allow_generate=self.allow_generate)
        self.pairs = live_keys(pairs, max_token_ttl=self.max_token_ttl, now=datetime.now(UTC))
        self._keys = {pair.kid: pair.trusted() for pair in self.pairs}

    async def refresh(self) -> None:
        """Re-read the key directory."""
        try:
            await asyncio.to_thread(self.load)
        except (MissingSigningKey, MissingRootKey, OSError) as exc:
            # Keep verifying with the keys already known rather than failing every request.
            log.warning("auth.key.reload_failed", error=str(exc))
        finally:
            self._refreshed_at = time.monotonic()

    def trusts(self, kid: str) -> bool:
        """Whether `kid` is one of the keys on disk (no re-read)."""
        return kid in self._keys

    async def get(self, kid: str) -> TrustedKey | None:
        """The key `kid`, re-reading the directory for an unknown kid at most every refresh interval."""
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._refreshed_at >= self.refresh_interval_s:
            await self.refresh()
            key = self._keys.get(kid)
        return key

    @property
    def signing_key(self) -> KeyPair:
        """The newest key: the one new tokens are signed with."""
        if not self.pairs:
            raise MissingSigningKey("signing keys have not been loaded")
        return self.pairs[-1]

    @property
    def root(self) -> Ed25519PrivateKey:
        """The root key that vouches for the published keys."""
        if self._root is None:
            raise MissingRootKey("the root key has not been loaded")
        return self._root

    @property
    def published(self) -> list[KeyPair]:
        """The keys other services verify access tokens with: the newest, and those an access token may still name."""
        return live_keys(self.pairs, max_token_ttl=self.access_token_ttl, now=datetime.now(UTC))
