"""Root-signed signing-key statements: what auth publishes on the signing-keys stream and what verifiers accept.

A statement says "tokens whose header names `kid` are signed by this public key, until `valid_until`". The
root key (Ed25519; its private half lives only in auth's key directory, its public half is given to every
verifier by configuration) signs the statement's fields in a canonical encoding, so an entry written to
Redis by anyone else is ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from pricealert.common.events import MalformedEvent, RawFields, SigningKey, decode_fields

# Tags the signed bytes, so that no other message the root might ever sign can pass for a statement.
STATEMENT_CONTEXT = "pricealert/signing-key-statement/v1"
SIGNED_FIELDS = ("kid", "algorithm", "public_key", "issued_at", "valid_until")
MIN_RSA_BITS = 2048
# Where auth keeps the root's public half, relative to its AUTH_KEY_DIR (the private half sits beside it).
ROOT_PUBLIC_KEY_IN_KEY_DIR = Path("root") / "public.pem"

PublicKey = Ed25519PublicKey | RSAPublicKey


class UntrustedKey(ValueError):
    """A statement the root did not sign, or whose key cannot verify tokens."""


@dataclass(frozen=True)
class TrustedKey:
    """A public key tokens naming `kid` are verified with, trusted until `valid_until` (epoch seconds)."""

    kid: str
    algorithm: str
    key: PublicKey
    material: bytes  # the key's DER encoding: what a kid is pinned to
    issued_at: float
    valid_until: float


def statement_bytes(fields: Mapping[str, str]) -> bytes:
    """What the root signs: a JSON array of the context tag and the signed fields' texts, in a fixed order."""
    values = [STATEMENT_CONTEXT, *(fields.get(name, "") for name in SIGNED_FIELDS)]
    return json.dumps(values, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def sign_statement(
    root: Ed25519PrivateKey, *, kid: str, algorithm: str, public_pem: str, issued_at: datetime, valid_until: datetime
) -> SigningKey:
    """The stream entry vouching for a signing key until `valid_until`, signed by `root`."""
    statement = SigningKey(
        kid=kid, algorithm=algorithm, public_key=public_pem, issued_at=issued_at, valid_until=valid_until, signature="-"
    )
    signature = root.sign(statement_bytes(statement.to_fields()))
    return statement.model_copy(update={"signature": base64.urlsafe_b64encode(signature).decode("ascii")})


def verify_statement(raw: RawFields, root: Ed25519PublicKey) -> TrustedKey:
    """The key a stream entry vouches for; UntrustedKey unless the root signed it and its key is usable."""
    try:
        fields = decode_fields(raw)
        signature = base64.urlsafe_b64decode(fields.get("signature", ""))
        root.verify(signature, statement_bytes(fields))
    except (InvalidSignature, UnicodeError, ValueError, binascii.Error) as exc:
        raise UntrustedKey("not signed by the root key") from exc
    try:
        statement = SigningKey.from_fields(fields)
    except MalformedEvent as exc:
        raise UntrustedKey(str(exc)) from exc
    key = load_public_key(statement.public_key, statement.algorithm)
    material = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return TrustedKey(
        kid=statement.kid,
        algorithm=statement.algorithm,
        key=key,
        material=material,
        issued_at=statement.issued_at.timestamp(),
        valid_until=statement.valid_until.timestamp(),
    )


def load_public_key(pem: str, algorithm: str) -> PublicKey:
    """A PEM public key that fits `algorithm` (EdDSA: Ed25519; RS256: RSA of at least 2048 bits)."""
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as exc:
        raise UntrustedKey(f"public_key is not a PEM public key: {exc}") from exc
    if algorithm == "EdDSA" and isinstance(key, Ed25519PublicKey):
        return key
    if algorithm == "RS256" and isinstance(key, RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise UntrustedKey(f"public_key is not a key for {algorithm!r}")


def load_root_public_key(path: Path) -> Ed25519PublicKey:
    """The root public key from a PEM file; OSError or ValueError when it is missing or not Ed25519."""
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key
