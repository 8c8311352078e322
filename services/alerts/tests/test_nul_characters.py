"""A NUL character anywhere in a request is a 422 in the error shape, on SQLite and on Postgres alike, on the
fast path (POST/GET /alerts as plain ASGI) and on the FastAPI routes (Postgres refuses NUL in text: a 500)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens

NUL = "\u0000"
GOOD = {"symbol": "BTCUSDT", "target_price": "70000", "condition": "above", "name": "ok"}
BODIES: list[dict[str, Any]] = [
    {**GOOD, "name": f"moon{NUL}"},
    {**GOOD, "name": NUL},
    {**GOOD, "symbol": f"BTCUSDT{NUL}"},
    {**GOOD, "symbol": f"BTC{NUL}USDT"},
    {**GOOD, "target_price": f"70000{NUL}"},
    {**GOOD, "condition": f"above{NUL}"},
    {**GOOD, "expires_at": f"2030-01-01T00:00:00Z{NUL}"},
    {**GOOD, f"name{NUL}": "x"},
]
# The fast path takes exactly `application/json`; anything else goes to the FastAPI route.
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8"]


def _is_nul_refusal(response: httpx.Response) -> bool:
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    return (
        response.status_code == 422
        and body.get("error", {}).get("code") == "validation_error"
        and set(body["error"]) == {"code", "message", "details"}
    )


@pytest.mark.usefixtures("catalog")
async def test_nul_in_any_field_of_a_new_alert_is_422(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    wrong = {}
    for content_type in CONTENT_TYPES:
        for path in ("/alerts", "/alerts/create"):
            for body in BODIES:
                response = await client.post(
                    path, content=json.dumps(body).encode(), headers={**headers, "content-type": content_type}
                )
                if not _is_nul_refusal(response):
                    wrong[f"{path} {content_type} {body!r}"] = f"{response.status_code} {response.text[:200]}"

    assert wrong == {}
    assert (await client.get("/alerts", headers=headers)).json()["total"] == 0


@pytest.mark.usefixtures("catalog")
async def test_nul_in_query_parameters_and_paths_is_422(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    created = await client.post("/alerts", json=GOOD, headers=headers)
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]
    requests = [
        ("GET", "/alerts", {"symbol": NUL}),
        ("GET", "/alerts", {"symbol": f"BTCUSDT{NUL}"}),
        ("GET", "/alerts", {"status": f"active{NUL}"}),
        ("GET", "/alerts", {"page": f"1{NUL}"}),
        ("GET", "/alerts", {f"symbol{NUL}": "BTCUSDT"}),
        ("GET", f"/alerts/{alert_id}%00", None),
        ("GET", "/alerts/%00", None),
        ("DELETE", f"/alerts/{alert_id}%00", None),
        ("DELETE", f"/alerts/delete/{uuid.uuid4()}%00", None),
    ]

    wrong = {}
    for method, path, params in requests:
        response = await client.request(method, path, params=params, headers=headers)
        if not _is_nul_refusal(response):
            wrong[f"{method} {path} {params!r}"] = f"{response.status_code} {response.text[:200]}"

    assert wrong == {}
    assert (await client.get(f"/alerts/{alert_id}", headers=headers)).status_code == 200


@pytest.mark.usefixtures("catalog")
async def test_text_that_only_looks_like_a_nul_is_kept(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """An escaped backslash before `u0000` is six characters of text; `%00` in a JSON string is three."""
    headers = tokens.headers("u1")
    for name in ("C:\\u0000 drive", "100%00 sure", "\\\\\\u0000x"):
        response = await client.post("/alerts", json={**GOOD, "name": name}, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name
