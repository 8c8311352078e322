"""Create, list, get and delete alerts through the API."""

from __future__ import annotations

import httpx
import pytest
from alerts_testkit import Tokens

from pricealert.common.events import CatalogSymbol

pytestmark = pytest.mark.usefixtures("catalog")


async def create(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: object) -> httpx.Response:
    payload = {"symbol": "BTCUSDT", "target_price": "100000.50", "condition": "above", **body}
    return await client.post("/alerts", json=payload, headers=tokens.headers(user))


async def test_create_returns_the_alert(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await create(client, tokens, name="six figures", symbol="btcusdt")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["symbol"] == "BTCUSDT"
    assert body["target_price"] == "100000.5"  # shown canonical: no trailing zeros
    assert body["condition"] == "above"
    assert body["status"] == "active"
    assert body["name"] == "six figures"
    assert body["triggered_at"] is None and body["delivery_status"] is None
    got = await client.get(f"/alerts/{body['id']}", headers=tokens.headers("u1"))
    assert got.status_code == 200
    assert got.json() == body


async def test_condition_defaults_to_cross(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/alerts", json={"symbol": "ETHUSDT", "target_price": 3000}, headers=tokens.headers("u1")
    )
    assert response.status_code == 201, response.text
    assert response.json()["condition"] == "cross"
    assert response.json()["target_price"] == "3000"


async def test_requires_a_valid_access_token(client: httpx.AsyncClient, tokens: Tokens) -> None:
    assert (await client.get("/alerts")).json()["error"]["code"] == "not_authenticated"
    refresh = tokens.make("u1", token_type="refresh")
    response = await client.get("/alerts", headers={"Authorization": f"Bearer {refresh}"})
    assert response.status_code == 401
    expired = tokens.make("u1", ttl_s=-10)
    response = await client.get("/alerts", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"
    garbage = await client.get("/alerts", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401 and garbage.json()["error"]["code"] == "invalid_token"


async def test_other_users_alert_is_not_found(client: httpx.AsyncClient, tokens: Tokens) -> None:
    alert_id = (await create(client, tokens, user="alice")).json()["id"]
    assert (await client.get(f"/alerts/{alert_id}", headers=tokens.headers("bob"))).status_code == 404
    deleted = await client.delete(f"/alerts/{alert_id}", headers=tokens.headers("bob"))
    assert deleted.status_code == 404
    assert deleted.json()["error"]["code"] == "alert_not_found"
    still = await client.get(f"/alerts/{alert_id}", headers=tokens.headers("alice"))
    assert still.json()["status"] == "active"
    assert (await client.get("/alerts", headers=tokens.headers("bob"))).json()["total"] == 0


async def test_delete_is_soft_and_idempotent(client: httpx.AsyncClient, tokens: Tokens) -> None:
    alert_id = (await create(client, tokens)).json()["id"]
    assert (await client.delete(f"/alerts/{alert_id}", headers=tokens.headers("u1"))).status_code == 204
    assert (await client.delete(f"/alerts/{alert_id}", headers=tokens.headers("u1"))).status_code == 204
    got = await client.get(f"/alerts/{alert_id}", headers=tokens.headers("u1"))
    assert got.json()["status"] == "deleted"
    listed = await client.get("/alerts", params={"status": "deleted"}, headers=tokens.headers("u1"))
    assert [a["id"] for a in listed.json()["items"]] == [alert_id]
    missing = await client.delete("/alerts/3f0c9a52-8d1e-4c7b-9b6a-2f1e0d4c5b7a", headers=tokens.headers("u1"))
    assert missing.status_code == 404


async def test_compatibility_paths(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.headers("u1")
    body = {"symbol": "BTCUSDT", "target_price": "5"}
    first = await client.post("/alerts/create", json=body, headers=headers)
    second = await client.post("/alerts/create/", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert (await client.delete(f"/alerts/delete/{first.json()['id']}", headers=headers)).status_code == 204
    assert (await client.delete(f"/alerts/delete/{second.json()['id']}/", headers=headers)).status_code == 204
    listed = await client.get("/alerts", params={"status": "deleted"}, headers=headers)
    assert listed.json()["total"] == 2
    schema = (await client.get("/openapi.json")).json()
    assert schema["paths"]["/alerts/create"]["post"]["deprecated"] is True
    assert schema["paths"]["/alerts/delete/{alert_id}"]["delete"]["deprecated"] is True


async def test_limit_of_active_alerts(client: httpx.AsyncClient, tokens: Tokens, app: object) -> None:
    app.state.alerts.service.max_active_per_user = 3  # type: ignore[attr-defined]
    ids = [(await create(client, tokens)).json()["id"] for _ in range(3)]
    refused = await create(client, tokens)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "alert_limit_reached"
    assert (await create(client, tokens, user="other")).status_code == 201
    await client.delete(f"/alerts/{ids[0]}", headers=tokens.headers("u1"))
    assert (await create(client, tokens)).status_code == 201


async def test_symbol_is_validated_against_the_catalog(
    client: httpx.AsyncClient, tokens: Tokens, catalog: list[CatalogSymbol]
) -> None:
    response = await create(client, tokens, symbol="BTCUSD")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_symbol"
    assert "BTCUSDT" in error["details"]["close_matches"]
