"""The web page: index.html at `/`, its files at `/static/…`, gzipped, with a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "web" / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Names are not content-hashed: the browser keeps a copy but asks (If-None-Match) before using it.
    "Cache-Control": "no-cache",
}


class PageHeaders:
    """Adds the security and caching headers to every answer of the page's routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class IndexPage:
    """`/`: index.html, with the same ETag and 304 handling as the static files."""

    def __init__(self, files: StaticFiles) -> None:
        self.files = files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.files.get_response("index.html", scope)
        await response(scope, receive, send)


def page_app(app: ASGIApp) -> ASGIApp:
    """`app` with the page's headers and gzip (text files shrink to a fraction)."""
    return GZipMiddleware(PageHeaders(app), minimum_size=500)


def web_routes() -> list[BaseRoute]:
    """The routes of the web page, for the docs gateway."""
    files = StaticFiles(directory=STATIC_DIR)
    return [
        Route("/", page_app(IndexPage(files)), methods=["GET", "HEAD"]),
        Mount("/static", app=page_app(files)),
    ]
