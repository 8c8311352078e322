"""The docs gateway serves the web page: index.html at /, its files at /static/, gzipped, each answer with the
page's Content-Security-Policy and security headers; the first page stays far under its 100 KB budget."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pricealert.devstack.gateway import GatewaySettings, create_app
from pricealert.devstack.webpages import CONTENT_SECURITY_POLICY, STATIC_DIR

FIRST_PAGE_BUDGET = 100_000
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\./[\w./-]+)["']""", re.MULTILINE)
_REFERENCED = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")


def referenced_by_index() -> list[str]:
    """The /static/ paths index.html loads (its stylesheet and entry module)."""
    return _REFERENCED.findall((STATIC_DIR / "index.html").read_text())


def module_graph(entry: Path) -> set[Path]:
    """Every ES module reachable from `entry` by static imports."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend((module.parent / found).resolve() for found in _IMPORT.findall(module.read_text()))
    return seen


def first_page_paths() -> list[str]:
    """index.html, then everything it loads: the CSS and every module reachable from the entry module."""
    paths = ["/"]
    for ref in referenced_by_index():
        if ref.endswith(".js"):
            paths += sorted(
                "/static/" + p.relative_to(STATIC_DIR.resolve()).as_posix()
                for p in module_graph((STATIC_DIR / ref.removeprefix("/static/")).resolve())
            )
        else:
            paths.append(ref)
    return paths


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Nothing listens upstream: the page is the gateway's own, it needs neither API.
    app = create_app(GatewaySettings(auth_url="http://127.0.0.1:9", alerts_url="http://127.0.0.1:9"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as http:
        yield http


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]


async def test_the_index_is_served_at_the_root_with_the_csp_and_security_headers(client: httpx.AsyncClient) -> None:
    index = await client.get("/")
    head = await client.head("/")

    assert CONTENT_SECURITY_POLICY == EXPECTED_CSP
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert_page_headers(index)
    assert index.text == (STATIC_DIR / "index.html").read_text()
    assert head.status_code == 200 and head.content == b""


async def test_every_file_the_page_loads_is_served_with_its_type_and_headers(client: httpx.AsyncClient) -> None:
    paths = first_page_paths()
    types = {".css": "text/css", ".js": "text/javascript", ".html": "text/html"}

    assert "/static/app.css" in paths and "/static/app.js" in paths and "/static/api.js" in paths
    for path in paths[1:]:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].split(";")[0] == types[Path(path).suffix], path
        assert_page_headers(response)
        assert response.content == (STATIC_DIR / path.removeprefix("/static/")).read_bytes()


async def test_every_module_in_the_folder_is_reachable_from_the_entry_module() -> None:
    reachable = {p.name for p in module_graph((STATIC_DIR / "app.js").resolve())}
    assert reachable == {p.name for p in STATIC_DIR.glob("*.js")}


async def test_the_first_page_is_gzipped_and_well_under_its_budget(client: httpx.AsyncClient) -> None:
    wire = 0
    for path in first_page_paths():
        response = await client.get(path, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, path
        assert response.headers.get("content-encoding") == "gzip", path
        assert "accept-encoding" in response.headers.get("vary", "").lower()
        wire += response.num_bytes_downloaded

    assert wire < FIRST_PAGE_BUDGET
    assert wire < 40_000  # the aim: the budget's margin is there for the page to grow into


async def test_an_unchanged_file_is_answered_304_by_its_etag(client: httpx.AsyncClient) -> None:
    first = await client.get("/static/app.js")
    again = await client.get("/static/app.js", headers={"if-none-match": first.headers["etag"]})
    index = await client.get("/")
    index_again = await client.get("/", headers={"if-none-match": index.headers["etag"]})

    assert again.status_code == 304 and again.content == b""
    assert index_again.status_code == 304
    assert_page_headers(again)


async def test_unknown_files_other_methods_and_climbing_paths_are_refused_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/static/nope.js")
    posted = await client.post("/", content=b"x")
    posted_static = await client.post("/static/app.js")
    climbing = await client.get("/static/../gateway.py")
    encoded = await client.get("/static/%2e%2e/gateway.py")
    folder = await client.get("/static/")

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert posted.status_code == 405 and posted.json()["error"]["code"] == "method_not_allowed"
    assert posted_static.status_code == 405 and posted_static.json()["error"]["code"] == "method_not_allowed"
    assert climbing.status_code in {400, 404} and "error" in climbing.json()
    assert encoded.status_code in {400, 404} and "error" in encoded.json()
    assert folder.status_code == 404 and folder.json()["error"]["code"] == "not_found"


async def test_the_api_routes_and_docs_do_not_get_the_page_policy(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    docs = await client.get("/docs")

    assert health.status_code == 200 and "content-security-policy" not in health.headers
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
