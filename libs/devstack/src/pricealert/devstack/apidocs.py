"""The API's interactive docs at /docs: Swagger UI 5 from the `swagger-ui-bundle-v2` package, never a CDN.

Everything the page loads is under /docs/assets/ on this gateway, so the docs render offline, and the page's
Content-Security-Policy allows scripts from this origin only (the initializer is a file, not an inline script).
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed in the package

ASSETS_PATH = "/docs/assets"
# The page's own policy (issue 20): scripts from this origin only; inline styles and data: images stay allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# The only files of the package the page needs, with their content types.
BUNDLED = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
INITIALIZER = "swagger-initializer.js"
INITIALIZER_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pricealert API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="{ASSETS_PATH}/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{ASSETS_PATH}/favicon-16x16.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/{INITIALIZER}"></script>
</body>
</html>
"""
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
CACHE = {"cache-control": "public, max-age=3600"}


def bundle_folder() -> Path:
    """The packaged Swagger UI's folder on disk."""
    return Path(str(swagger_ui_path))


async def docs_page(_: Request) -> HTMLResponse:
    """The Swagger UI page, every asset on this origin."""
    headers = {**SECURITY_HEADERS, "content-security-policy": CONTENT_SECURITY_POLICY, "cache-control": "no-cache"}
    return HTMLResponse(PAGE, headers=headers)


async def docs_asset(request: Request) -> Response:
    """One of the page's files; any other name is an unknown route."""
    name = request.path_params["name"]
    if name == INITIALIZER:
        return Response(
            INITIALIZER_JS, media_type="text/javascript; charset=utf-8", headers={**SECURITY_HEADERS, **CACHE}
        )
    media_type = BUNDLED.get(name)
    if media_type is None:
        raise HTTPException(404)
    return FileResponse(bundle_folder() / name, media_type=media_type, headers={**SECURITY_HEADERS, **CACHE})


def docs_routes() -> list[Route]:
    """/docs and /docs/assets/<file>."""
    return [Route("/docs", docs_page), Route(f"{ASSETS_PATH}/{{name}}", docs_asset)]
