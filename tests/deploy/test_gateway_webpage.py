"""The web page through nginx: `/` and `/static/…` reach the docs service, gzipped, with the page's
Content-Security-Policy; nothing else under the root is served."""

from __future__ import annotations

import httpx
from gateway_testkit import Stack

from pricealert.devstack.webpages import CONTENT_SECURITY_POLICY, STATIC_DIR


async def test_the_page_and_its_files_are_served_through_nginx(stack: Stack, client: httpx.AsyncClient) -> None:
    index = await client.get("/", headers={"accept-encoding": "gzip"})
    script = await client.get("/static/app.js", headers={"accept-encoding": "gzip"})
    style = await client.get("/static/app.css")
    missing = await client.get("/static/nope.js")
    elsewhere = await client.get("/index.html")

    assert index.status_code == 200, index.text
    assert index.text == (STATIC_DIR / "index.html").read_text()
    assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert index.headers["x-frame-options"] == "DENY" and index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["content-encoding"] == "gzip"
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-encoding"] == "gzip" and script.headers["etag"]
    assert script.content == (STATIC_DIR / "app.js").read_bytes()
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert style.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "not_found"
