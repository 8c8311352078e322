"""FastAPI routes that read JSON bodies with schemas.load_json, so a price in a JSON number keeps every digit."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from pricealert.alerts.schemas import load_json


class ExactJSONRequest(Request):
    """A request whose JSON numbers with a fraction or an exponent are Decimal, never a rounded float."""

    async def json(self) -> Any:
        """The body's JSON, parsed once."""
        if not hasattr(self, "_json"):
            self._json = load_json(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose handler sees an ExactJSONRequest (the same rule as the plain-ASGI fast path)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact_json_handler
