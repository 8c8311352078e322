"""The root key: it signs the statements that vouch for each signing key; verifiers are given its public half.

Files, under AUTH_KEY_DIR: `root/private.pem` (Ed25519, mode 0600, never leaves auth) and `root/public.pem`
(what TOKEN_ROOT_PUBLIC_KEY_FILE of a verifier points at, or a copy of it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pricealert.common.keytrust import ROOT_PUBLIC_KEY_IN_KEY_DIR

log = structlog.get_logger()

PRIVATE_FILE = "private.pem"


class MissingRootKey(RuntimeError):
    """No usable root key exists and none may be generated (production)."""


def root_private_path(key_dir: Path) -> Path:
    """Where the root's private key lives."""
    return root_public_path(key_dir).with_name(PRIVATE_FILE)


def root_public_path(key_dir: Path) -> Path:
    """Where the root's public key is written for verifiers."""
    return key_dir / ROOT_PUBLIC_KEY_IN_KEY_DIR


def public_pem(root: Ed25519PrivateKey) -> bytes:
    """The PEM of the root's public half."""
    return root.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_root_key(key_dir: Path) -> Ed25519PrivateKey:
    """The root private key; MissingRootKey when it is absent, unreadable or not Ed25519."""
    path = root_private_path(key_dir)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise MissingRootKey(f"no usable root key at {path} ({exc}); run `pricealert keys ensure`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise MissingRootKey(f"{path} is not an Ed25519 private key")
    return key


def ensure_root_key(key_dir: Path, *, allow_generate: bool) -> tuple[Ed25519PrivateKey, bool]:
    """The root key (generated when absent and allowed) and whether it was generated; keeps public.pem current."""
    path = root_private_path(key_dir)
    generated = False
    if not path.exists():
        if not allow_generate:
            raise MissingRootKey(f"no root key at {path}; run `pricealert keys ensure`")
        generated = _create(path, Ed25519PrivateKey.generate())
    root = load_root_key(key_dir)
    write_public_key(root, root_public_path(key_dir))
    return root, generated


def _create(path: Path, key: Ed25519PrivateKey) -> bool:
    """Write `key` at `path` unless a file is there (another process won the race); whether it was written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    try:
        os.link(tmp, path)  # unlike rename, never replaces a root another process just created
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    log.info("auth.root_key.generated", path=str(path))
    return True


def write_public_key(root: Ed25519PrivateKey, path: Path) -> None:
    """Write the root's public PEM at `path` (atomically, mode 0644) unless it is already there."""
    pem = public_pem(root)
    with contextlib.suppress(OSError):
        if path.read_bytes() == pem:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o644)
    tmp.replace(path)
    log.info("auth.root_key.public_written", path=str(path))
