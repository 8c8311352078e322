"""/docs renders offline: the page loads only files the gateway serves itself (Swagger UI from the
`swagger-ui-bundle` package), under a Content-Security-Policy without inline scripts, and a real headless
Chromium draws the API's operations from it."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from pricealert.devstack.apidocs import CONTENT_SECURITY_POLICY
from pricealert.devstack.gateway import GatewaySettings, create_app, server_config
from pricealert.devstack.ports import free_port
from pricealert.testsupport.httpupstream import QuietHandler, serving

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "x", "version": "1"},
    "paths": {
        "/alerts": {"get": {"summary": "List alerts", "responses": {"200": {"description": "ok"}}}},
        "/auth/login": {"post": {"summary": "Log in", "responses": {"200": {"description": "ok"}}}},
    },
}
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


class OpenApiUpstream(QuietHandler):
    def do_GET(self) -> None:
        body = json.dumps(OPENAPI).encode() if self.path == "/openapi.json" else b"{}"
        self.send_response(200 if self.path == "/openapi.json" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def openapi_upstream() -> Iterator[str]:
    with serving(OpenApiUpstream) as url:
        yield url


def local_references(html: str) -> list[str]:
    """Every src and href of the page."""
    return re.findall(r'(?:src|href)="([^"]+)"', html)


async def test_the_docs_page_loads_only_local_assets_with_their_content_types(openapi_upstream: str) -> None:
    app = create_app(GatewaySettings(auth_url=openapi_upstream, alerts_url=openapi_upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
        page = await client.get("/docs")
        references = local_references(page.text)
        assets = {ref: await client.get(ref) for ref in references}
        unknown = [await client.get(p) for p in ("/docs/assets/index.html", "/docs/assets/", "/docs/assets/x/y")]

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "<script>" not in page.text and "http://" not in page.text and "https://" not in page.text
    types = {ref: (r.status_code, r.headers["content-type"].split(";")[0]) for ref, r in assets.items()}
    assert types == {
        "/docs/assets/swagger-ui.css": (200, "text/css"),
        "/docs/assets/favicon-32x32.png": (200, "image/png"),
        "/docs/assets/favicon-16x16.png": (200, "image/png"),
        "/docs/assets/swagger-ui-bundle.js": (200, "text/javascript"),
        "/docs/assets/swagger-initializer.js": (200, "text/javascript"),
    }
    assert "/openapi.json" in assets["/docs/assets/swagger-initializer.js"].text
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in assets.values())
    assert [(r.status_code, r.json()["error"]["code"]) for r in unknown] == [(404, "not_found")] * 3


@pytest.fixture
async def docs_gateway(openapi_upstream: str) -> AsyncIterator[str]:
    """The gateway served by uvicorn in front of an upstream with a two-operation OpenAPI document."""
    settings = GatewaySettings(auth_url=openapi_upstream, alerts_url=openapi_upstream, port=free_port())
    server = uvicorn.Server(server_config(settings))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{settings.port}"
    server.should_exit = True
    await task


def render_operations(url: str) -> tuple[list[str], list[dict[str, object]]]:
    """The summaries of the operations headless Chromium draws at `url`, and the browser's console errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(url)
        WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
        summaries = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-description")]
        logged: list[dict[str, object]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
        errors = [entry for entry in logged if entry["level"] == "SEVERE"]
        return summaries, errors
    finally:
        driver.quit()


@pytest.mark.skipif(
    not (CHROMIUM.exists() and shutil.which(str(CHROMEDRIVER))),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)
async def test_headless_chromium_renders_the_operations_under_the_policy(docs_gateway: str) -> None:
    summaries, errors = await asyncio.to_thread(render_operations, f"{docs_gateway}/docs")

    assert sorted(summaries) == ["List alerts", "Log in"]
    assert errors == []  # a Content-Security-Policy violation is a SEVERE console entry
