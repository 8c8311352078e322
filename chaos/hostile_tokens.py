"""Hostile credentials: forged and malformed tokens, odd authorization headers and methods."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Probe:
    """One hostile request."""

    label: str
    method: str
    path: str
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    auth: bool = True  # send the valid user's token


GOOD = {"symbol": "BTCUSDT", "target_price": "70000", "condition": "above", "name": "hostile"}


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_tokens(public_pem: str | None, kid: str | None) -> dict[str, str]:
    """Tokens an attacker could try: alg none, HS256 keyed with the public key, odd kids, garbage."""
    claims = {
        "sub": "00000000-0000-0000-0000-000000000000",
        "email": "x@example.com",
        "iss": "pricealert-auth",
        "aud": "pricealert",
        "exp": 4_102_444_800,
        "iat": 1_700_000_000,
        "jti": "x",
        "type": "access",
    }
    body = b64(json.dumps(claims).encode())
    out = {
        "none-alg": f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': kid or 'k'}).encode())}.{body}.",
        "kid-traversal": f"{b64(json.dumps({'alg': 'EdDSA', 'kid': '../../../../etc/passwd'}).encode())}.{body}.AAAA",
        "kid-injection": f"{b64(json.dumps({'alg': 'EdDSA', 'kid': chr(39) + ' OR 1=1--'}).encode())}.{body}.AAAA",
        "kid-huge": f"{b64(json.dumps({'alg': 'EdDSA', 'kid': 'k' * 20_000}).encode())}.{body}.AAAA",
        "three-dots": "a.b.c",
        "empty-parts": "..",
        "not-base64": "@@@.###.$$$",
        "huge": "a" * 60_000,
        "unicode": "токен.токен.токен",
        "header-not-json": f"{b64(b'not json')}.{body}.AAAA",
        "header-array": f"{b64(b'[1,2]')}.{body}.AAAA",
    }
    if public_pem and kid:
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        signature = hmac.new(public_pem.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        out["hs256-with-public-key"] = f"{header}.{body}.{b64(signature)}"
    return out


def credentials(public_pem: str | None, kid: str | None) -> list[Probe]:
    """Forged, malformed and oversized credentials, odd methods and headers."""
    out: list[Probe] = []
    good = GOOD
    for label, token in forged_tokens(public_pem, kid).items():
        for method, path in (("GET", "/auth/me"), ("GET", "/alerts"), ("POST", "/alerts")):
            out.append(
                Probe(
                    f"{method} {path} token {label}",
                    method,
                    path,
                    good if method == "POST" else None,
                    headers={"authorization": f"Bearer {token}"},
                    auth=False,
                )
            )
    for header in (
        "Bearer",
        "Bearer ",
        "bearer  x",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer a b c",
        "Token x",
        "Bearer \t",
        "Bearer " + "x" * 7000,
    ):
        out.append(
            Probe(
                f"GET /auth/me authorization={header[:30]!r}",
                "GET",
                "/auth/me",
                headers={"authorization": header},
                auth=False,
            )
        )
    for method in ("PUT", "PATCH", "OPTIONS", "HEAD", "TRACE"):
        out.append(Probe(f"{method} /alerts", method, "/alerts"))
        out.append(Probe(f"{method} /auth/login", method, "/auth/login"))
    out.append(
        Probe(
            "X-Forwarded-For spoof flood",
            "POST",
            "/auth/login",
            {"email": "a@b.co", "password": "x"},
            headers={"x-forwarded-for": ", ".join(["1.2.3.4"] * 500)},
            auth=False,
        )
    )
    return out
