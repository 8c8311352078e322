"""The app as a whole: OpenAPI completeness, readiness, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from alerts_testkit import TokenRoot, Tokens

from pricealert.alerts.app import create_app
from pricealert.alerts.settings import AlertsSettings
from pricealert.devstack.ports import free_port


async def test_every_schema_field_and_parameter_has_an_example(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    missing = []
    for name, component in schema["components"]["schemas"].items():
        if name in {"HTTPValidationError", "ValidationError"}:
            continue
        for field, spec in component.get("properties", {}).items():
            if "examples" not in spec and "example" not in spec and "$ref" not in spec and spec.get("type") != "array":
                missing.append(f"{name}.{field}")
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if (
                    "examples" not in parameter
                    and "example" not in parameter.get("schema", {})
                    and "examples" not in parameter.get("schema", {})
                ):
                    missing.append(f"{method.upper()} {path} {parameter['name']}")
    assert missing == []


async def test_openapi_documents_errors_and_security(client: httpx.AsyncClient) -> None:
    schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    create = schema["paths"]["/alerts"]["post"]
    assert {"201", "401", "409", "422", "503"} <= set(create["responses"])
    assert create.get("security"), "the Authorize button must apply to alert routes"
    assert schema["paths"]["/alerts/delete/{alert_id}/"]["delete"]["deprecated"] is True


async def test_ready_when_database_and_redis_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    unknown = {"state": "unknown", "url": None, "error": None, "since": None}
    assert ready.json() == {"status": "ready", "exchange": unknown}  # no ingest has said


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_services_own_address(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A redirect's Location would name the Host the service saw: behind a gateway, its internal address."""
    headers = tokens.headers("u1")
    answers = [
        await client.get("/alerts/", headers=headers),
        await client.post("/alerts/", headers=headers, json={}),
        await client.get("/alerts/?page=1", headers=headers),
    ]

    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(404, "not_found")] * 3
    assert [a.headers.get("location") for a in answers] == [None] * 3


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/shared")
    monkeypatch.setenv("ALERTS_PORT", "9000")
    monkeypatch.setenv("PORT", "8000")  # the gateway's, not ours
    monkeypatch.setenv("ALERTS_MAX_ACTIVE_PER_USER", "7")
    settings = AlertsSettings()
    assert (settings.database_url, settings.port, settings.max_active_per_user) == ("postgresql://db/shared", 9000, 7)
    assert settings.host == "127.0.0.1" and settings.relay_enabled
    monkeypatch.setenv("ALERTS_DATABASE_URL", "postgresql://db/alerts")
    assert AlertsSettings().database_url == "postgresql://db/alerts"


def test_production_refuses_development_defaults(
    monkeypatch: pytest.MonkeyPatch, token_root: TokenRoot, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ALERTS_DATABASE_URL", raising=False)
    monkeypatch.delenv("TOKEN_ROOT_PUBLIC_KEY_FILE", raising=False)
    with pytest.raises(ValueError, match="DATABASE_URL"):
        AlertsSettings()
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/alerts")
    with pytest.raises(ValueError, match="TOKEN_ROOT_PUBLIC_KEY_FILE must be set"):
        AlertsSettings()
    monkeypatch.setenv("TOKEN_ROOT_PUBLIC_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="TOKEN_ROOT_PUBLIC_KEY_FILE is not a readable"):
        AlertsSettings()
    (tmp_path / "garbage.pem").write_text("not a key")
    monkeypatch.setenv("TOKEN_ROOT_PUBLIC_KEY_FILE", str(tmp_path / "garbage.pem"))
    with pytest.raises(ValueError, match="TOKEN_ROOT_PUBLIC_KEY_FILE is not a readable"):
        AlertsSettings()
    monkeypatch.setenv("TOKEN_ROOT_PUBLIC_KEY_FILE", str(token_root.public_key_file))
    assert AlertsSettings().env == "production"
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/alerts.db")  # not the default, still one file on one host
    with pytest.raises(ValueError, match="DATABASE_URL"):
        AlertsSettings()


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/alerts")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert (
        'pricealert_alerts_http_request_duration_seconds_count{method="GET",route="/alerts",status="401"}'
        in response.text
    )


async def test_redis_away_is_not_ready_and_503(settings: AlertsSettings) -> None:
    away = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "consumers_enabled": False})
    app = create_app(away)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://alerts") as client,
    ):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        response = await client.get("/alerts", headers={"Authorization": "Bearer a.b.c"})
        assert response.status_code in {401, 503}
        token = jwt.encode({"sub": "u1"}, "k" * 32, algorithm="HS256", headers={"kid": "some-kid"})
        response = await client.get("/alerts", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "keys_unavailable"
