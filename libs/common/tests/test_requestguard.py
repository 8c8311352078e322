"""The guard every API shares: bodies over the cap are 413 however they are sent, a NUL anywhere is 422,
and a body the guard read reaches the route whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from pricealert.common.api import MAX_BODY_BYTES, install_common
from pricealert.common.requestguard import nul_location


def _app() -> FastAPI:
    app = FastAPI()

    async def ready() -> bool:
        return True

    install_common(app, ready=ready)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.get("/echo")
    async def echo_query(q: str = "") -> dict[str, str]:
        return {"q": q}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(_app()), base_url="http://api") as http:
        yield http


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 1000):
        yield b"x" * 1000


async def test_bodies_reach_the_route_whole_and_over_the_cap_are_413_even_without_a_length(
    client: httpx.AsyncClient,
) -> None:
    small = await client.post("/echo", content=b"y" * 1000)
    streamed = await client.post("/echo", content=_chunks(60_000))  # chunked: no Content-Length
    too_long = await client.post("/echo", content=_chunks(MAX_BODY_BYTES + 1000))

    assert small.json() == {"length": 1000}
    assert streamed.json() == {"length": 60_000}
    assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"a": "x\\u0000"}', "application/json"),
        (b'{"a\\u0000": 1}', "application/json"),
        (b'{"a": "\\\\\\u0000"}', "application/json"),
        (b'{"a": "x\x00"}', "application/json"),
        (b"username=a%00&password=b", "application/x-www-form-urlencoded"),
        (b"a\x00", "text/plain"),
        (b'{"a": "x\\u0000"}', ""),
    ],
)
async def test_a_nul_in_the_body_is_422(client: httpx.AsyncClient, content: bytes, content_type: str) -> None:
    response = await client.post("/echo", content=content, headers={"content-type": content_type})

    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": "The request is invalid.",
        "details": [{"loc": ["body"], "msg": "NUL characters (U+0000) are not allowed", "type": "nul_character"}],
    }
    assert response.headers["x-request-id"]


async def test_a_nul_in_the_path_or_query_is_422(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/echo%00"),
        await client.get("/echo", params={"q": "a\x00"}),
        await client.get("/echo?q=%00"),
        await client.get("/echo?%00=1"),
    ]

    assert [(a.status_code, a.json()["error"]["details"][0]["loc"]) for a in answers] == [
        (422, ["path"]),
        (422, ["query"]),
        (422, ["query"]),
        (422, ["query"]),
    ]


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": "\\\\u0000"}',
        b'{"a": "\\\\\\\\u0000"}',
        b'{"a": "%00"}',
        b'{"a": "u0000 \\u00001"}'.replace(b"\\u00001", b"\\u0001"),
    ],
)
async def test_text_that_only_looks_like_a_nul_passes(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post("/echo", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 200, response.text


def test_a_percent_encoded_percent_is_no_nul() -> None:
    scope = {"path": "/echo", "query_string": b"q=%2500"}
    assert nul_location(scope, b"", None) is None
