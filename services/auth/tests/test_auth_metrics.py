"""GET /metrics of auth: request latency by route template, logins, registrations and refreshes by outcome."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog
from auth_testkit import PASSWORD, assert_error, client_for, login, make_settings, register, running_app
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def client(sqlite_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an auth app that allows two failed logins per account and address (one database is enough)."""
    settings = make_settings(sqlite_url, redis_url, tmp_path, login_max_failures_account_address=2)
    async with running_app(settings) as app, client_for(app) as http:
        yield http


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_logins_registrations_and_refreshes_are_counted_by_outcome(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    await register(client, "counted@example.com")
    again = await client.post("/auth/register", json={"email": "counted@example.com", "password": PASSWORD})
    assert again.status_code == 202
    tokens = await login(client, "counted@example.com")
    for _ in range(2):
        wrong = await client.post("/auth/login", json={"email": "counted@example.com", "password": "nope-nope"})
        assert_error(wrong, 401, "invalid_credentials")
    limited = await client.post("/auth/login", json={"email": "counted@example.com", "password": PASSWORD})
    assert_error(limited, 429, "too_many_login_attempts")
    rotated = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    reused = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_error(reused, 401, "token_revoked")
    after = await scrape(client)

    assert delta(before, after, "pricealert_auth_registrations_total", outcome="ok") == 1
    assert delta(before, after, "pricealert_auth_registrations_total", outcome="email_taken") == 1
    assert delta(before, after, "pricealert_auth_logins_total", outcome="ok") == 1
    assert delta(before, after, "pricealert_auth_logins_total", outcome="invalid_credentials") == 2
    assert delta(before, after, "pricealert_auth_logins_total", outcome="too_many_login_attempts") == 1
    assert delta(before, after, "pricealert_auth_refreshes_total", outcome="ok") == 1
    assert delta(before, after, "pricealert_auth_refreshes_total", outcome="token_revoked") == 1


async def test_request_latency_is_labelled_by_route_template(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    await client.get(f"/auth/users/{uuid.uuid4()}")
    await client.get(f"/auth/users/{uuid.uuid4()}")
    await client.get("/no/such/path")
    after = await scrape(client)
    name = "pricealert_auth_http_request_duration_seconds_count"
    assert delta(before, after, name, method="GET", route="/auth/users/{user_id}", status="401") == 2
    assert delta(before, after, name, method="GET", route="unmatched", status="404") == 1
    assert not any(
        "/auth/users/" in dict(labels).get("route", "") and "{" not in dict(labels)["route"] for _, labels in after
    ), "a concrete path leaked into the route label"
    assert (
        delta(
            before,
            after,
            "pricealert_auth_http_request_duration_seconds_bucket",
            method="GET",
            route="/auth/users/{user_id}",
            status="401",
            le="+Inf",
        )
        == 2
    )


async def test_login_lines_carry_the_user_id(client: httpx.AsyncClient) -> None:
    user = await register(client, "traced@example.com")
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        tokens = await login(client, "traced@example.com")
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    [succeeded] = [e for e in logs if e["event"] == "auth.login.succeeded"]
    [reused] = [e for e in logs if e["event"] == "auth.refresh.reused"]
    assert succeeded["user_id"] == reused["user_id"] == user["id"]
